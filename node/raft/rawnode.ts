// RawNode: the application's handle on one Raft node (etcd raft's RawNode).
// Single-threaded and synchronous. The application loop is:
//   tick() / step() / propose() ...; if (hasReady()) { rd = ready();
//   persist rd.snapshot, rd.entries, rd.hardState; send rd.messages;
//   apply rd.committedEntries and rd.snapshot; advance(rd) }
// A Ready's contents are handed out exactly once: calling ready() again
// before advance() returns only what is new.

import { encodeConfChange } from "./confchange.js";
import type { Config } from "./config.js";
import { NO_LIMIT } from "./log.js";
import { ProgressState } from "./progress.js";
import { Raft } from "./raft.js";
import {
  type ConfChange,
  type ConfState,
  EntryType,
  ErrProposalDropped,
  type HardState,
  type Message,
  MessageType,
  NONE,
  type NodeId,
  RaftPanic,
  type Ready,
  type SnapshotChunk,
  type SoftState,
  StateType,
  message,
} from "./types.js";

/** A message that is invalid for RawNode.step (local type, wrong recipient, malformed). */
export class ErrInvalidMessage extends Error {
  override name = "ErrInvalidMessage";
}

export interface ProgressStatus {
  readonly match: number;
  readonly next: number;
  readonly state: ProgressState;
  readonly recentActive: boolean;
  readonly pendingSnapshot: number;
  readonly inflightMsgs: number;
  readonly inflightBytes: number;
  readonly isLearner: boolean;
}

export interface Status {
  readonly id: NodeId;
  readonly hardState: HardState;
  readonly softState: SoftState;
  readonly applied: number;
  readonly lastIndex: number;
  /** Per-member replication progress; null unless this node is the leader. */
  readonly progress: ReadonlyMap<NodeId, ProgressStatus> | null;
  readonly confState: ConfState;
  readonly leadTransferee: NodeId;
  /** Appends refused because they would have replaced committed entries (should stay 0). */
  readonly refusedTruncations: number;
}

/** Types that only the node itself may generate (Prop, ReadIndex and TransferLeader may be forwarded). */
const LOCAL_ONLY = new Set([
  MessageType.Hup, MessageType.Beat, MessageType.Unreachable, MessageType.SnapStatus, MessageType.CheckQuorum,
]);

/** Forwarded requests carry no term; every other network message does (a vote rejection may carry 0). */
const TERMLESS = new Set([MessageType.Prop, MessageType.ReadIndex]);
const VOTE_RESPONSES = new Set([MessageType.VoteResp, MessageType.PreVoteResp]);

export class RawNode {
  private readonly raft: Raft;
  private prevSoftState: SoftState;
  private prevHardState: HardState;
  private maxCommittedSize: number;

  constructor(config: Config) {
    this.raft = new Raft(config);
    this.prevSoftState = this.raft.softState();
    this.prevHardState = this.raft.hardState();
    this.maxCommittedSize = config.maxCommittedSizePerReady ?? config.maxSizePerMsg ?? NO_LIMIT;
  }

  /**
   * Sets the most bytes of committed entries one Ready hands out (at least
   * one entry whatever its size), from the next Ready on: a host may size
   * its Readies by what applying them costs it. Panics unless a positive
   * integer.
   */
  setMaxCommittedSizePerReady(bytes: number): void {
    if (!Number.isSafeInteger(bytes) || bytes < 1) throw new RaftPanic(`maxCommittedSizePerReady must be a positive integer (got ${bytes})`);
    this.maxCommittedSize = bytes;
  }

  tick(): void {
    this.guard(() => this.raft.tick());
  }

  /** Starts an election now (as if the election timeout elapsed). */
  campaign(): void {
    this.guard(() => this.raft.step(message({ type: MessageType.Hup, from: this.raft.id })));
  }

  /** Proposes data; throws ErrProposalDropped if there is no leader, a transfer runs or the cap is reached. */
  propose(data: Uint8Array): void {
    this.proposeMany([data]);
  }

  /**
   * Proposes several entries in one MsgProp: a leader appends them together
   * and replicates them in the same MsgApp; a follower forwards them in one
   * message. All or none: throws ErrProposalDropped and appends nothing when
   * the proposal cannot be taken. An empty list is a no-op.
   */
  proposeMany(data: readonly Uint8Array[]): void {
    if (data.length === 0) return;
    this.guard(() => this.raft.step(message({
      type: MessageType.Prop, from: this.raft.id,
      entries: data.map((d) => ({ term: 0, index: 0, type: EntryType.Normal, data: d })),
    })));
  }

  /** Proposes a membership change; only the leader accepts one, and only when none is pending. */
  proposeConfChange(cc: ConfChange): void {
    const refusal = this.raft.confChangeRefusal(cc);
    if (refusal !== undefined) throw new ErrProposalDropped(`conf change refused: ${refusal}`);
    const data = encodeConfChange(cc);
    this.guard(() => this.raft.step(message({
      type: MessageType.Prop, from: this.raft.id, entries: [{ term: 0, index: 0, type: EntryType.ConfChange, data }],
    })));
  }

  /** Called by the application when it applies a committed ConfChange entry. Returns the new membership. */
  applyConfChange(cc: ConfChange): ConfState {
    return this.guard(() => this.raft.applyConfChange(cc));
  }

  /** Feeds a message from the network. Proposals the leader cannot take are dropped silently. */
  step(m: Message): void {
    this.validate(m);
    this.guard(() => {
      try {
        this.raft.step(m);
      } catch (e) {
        if (!(e instanceof ErrProposalDropped)) throw e;
      }
    });
  }

  private validate(m: Message): void {
    if (typeof MessageType[m.type] !== "string") throw new ErrInvalidMessage(`step: unknown message type ${String(m.type)}`);
    if (LOCAL_ONLY.has(m.type)) throw new ErrInvalidMessage(`step: local message type ${MessageType[m.type]} refused`);
    if (m.to !== this.raft.id) throw new ErrInvalidMessage(`step: message to ${m.to} delivered to ${this.raft.id}`);
    if (!Number.isSafeInteger(m.from) || m.from <= 0) throw new ErrInvalidMessage(`step: invalid sender ${m.from}`);
    if (!isIndex(m.term)) throw new ErrInvalidMessage(`step: invalid term ${m.term}`);
    if ((m.term === 0) !== TERMLESS.has(m.type) && !(m.term === 0 && m.reject && VOTE_RESPONSES.has(m.type))) {
      throw new ErrInvalidMessage(`step: ${MessageType[m.type]} with term ${m.term}`);
    }
    if (m.type === MessageType.App && m.entries.some((e, i) => e.index !== m.index + 1 + i)) {
      throw new ErrInvalidMessage(`step: MsgApp entries not contiguous after index ${m.index}`);
    }
    if (m.type === MessageType.Prop && m.entries.length === 0) throw new ErrInvalidMessage("step: empty MsgProp");
    if (m.type === MessageType.App && m.entries.some((e) => !isIndex(e.term) || e.term > m.term)) {
      throw new ErrInvalidMessage(`step: MsgApp entry term outside [1, ${m.term}]`);
    }
    if (!isIndex(m.index) || !isIndex(m.commit) || !isIndex(m.logTerm) || !isIndex(m.rejectHint)) {
      throw new ErrInvalidMessage("step: index, commit, logTerm and rejectHint must be non-negative integers");
    }
    if (m.type === MessageType.Snap) validateChunk(m.snapshot);
  }

  /** Requests a linearizable read point; the answer arrives in Ready.readStates with the same context. */
  readIndex(context: Uint8Array): void {
    this.guard(() => {
      try {
        this.raft.step(message({ type: MessageType.ReadIndex, from: NONE, context }));
      } catch (e) {
        if (!(e instanceof ErrProposalDropped)) throw e;
      }
    });
  }

  /** Asks the leader to hand leadership to `to` (forwarded if this node is a follower). */
  transferLeadership(to: NodeId): void {
    this.guard(() => this.raft.step(message({ type: MessageType.TransferLeader, from: to })));
  }

  reportUnreachable(id: NodeId): void {
    this.guard(() => this.raft.step(message({ type: MessageType.Unreachable, from: id })));
  }

  /** The transport reports whether a snapshot reached `id`; ok=false restarts the transfer on the next probe. */
  reportSnapshot(id: NodeId, ok: boolean): void {
    this.guard(() => this.raft.step(message({ type: MessageType.SnapStatus, from: id, reject: !ok })));
  }

  hasReady(): boolean {
    const r = this.raft;
    const u = r.log.unstable;
    return !softStateEqual(r.softState(), this.prevSoftState) ||
      !hardStateEqual(r.hardState(), this.prevHardState) ||
      u.nextSnapshot() !== null || u.hasNextEntries() ||
      r.msgs.length > 0 || r.readHeartbeatDue || r.readStates.length > 0 || r.log.hasNextCommittedEntries();
  }

  /** Returns the pending work and marks it handed out (see the Ready contract in types.ts). */
  ready(): Ready {
    const r = this.raft;
    r.flushReadHeartbeat();
    const u = r.log.unstable;
    const soft = r.softState();
    const hard = r.hardState();
    const entries = u.nextEntries();
    const snapshot = u.nextSnapshot();
    const committedEntries = r.log.nextCommittedEntries(this.maxCommittedSize);
    const hardChanged = !hardStateEqual(hard, this.prevHardState);
    const rd: Ready = {
      softState: softStateEqual(soft, this.prevSoftState) ? null : soft,
      hardState: hardChanged ? hard : null,
      readStates: r.readStates,
      entries,
      snapshot,
      committedEntries,
      messages: r.msgs,
      mustSync: entries.length > 0 || snapshot !== null ||
        hard.term !== this.prevHardState.term || hard.vote !== this.prevHardState.vote,
    };
    this.prevSoftState = soft;
    this.prevHardState = hard;
    r.readStates = [];
    r.msgs = [];
    u.acceptInProgress();
    const lastCommitted = committedEntries[committedEntries.length - 1];
    if (lastCommitted !== undefined) r.log.acceptApplying(lastCommitted.index);
    return rd;
  }

  /** Acknowledges that rd was persisted and its committed entries (and snapshot) applied. */
  advance(rd: Ready): void {
    this.guard(() => {
      const r = this.raft;
      r.reduceUncommittedSize(rd.committedEntries);
      const lastCommitted = rd.committedEntries[rd.committedEntries.length - 1];
      if (lastCommitted !== undefined) r.log.appliedTo(lastCommitted.index);
      const lastEntry = rd.entries[rd.entries.length - 1];
      if (lastEntry !== undefined) r.log.unstable.stableTo(lastEntry.index, lastEntry.term);
      if (rd.snapshot !== null) {
        r.log.unstable.stableSnapTo(rd.snapshot.metadata.index);
        if (rd.snapshot.metadata.index > r.log.applied) r.log.appliedTo(rd.snapshot.metadata.index);
      }
    });
  }

  status(): Status {
    const r = this.raft;
    let progress: Map<NodeId, ProgressStatus> | null = null;
    if (r.state === StateType.Leader) {
      progress = new Map();
      for (const [id, pr] of r.prs.progress) {
        progress.set(id, {
          match: pr.match, next: pr.next, state: pr.state, recentActive: pr.recentActive,
          pendingSnapshot: pr.pendingSnapshot, inflightMsgs: pr.inflights.count(),
          inflightBytes: pr.inflights.inflightBytes(), isLearner: pr.isLearner,
        });
      }
    }
    return {
      id: r.id, hardState: r.hardState(), softState: r.softState(), applied: r.log.applied,
      lastIndex: r.log.lastIndex(), progress, confState: r.prs.confState(),
      leadTransferee: r.leadTransferee, refusedTruncations: r.refusedTruncations,
    };
  }

  /** Runs f, then checks the invariants that must hold after every call (RaftPanic if broken). */
  private guard<T>(f: () => T): T {
    const term = this.raft.term;
    const commit = this.raft.log.committed;
    const out = f();
    const r = this.raft;
    const l = r.log;
    if (r.term < term) throw new RaftPanic(`invariant: term decreased ${term} -> ${r.term}`);
    if (l.committed < commit) throw new RaftPanic(`invariant: commit decreased ${commit} -> ${l.committed}`);
    if (l.applied > l.committed || l.applying > l.committed) {
      throw new RaftPanic(`invariant: applied ${l.applied}/applying ${l.applying} > committed ${l.committed}`);
    }
    if (l.committed > l.lastIndex()) throw new RaftPanic(`invariant: committed ${l.committed} > last ${l.lastIndex()}`);
    return out;
  }
}

function isIndex(n: number): boolean {
  return Number.isSafeInteger(n) && n >= 0;
}

function validateChunk(c: SnapshotChunk | null): void {
  if (c === null) throw new ErrInvalidMessage("step: MsgSnap without chunk");
  const { index, term, confState } = c.metadata;
  if (!isIndex(index) || index === 0 || !isIndex(term) || !isIndex(c.offset) || !isIndex(c.totalSize) ||
      c.offset + c.data.byteLength > c.totalSize) {
    throw new ErrInvalidMessage("step: MsgSnap chunk with invalid index, term, offset or size");
  }
  const ids = [...confState.voters, ...confState.learners];
  if (ids.some((id) => !Number.isSafeInteger(id) || id <= 0) || new Set(ids).size !== ids.length) {
    throw new ErrInvalidMessage("step: MsgSnap chunk with an invalid configuration");
  }
}

function softStateEqual(a: SoftState, b: SoftState): boolean {
  return a.lead === b.lead && a.state === b.state;
}

function hardStateEqual(a: HardState, b: HardState): boolean {
  return a.term === b.term && a.vote === b.vote && a.commit === b.commit;
}
