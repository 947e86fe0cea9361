// Fetching a cluster descriptor from one node (trust on first use).
import { type ClusterDescriptor, descriptorFromProto } from "./descriptor.js";
import { DescriptorError } from "./errors.js";
import { Transport } from "./transport.js";
import type { TokenProvider } from "./auth.js";

/**
 * Asks the node at `address` for the cluster descriptor and validates it
 * (every node's signature by its own identity key). This proves only that
 * the keys are self-consistent, not that they are the cluster's: compare
 * the printed fingerprints out of band before pinning the result.
 */
export async function fetchDescriptor(address: string, opts: { tlsCa?: string; timeoutMs?: number; token?: TokenProvider } = {}): Promise<ClusterDescriptor> {
  const transport = new Transport({ tlsCa: opts.tlsCa, token: opts.token });
  try {
    const res = await transport.call(address, "getClusterDescriptor", {}, opts.timeoutMs ?? 5_000);
    if (res.descriptor === undefined) throw new DescriptorError("descriptor", `node ${address} answered no descriptor`);
    return descriptorFromProto(res.descriptor, opts.tlsCa);
  } finally {
    transport.close();
  }
}
