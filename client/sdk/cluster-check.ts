// Is the pinned descriptor the cluster the client talks to? Asked before a
// call that counts an attempt (BeginRecovery) or stores a record (Register):
// with another cluster's descriptor (or one from before the cluster was
// created again at the same addresses) a recovery's evaluations would not
// verify, but only after its attempt was counted, and a registration would
// store shares no node can unwrap.
//
// Nothing in a record's answer names the cluster, so the check asks every
// pinned node for its cluster's descriptor (GetClusterDescriptor, a stale
// read: a cluster id and a node's keys never change, and a node answers it
// without a leader). Contracts:
// - a node disowns the pinned descriptor when it announces another cluster
//   id, or other identity or agreement keys for its own node id; a node
//   that does not list its id (a membership change), fails or does not
//   answer says nothing either way;
// - the descriptor is refused (ClusterMismatchError) only when a majority of
//   the pinned nodes (recordQuorum) disown it: no single node, rogue or
//   misconfigured, can stop a client, and an honest cluster that is not the
//   pinned one is recognised with a minority of its nodes down;
// - it takes one parallel round of calls, cut short readGraceMs after a
//   majority answered (gatherWithGrace), and is never retried; a client
//   asks until one round confirms the descriptor (ClusterCheck), then never
//   again.
import { equalBytes } from "../../proto/crypto/index.js";
import type { ClusterDescriptor as RemoteDescriptor } from "../../proto/gen/bkv/v1/vault_pb.js";
import type { ClusterDescriptor, NodeEntry } from "./descriptor.js";
import { ClusterMismatchError, type DisowningNode, printable } from "./errors.js";
import { gatherWithGrace } from "./gather.js";
import { recordQuorum } from "./records.js";
import type { Transport } from "./transport.js";

/** How a node's announced descriptor compares with the pinned one for that node. */
export type Announcement =
  | { readonly kind: "matches" }
  /** The node's cluster does not list the node's pinned id. */
  | { readonly kind: "unlisted" }
  | { readonly kind: "differs"; readonly why: string };

/** Compares what `remote` (a node's GetClusterDescriptor answer) says of `node` with the pinned descriptor `pinned`. */
export function compareAnnouncement(pinned: ClusterDescriptor, node: NodeEntry, remote: RemoteDescriptor): Announcement {
  if (remote.clusterId !== pinned.clusterId) {
    return { kind: "differs", why: `cluster id ${JSON.stringify(printable(remote.clusterId))} (pinned: ${JSON.stringify(pinned.clusterId)})` };
  }
  const self = remote.nodes.find((n) => n.nodeId === BigInt(node.nodeId));
  if (self === undefined) return { kind: "unlisted" };
  if (!equalBytes(self.identityPublicKey, node.identityPublicKey)) return { kind: "differs", why: "another identity key than the pinned one" };
  if (!equalBytes(self.agreementPublicKey, node.agreementPublicKey)) return { kind: "differs", why: "another agreement key than the pinned one" };
  return { kind: "matches" };
}

/**
 * Throws ClusterMismatchError when a majority of the pinned nodes disown
 * `pinned`. Resolves true when a majority announce it (the descriptor is
 * the cluster's), false when too few answered to tell. Calls carry the
 * token of `user` (GetClusterDescriptor takes any of the cluster's).
 */
export async function checkCluster(transport: Transport, pinned: ClusterDescriptor, o: { timeoutMs: number; graceMs: number; user: string }): Promise<boolean> {
  const quorum = recordQuorum(pinned.nodes.length);
  const { values } = await gatherWithGrace(pinned.nodes.map((node) => announcement(transport, pinned, node, o)), o.graceMs, quorum);
  const disowned = values.filter((v): v is DisowningNode => typeof v === "object");
  if (disowned.length >= quorum) throw new ClusterMismatchError(pinned.clusterId, disowned.sort((a, b) => a.nodeId - b.nodeId));
  return values.filter((v) => v === "matches").length >= quorum;
}

/**
 * checkCluster once per client: a cluster id and a node's keys never
 * change, so the first round in which a majority announce the pinned
 * descriptor holds for the client's life. Concurrent calls share the round
 * in flight; a round that could not tell, or failed, is asked again by the
 * next call.
 */
export class ClusterCheck {
  private confirmed: Promise<boolean> | undefined;
  constructor(private readonly round: (user: string) => Promise<boolean>) {}

  async run(user: string): Promise<void> {
    const round = this.confirmed ?? this.round(user);
    this.confirmed = round;
    try {
      if (!(await round) && this.confirmed === round) this.confirmed = undefined;
    } catch (err) {
      if (this.confirmed === round) this.confirmed = undefined;
      throw err;
    }
  }
}

/** What `node` says of the pinned descriptor: "matches", a DisowningNode, or undefined when it does not list its id. Rejects when it does not answer. */
async function announcement(transport: Transport, pinned: ClusterDescriptor, node: NodeEntry, o: { timeoutMs: number; user: string }): Promise<DisowningNode | "matches" | undefined> {
  const res = await transport.call(node.address, "getClusterDescriptor", { stale: true }, o.timeoutMs, o.user);
  if (res.descriptor === undefined) throw new Error(`node ${node.nodeId} answered no descriptor`);
  const found = compareAnnouncement(pinned, node, res.descriptor);
  if (found.kind === "differs") return { nodeId: node.nodeId, address: node.address, why: found.why };
  return found.kind === "matches" ? "matches" : undefined;
}
