// Holds back a leader's commit-only MsgApps for a moment, so that the next
// MsgApp to the same follower carries the commit index instead.
//
// Raft's leader sends every follower an empty MsgApp as soon as its commit
// index moves (leader.ts bcastAppend, as etcd does): one message out and one
// MsgAppResp back per follower per commit. At one call in flight that is half
// of the leader's peer messages, and a peer message costs far more than its
// bytes (grpc-js, HTTP/2, TLS and a wake-up on each side: docs/benchmarks.md).
// Held for up to `holdMs`, it is dropped when another MsgApp to that follower
// leaves first (the next proposal's, usually well within holdMs when calls
// follow one another), and sent as it was when none does.
//
// Why it is safe: a message may be lost or late in Raft's model; this delays
// or drops only messages without entries; a leader's commit index never falls
// within its term, so the MsgApp that supersedes a held one carries a commit
// index at least as high. A follower learns the commit up to holdMs later
// and applies later. Reads do not wait for that: a ReadIndex round's
// heartbeat carries the commit index itself (leader.ts bcastHeartbeat). An
// Evaluate does (it waits for its attempt to apply on the node asked); the
// client asks every share holder at once, so the leader sends what it holds
// when its own Evaluate arrives (RaftLoop.sendHeldCommits, flush).
import { type Message, MessageType, type NodeId } from "../raft/index.js";

/** Runs `fn` after `ms`; returns a function that cancels it. */
export type Schedule = (fn: () => void, ms: number) => () => void;

const realSchedule: Schedule = (fn, ms) => {
  const t = setTimeout(fn, ms);
  return () => clearTimeout(t);
};

/** An empty MsgApp: it carries nothing a later MsgApp to the same peer does not. */
function isCommitOnly(m: Message): boolean {
  return m.type === MessageType.App && m.entries.length === 0;
}

export class CommitHold {
  private readonly held = new Map<NodeId, Message>();
  private cancel: (() => void) | null = null;

  constructor(
    private readonly out: (messages: readonly Message[]) => void,
    private readonly holdMs: number,
    private readonly schedule: Schedule = realSchedule,
  ) {
    if (!(holdMs >= 0)) throw new RangeError(`holdMs must be >= 0, not ${holdMs}`);
  }

  /** Sends `messages` on, except commit-only MsgApps (held); any MsgApp drops the one held for its peer. */
  send(messages: readonly Message[]): void {
    const now: Message[] = [];
    for (const m of messages) {
      if (m.type === MessageType.App) this.held.delete(m.to);
      if (isCommitOnly(m) && this.holdMs > 0) this.held.set(m.to, m);
      else now.push(m);
    }
    if (now.length > 0) this.out(now);
    if (this.held.size === 0) this.stopTimer(); // a later hold gets its full holdMs
    else this.cancel ??= this.schedule(() => this.flush(), this.holdMs);
  }

  private stopTimer(): void {
    this.cancel?.();
    this.cancel = null;
  }

  /** Sends what is held now (the hold expired, or the caller knows no MsgApp is coming). */
  flush(): void {
    this.stopTimer();
    if (this.held.size === 0) return;
    const messages = [...this.held.values()];
    this.held.clear();
    this.out(messages);
  }

  /** Drops what is held (the node stops). */
  stop(): void {
    this.stopTimer();
    this.held.clear();
  }

  /** Peers with a commit-only MsgApp held (tests). */
  get holding(): readonly NodeId[] {
    return [...this.held.keys()];
  }
}
