// The members one node knows: Raft's conf state and each member's peer
// address, with the transport's peer set kept equal to the addresses (this
// node excepted). Changed only by what the Ready loop applies, in log order:
// a snapshot (reset) or a membership entry (applyConfChange).
import { type ConfChange, ConfChangeType, type ConfState, type Message, NONE, type NodeId, applyToConfState } from "../raft/index.js";
import type { PeerLink } from "./loop-types.js";

/** A membership entry's context: the address of the member it adds. */
export function encodePeerContext(address: string): Uint8Array {
  return new TextEncoder().encode(address);
}

export class Membership {
  private readonly addresses = new Map<NodeId, string>();
  private link: PeerLink | null = null;
  private state: ConfState;

  /** `peers`: the addresses a snapshot recorded with `confState`. */
  constructor(private readonly self: NodeId, confState: ConfState, peers: ReadonlyMap<NodeId, string>) {
    this.state = confState;
    for (const [id, addr] of peers) this.addresses.set(id, addr);
  }

  get confState(): ConfState {
    return this.state;
  }

  get peers(): ReadonlyMap<NodeId, string> {
    return this.addresses;
  }

  /**
   * Connects the transport to every known member. `addressBook` (the
   * config's nodes) lets a joining node answer the leader before a snapshot
   * tells it the members; the replicated address wins where both know a node.
   */
  connect(link: PeerLink, addressBook: ReadonlyMap<NodeId, string>): void {
    this.link = link;
    for (const [id, addr] of addressBook) if (!this.addresses.has(id)) this.addPeer(id, addr);
    for (const [id, addr] of this.addresses) this.addPeer(id, addr);
  }

  /** Takes a restored snapshot's members: peers it does not name are dropped from the transport. */
  reset(confState: ConfState, peers: ReadonlyMap<NodeId, string>): void {
    for (const id of this.addresses.keys()) if (!peers.has(id)) this.removePeer(id);
    this.addresses.clear();
    for (const [id, addr] of peers) {
      this.addresses.set(id, addr);
      this.addPeer(id, addr);
    }
    this.state = confState;
  }

  /**
   * Why Raft ignores membership change `cc` against the current configuration
   * (the one Raft holds: this node's copy follows it), or undefined when the
   * change takes effect. The configuration is what the snapshot and the
   * entries before made it, so every node gives the same answer at one index.
   */
  ignoredReason(cc: ConfChange): string | undefined {
    const next = applyToConfState(this.state, cc);
    return typeof next === "string" ? next : undefined;
  }

  /**
   * Records an applied membership change; `confState` is what Raft answered
   * for it. A change Raft ignored (invalid against the configuration, e.g.
   * adding a member again) leaves the addresses and links as they were.
   */
  applyConfChange(cc: ConfChange, confState: ConfState): void {
    const changed = !sameConfState(this.state, confState);
    this.state = confState;
    if (!changed) return;
    if (cc.type === ConfChangeType.AddLearner) {
      const addr = new TextDecoder().decode(cc.context);
      this.addresses.set(cc.nodeId, addr);
      this.addPeer(cc.nodeId, addr);
    } else if (cc.type === ConfChangeType.RemoveNode) {
      this.addresses.delete(cc.nodeId);
      this.removePeer(cc.nodeId);
    }
  }

  /** The members this node knows and those a snapshot message names: who may vouch for its state. */
  withSnapshotOf(m: Message): NodeId[] {
    const named = m.snapshot?.metadata.confState;
    const s = this.state;
    return [...s.voters, ...s.learners, ...(named?.voters ?? []), ...(named?.learners ?? [])];
  }

  /** The voter other than this node with the highest match index in `progress` (a leader's), or NONE. */
  mostCaughtUpVoter(progress: ReadonlyMap<NodeId, { readonly match: number }> | null): NodeId {
    let best: NodeId = NONE;
    let bestMatch = -1;
    for (const id of this.confState.voters) {
      const pr = progress?.get(id);
      if (id === this.self || pr === undefined) continue;
      if (pr.match > bestMatch) { best = id; bestMatch = pr.match; }
    }
    return best;
  }

  private addPeer(id: NodeId, addr: string): void {
    if (id !== this.self) this.link?.addPeer(id, addr);
  }

  private removePeer(id: NodeId): void {
    if (id !== this.self) this.link?.removePeer(id);
  }
}

function sameConfState(a: ConfState, b: ConfState): boolean {
  const same = (x: readonly NodeId[], y: readonly NodeId[]) => x.length === y.length && x.every((id, i) => id === y[i]);
  return same(a.voters, b.voters) && same(a.learners, b.learners);
}
