// `status`: what the client API can tell about each pinned node, without
// counting an attempt or changing anything. vault.proto exposes neither the
// Raft role nor the leader (that is the admin API, on the operators'
// network), so the leader column is the last leader hint this client saw, if any.
// Every probe is a stale read (each node's own applied state, answered even
// without a leader): status shows what each node holds, not the cluster's answer.
import type { ClusterDescriptor, NodeEntry } from "./descriptor.js";
import type { Transport } from "./transport.js";
import { compareAnnouncement } from "./cluster-check.js";
import { NotAuthorizedError, RecordNotFoundError } from "./errors.js";

export interface NodeStatus {
  readonly nodeId: number;
  readonly address: string;
  /** The node answered GetClusterDescriptor. */
  readonly reachable: boolean;
  /** Round trip of that call, ms. */
  readonly latencyMs?: number;
  /** The node's own descriptor names our cluster id and the pinned keys for this node. */
  readonly descriptorMatches?: boolean;
  /** Nodes in the node's current descriptor. */
  readonly clusterSize?: number;
  /** Node ids the node announces that the pinned descriptor lacks (a membership change). */
  readonly unpinnedNodeIds?: number[];
  /** The node answered, refusing the call's token (none, invalid, expired, or another issuer's): not reachable for this client. */
  readonly notAuthorized?: boolean;
  readonly error?: string;
  /** With a user: this node's view of the record. */
  readonly record?: RecordStatus;
}

export interface RecordStatus {
  readonly found: boolean;
  readonly version?: number;
  readonly attemptsRemaining?: number;
  readonly locked?: boolean;
  /** The Raft index the node had applied when it answered. */
  readonly appliedIndex?: bigint;
  /** Hex, first 8 bytes. */
  readonly digestPrefix?: string;
  readonly error?: string;
}

export interface ClusterStatus {
  readonly clusterId: string;
  readonly threshold: number;
  readonly nodes: NodeStatus[];
  /** Reachable nodes >= threshold: recoveries can be served. */
  readonly recoverable: boolean;
}

/** Probes every pinned node in parallel. Never throws for a node's failure; ClientError CLOSED after close(). */
export async function probeCluster(transport: Transport, d: ClusterDescriptor, timeoutMs: number, user?: string): Promise<ClusterStatus> {
  transport.assertOpen();
  const nodes = await Promise.all(d.nodes.map((n) => probeNode(transport, d, n, timeoutMs, user)));
  return { clusterId: d.clusterId, threshold: d.threshold, nodes, recoverable: nodes.filter((n) => n.reachable).length >= d.threshold };
}

async function probeNode(transport: Transport, d: ClusterDescriptor, node: NodeEntry, timeoutMs: number, user?: string): Promise<NodeStatus> {
  const base = { nodeId: node.nodeId, address: node.address };
  const started = Date.now();
  let status: NodeStatus;
  try {
    const res = await transport.call(node.address, "getClusterDescriptor", { stale: true }, timeoutMs);
    const remote = res.descriptor;
    const matches = remote !== undefined && compareAnnouncement(d, node, remote).kind === "matches";
    const pinned = new Set(d.nodes.map((n) => n.nodeId));
    status = {
      ...base, reachable: true, latencyMs: Date.now() - started, descriptorMatches: matches, clusterSize: remote?.nodes.length ?? 0,
      unpinnedNodeIds: (remote?.nodes ?? []).map((n) => Number(n.nodeId)).filter((id) => !pinned.has(id)),
    };
  } catch (err) {
    const refused = err instanceof NotAuthorizedError ? { notAuthorized: true } : {};
    status = { ...base, reachable: false, ...refused, error: err instanceof Error ? err.message : String(err) };
  }
  if (user === undefined || !status.reachable) return status;
  return { ...status, record: await probeRecord(transport, node, timeoutMs, user) };
}

async function probeRecord(transport: Transport, node: NodeEntry, timeoutMs: number, user: string): Promise<RecordStatus> {
  try {
    const info = await transport.call(node.address, "getRecordInfo", { userId: user, stale: true }, timeoutMs);
    return {
      found: true, version: info.version, attemptsRemaining: info.attemptsRemaining, locked: info.locked,
      appliedIndex: info.appliedIndex, digestPrefix: Buffer.from(info.recordDigest.subarray(0, 8)).toString("hex"),
    };
  } catch (err) {
    return err instanceof RecordNotFoundError ? { found: false } : { found: false, error: err instanceof Error ? err.message : String(err) };
  }
}
