// The leader's time on the vault entries it appends (the throttling clock:
// node/vault stampTime). A leader stamps its own proposals and the ones
// forwarded to it; a follower's proposal is stamped by the leader it reaches.
// Before the cluster's clock was first read (cluster-clock.ts) nothing is
// stamped: a leader's own proposal is dropped (its caller retries) and a
// forwarded one too (the follower's caller times out and retries), rather
// than stamped with a clock no peer confirmed, since a stamp can move the
// state's time forward for good.
import { EntryType, ErrProposalDropped, type Message } from "../raft/index.js";
import { stampTime } from "../vault/index.js";

export class LeaderStamp {
  /** `clusterNow`: the cluster's time, or null before this node first read the cluster's clock. */
  constructor(private readonly clusterNow: () => number | null) {}

  /** A leader's own entry, stamped; throws ErrProposalDropped before the clock was read. */
  entry(data: Uint8Array): Uint8Array {
    const now = this.clusterNow();
    if (now === null) throw new ErrProposalDropped("the leader has not read the cluster's clock yet");
    return stampTime(data, now);
  }

  /** A forwarded proposal with the time stamped on each vault entry, or null (dropped) before the clock was read. */
  forwarded(m: Message): Message | null {
    const now = this.clusterNow();
    if (now === null) return null;
    return { ...m, entries: m.entries.map((e) => (e.type === EntryType.Normal && e.data.length > 0 ? { ...e, data: stampTime(e.data, now) } : e)) };
  }
}
