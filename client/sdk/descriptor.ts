// The pinned cluster descriptor: the nodes a client trusts, with their keys.
// JSON file format (docs/client.md):
//   { "version": 1, "clusterId": "...", "threshold": t,
//     "nodes": [{ "nodeId": 1, "address": "host:port", "agreementPublicKey": hex,
//                 "identityPublicKey": hex, "signature": hex }],
//     "tls": { "ca": PEM } }            // optional; absent = plaintext (tests)
// Every node entry must carry a valid identity-key signature over
// nodeDescriptorMessage of proto/crypto.
import { readFileSync } from "node:fs";
import {
  ProtocolError,
  decodePoint,
  nodeDescriptorMessage,
  validateClusterId,
  verifyMessage,
} from "../../proto/crypto/index.js";
import type { ClusterDescriptor as ProtoDescriptor } from "../../proto/gen/bkv/v1/vault_pb.js";
import { DescriptorError } from "./errors.js";

export const DESCRIPTOR_VERSION = 1;
export const DEFAULT_DESCRIPTOR_PATH = "data/local/cluster.json";

export interface NodeEntry {
  readonly nodeId: number;
  /** Client API address, host:port. */
  readonly address: string;
  readonly agreementPublicKey: Uint8Array;
  readonly identityPublicKey: Uint8Array;
  readonly signature: Uint8Array;
}

export interface ClusterDescriptor {
  readonly version: 1;
  readonly clusterId: string;
  readonly threshold: number;
  readonly nodes: readonly NodeEntry[];
  /** PEM of the CA that signs the nodes' client-API certificates; undefined = plaintext. */
  readonly tlsCa?: string | undefined;
}

/**
 * The descriptor file to use: `explicit` (--cluster), else $BKV_CLUSTER,
 * else data/local/cluster.json (written by `npm start`).
 */
export function descriptorPath(explicit: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  return explicit ?? (env.BKV_CLUSTER || DEFAULT_DESCRIPTOR_PATH);
}

/** Reads and validates a descriptor file. Throws DescriptorError naming the field. */
export function loadDescriptor(path: string): ClusterDescriptor {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    const why = (err as NodeJS.ErrnoException).code === "ENOENT" ? "no such file (start a cluster with `npm start`, or pass --cluster FILE)" : String(err);
    throw new DescriptorError(path, why);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new DescriptorError(path, `not JSON: ${(err as Error).message}`);
  }
  return parseDescriptor(json);
}

/** Validates a parsed descriptor object (the JSON form, hex strings). */
export function parseDescriptor(json: unknown): ClusterDescriptor {
  const o = object(json, "descriptor");
  if (o.version !== DESCRIPTOR_VERSION) throw new DescriptorError("version", `must be ${DESCRIPTOR_VERSION} (got ${JSON.stringify(o.version)})`);
  const clusterId = str(o.clusterId, "clusterId");
  guard("clusterId", () => validateClusterId(clusterId));
  if (!Array.isArray(o.nodes) || o.nodes.length === 0) throw new DescriptorError("nodes", "must be a non-empty array");
  const nodes = o.nodes.map((n, i) => parseNode(n, `nodes[${i}]`, clusterId));
  checkUnique(nodes);
  const threshold = o.threshold;
  if (typeof threshold !== "number" || !Number.isInteger(threshold) || threshold < 1 || threshold > nodes.length) {
    throw new DescriptorError("threshold", `must be an integer in [1, ${nodes.length}] (got ${JSON.stringify(threshold)})`);
  }
  return { version: DESCRIPTOR_VERSION, clusterId, threshold, nodes, tlsCa: parseTls(o.tls) };
}

function parseNode(json: unknown, at: string, clusterId: string): NodeEntry {
  const o = object(json, at);
  const nodeId = o.nodeId;
  if (typeof nodeId !== "number" || !Number.isSafeInteger(nodeId) || nodeId < 1) {
    throw new DescriptorError(`${at}.nodeId`, "must be a positive integer");
  }
  const address = str(o.address, `${at}.address`);
  if (!/^[^\s/]+:\d{1,5}$/.test(address)) throw new DescriptorError(`${at}.address`, `must be host:port (got ${JSON.stringify(address)})`);
  const agreementPublicKey = point(o.agreementPublicKey, `${at}.agreementPublicKey`);
  if (agreementPublicKey.length !== 65) throw new DescriptorError(`${at}.agreementPublicKey`, "must be a 65-byte uncompressed point");
  const identityPublicKey = point(o.identityPublicKey, `${at}.identityPublicKey`);
  const signature = hex(o.signature, `${at}.signature`);
  const entry = { nodeId, address, agreementPublicKey, identityPublicKey, signature };
  if (!verifyNodeEntry(clusterId, entry)) {
    throw new DescriptorError(`${at}.signature`, `does not verify with node ${nodeId}'s identity key`);
  }
  return entry;
}

/** Whether a node entry's identity signature verifies (token signatures may be high-S). */
export function verifyNodeEntry(clusterId: string, n: NodeEntry): boolean {
  const message = guard(`node ${n.nodeId}`, () => nodeDescriptorMessage({ clusterId, ...n }));
  try {
    return verifyMessage(n.identityPublicKey, message, n.signature, { allowHighS: true });
  } catch {
    return false;
  }
}

function checkUnique(nodes: readonly NodeEntry[]): void {
  const ids = new Set<number>();
  const addresses = new Set<string>();
  nodes.forEach((n, i) => {
    if (ids.has(n.nodeId)) throw new DescriptorError(`nodes[${i}].nodeId`, `duplicate node id ${n.nodeId}`);
    if (addresses.has(n.address)) throw new DescriptorError(`nodes[${i}].address`, `duplicate address ${n.address}`);
    ids.add(n.nodeId);
    addresses.add(n.address);
  });
}

function parseTls(json: unknown): string | undefined {
  if (json === undefined) return undefined;
  const o = object(json, "tls");
  const ca = str(o.ca, "tls.ca");
  if (!ca.includes("-----BEGIN CERTIFICATE-----")) throw new DescriptorError("tls.ca", "must be a PEM certificate");
  return ca;
}

function object(json: unknown, at: string): Record<string, unknown> {
  if (typeof json !== "object" || json === null || Array.isArray(json)) throw new DescriptorError(at, "must be an object");
  return json as Record<string, unknown>;
}

function str(v: unknown, at: string): string {
  if (typeof v !== "string" || v.length === 0) throw new DescriptorError(at, "missing or not a non-empty string");
  return v;
}

function hex(v: unknown, at: string): Uint8Array {
  const s = str(v, at);
  if (s.length % 2 !== 0 || !/^[0-9a-fA-F]+$/.test(s)) throw new DescriptorError(at, "must be an even number of hex digits");
  return new Uint8Array(Buffer.from(s, "hex"));
}

function point(v: unknown, at: string): Uint8Array {
  const bytes = hex(v, at);
  guard(at, () => decodePoint(bytes, at));
  return bytes;
}

/** Runs a proto/crypto check, turning its ProtocolError into a DescriptorError for `at`. */
function guard<T>(at: string, f: () => T): T {
  try {
    return f();
  } catch (err) {
    if (err instanceof ProtocolError) throw new DescriptorError(at, err.message);
    throw err;
  }
}

/** The JSON form of a descriptor (hex keys), as written to a file. */
export function descriptorToJson(d: ClusterDescriptor): object {
  const toHex = (b: Uint8Array) => Buffer.from(b).toString("hex");
  return {
    version: d.version,
    clusterId: d.clusterId,
    threshold: d.threshold,
    nodes: d.nodes.map((n) => ({
      nodeId: n.nodeId,
      address: n.address,
      agreementPublicKey: toHex(n.agreementPublicKey),
      identityPublicKey: toHex(n.identityPublicKey),
      signature: toHex(n.signature),
    })),
    ...(d.tlsCa === undefined ? {} : { tls: { ca: d.tlsCa } }),
  };
}

/**
 * A descriptor from a node's GetClusterDescriptor answer, validated exactly
 * like a file (every node signature). Trust on first use: whoever fetches it
 * must check the keys out of band before pinning it.
 */
export function descriptorFromProto(d: ProtoDescriptor, tlsCa?: string): ClusterDescriptor {
  const toHex = (b: Uint8Array) => Buffer.from(b).toString("hex");
  return parseDescriptor({
    version: DESCRIPTOR_VERSION,
    clusterId: d.clusterId,
    threshold: d.threshold,
    nodes: d.nodes.map((n) => ({
      nodeId: n.nodeId <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(n.nodeId) : -1,
      address: n.address,
      agreementPublicKey: toHex(n.agreementPublicKey),
      identityPublicKey: toHex(n.identityPublicKey),
      signature: toHex(n.signature),
    })),
    ...(tlsCa === undefined ? {} : { tls: { ca: tlsCa } }),
  });
}
