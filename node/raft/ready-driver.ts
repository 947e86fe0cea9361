// The one Ready loop of bkv: takes a RawNode's Readys one at a time, starts
// each Ready's write, and orders its sends and applies around that write
// (planReady; the safety argument is in docs/raft.md, "Sending while the
// leader writes"). Pure: the write, the sends and the applies are the host's;
// the driver has no timers, clocks or I/O. Invariants:
// - only one Ready is in flight: next() takes a Ready only once the previous
//   Ready's write completed (writeDone) and it was advanced;
// - a message leaves before its Ready's write completes only as planReady
//   allows (a leader's App/Heartbeat/Snap that counts nothing undurable, or
//   any message of a Ready that writes nothing but the commit index); every
//   other message (AppResp, votes, ...) waits for the write;
// - a committed entry is applied only once it is durable here: before the
//   write completes only when planReady says so, otherwise after it;
// - apply is called exactly once per Ready, before advance.

import type { HardState, Message, Ready, Storage } from "./types.js";
import { MessageType, StateType } from "./types.js";

/** The part of RawNode the driver uses. */
export interface ReadySource {
  hasReady(): boolean;
  ready(): Ready;
  advance(rd: Ready): void;
}

/** What the host does with a Ready; the driver decides when. */
export interface ReadyHost {
  /** Called first with every Ready taken, before anything of it is written, sent or applied (soft state, tracing). */
  observe?(rd: Ready): void;
  /**
   * Starts writing rd.snapshot, rd.entries and rd.hardState (fsynced when
   * rd.mustSync). The host calls ReadyDriver.writeDone() once it is
   * durable, after write() returned.
   */
  write(rd: Ready): void;
  /** Sends messages; `whileWriting` is true for those sent before the Ready's write completed. */
  send(messages: readonly Message[], whileWriting: boolean): void;
  /**
   * Restores rd.snapshot (if any) and applies rd.committedEntries in order
   * (and hands over rd.readStates). Called once per Ready; `whileWriting`
   * is true when the write has not completed yet (never with a snapshot).
   */
  apply(rd: Ready, whileWriting: boolean): void;
}

interface InFlight {
  readonly rd: Ready;
  readonly plan: ReadyPlan;
}

export class ReadyDriver {
  private inFlight: InFlight | null = null;
  private role: StateType = StateType.Follower;

  /**
   * `storage` is the one the RawNode reads: it must expose a Ready's hard
   * state and entries only once their write completed (DiskStorage does;
   * so does a MemoryStorage written at write completion).
   */
  constructor(private readonly raw: ReadySource, private readonly storage: Storage, private readonly host: ReadyHost) {}

  /** True while a Ready's write runs (until writeDone). */
  get writing(): boolean {
    return this.inFlight !== null;
  }

  /**
   * Takes the next Ready, if there is one and none is in flight, starts its
   * write and does what may happen while the write runs. Returns whether it
   * took a Ready.
   */
  next(): boolean {
    if (this.inFlight !== null || !this.raw.hasReady()) return false;
    const rd = this.raw.ready();
    if (rd.softState !== null) this.role = rd.softState.state;
    this.host.observe?.(rd);
    const plan = planReady(rd, this.role, durableState(this.storage));
    this.inFlight = { rd, plan };
    this.host.write(rd);
    if (plan.early.length > 0) this.host.send(plan.early, true);
    if (plan.applyBeforeWrite) this.host.apply(rd, true);
    return true;
  }

  /** The in-flight Ready's write is durable: sends what waited for it, applies (if not yet) and advances. */
  writeDone(): void {
    const f = this.inFlight;
    if (f === null) throw new Error("ReadyDriver.writeDone: no write in flight");
    if (f.plan.late.length > 0) this.host.send(f.plan.late, false);
    if (!f.plan.applyBeforeWrite) this.host.apply(f.rd, false);
    this.raw.advance(f.rd);
    this.inFlight = null;
  }
}

/** What this node had made durable when a Ready was taken. */
export interface DurableState {
  /** The storage's hard state (its term and vote are always synced before they show). */
  readonly hardState: HardState;
  /** The storage's last index: the durable log. */
  readonly lastIndex: number;
}

export function durableState(storage: Storage): DurableState {
  return { hardState: storage.initialState().hardState, lastIndex: storage.lastIndex() };
}

/** What of a Ready may happen while its write runs, and what must wait for it. */
export interface ReadyPlan {
  /** Sent before the write completes. */
  readonly early: readonly Message[];
  /** Sent once the write is durable. */
  readonly late: readonly Message[];
  /** The committed entries are durable here already and may be applied before the write completes. */
  readonly applyBeforeWrite: boolean;
}

/** Message types a leader may send while its own copy of their entries is being written. */
const REPLICATION = new Set([MessageType.App, MessageType.Heartbeat, MessageType.Snap]);

/**
 * Orders the work of `rd` around its write (etcd's Ready contract; Raft
 * thesis §10.2.1; the safety argument is in docs/raft.md):
 * - a Ready that changes nothing but the commit index (writesOnlyCommit):
 *   every message is early (everything the node holds is durable);
 * - otherwise a leader's App, Heartbeat and Snap messages are early when the
 *   Ready changes neither term nor vote, appends right after the durable log
 *   and commits nothing above it: they may carry entries that are not durable
 *   here yet, never a commit index that counts them. Everything else
 *   (AppResp, votes, TimeoutNow, a follower's messages) is late;
 * - committed entries are applied before the write when every one of them is
 *   durable here and none is replaced by this Ready's entries.
 */
export function planReady(rd: Ready, role: StateType, durable: DurableState): ReadyPlan {
  const lastCommitted = rd.committedEntries.at(-1)?.index ?? 0;
  const firstNew = rd.entries[0]?.index ?? Infinity;
  const applyBeforeWrite = rd.snapshot === null && lastCommitted <= durable.lastIndex && lastCommitted < firstNew;
  if (writesOnlyCommit(rd, durable.hardState)) return { early: rd.messages, late: [], applyBeforeWrite };
  if (!maySendEarly(rd, role, durable)) return { early: [], late: rd.messages, applyBeforeWrite };
  const early: Message[] = [];
  const late: Message[] = [];
  for (const m of rd.messages) (REPLICATION.has(m.type) ? early : late).push(m);
  return { early, late, applyBeforeWrite };
}

function maySendEarly(rd: Ready, role: StateType, durable: DurableState): boolean {
  if (role !== StateType.Leader || rd.snapshot !== null) return false;
  const hs = rd.hardState ?? durable.hardState;
  if (hs.term !== durable.hardState.term || hs.vote !== durable.hardState.vote) return false;
  if (hs.commit > durable.lastIndex) return false; // e.g. a single voter commits at append: only after the write
  const first = rd.entries[0];
  return first === undefined || first.index === durable.lastIndex + 1;
}

/**
 * True when writing `rd` can change nothing but the commit index: no entries,
 * no snapshot, term and vote unchanged. Every entry the node holds is then
 * durable, so no message of it needs to wait for the write (a commit index is
 * not fsynced on its own; etcd's mustSync = false).
 */
export function writesOnlyCommit(rd: Ready, durable: HardState): boolean {
  if (rd.entries.length > 0 || rd.snapshot !== null || rd.mustSync) return false;
  return rd.hardState === null || (rd.hardState.term === durable.term && rd.hardState.vote === durable.vote);
}
