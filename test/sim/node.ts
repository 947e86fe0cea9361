// One simulated server: a RawNode, its durable storage, its state machine,
// and the library's ReadyDriver (the Ready loop the server runs). Writes are
// asynchronous: a Ready's write completes 0..maxWriteDelay ticks of virtual
// time after it started (one at a time, so in order), and until then the
// driver may already have sent a leader's replication messages and applied
// entries that were durable before. The storage (a MemoryStorage, which the
// RawNode reads) holds only what completed: a Ready with mustSync is durable
// once its write completed; a Ready without it (a commit-index-only hard
// state) is written but lost by a crash before the next sync. Creating a
// snapshot is a sync point (the snapshot file is fsynced, and the log is
// sequential). A crash loses the RawNode, the state machine and the write in
// flight; a restart rebuilds both from the durable storage.

import {
  ConfChangeType,
  type ConfState,
  type Entry,
  EntryType,
  type HardState,
  type Message,
  MessageType,
  type NodeId,
  type Ready,
  type Snapshot,
  StateType,
} from "../../node/raft/types.js";
import { type Checker, type LogView, Violation } from "./checker.js";
import type { Prng } from "./prng.js";
import type { RaftLib, SimRawNode, SimReadyDriver, SimStorage } from "./raft-lib.js";
import { StateMachine } from "./state-machine.js";

/**
 * Where, within the handling of one Ready, a crash strikes: before its write
 * starts; while the write runs (after the early sends and applies, losing
 * the write); right after the write completed, before the late sends; in the
 * middle of sending (early or late); after applying, before compaction.
 */
export type CrashPoint = "before-write" | "during-write" | "after-write" | "mid-send" | "after-apply";
export const CRASH_POINTS: readonly CrashPoint[] = ["before-write", "during-write", "after-write", "mid-send", "after-apply"];

export interface NodeParams {
  readonly electionTick: number;
  readonly heartbeatTick: number;
  readonly maxSizePerMsg: number;
  readonly maxInflightMsgs: number;
  readonly maxSnapshotChunkBytes: number;
  /** Take a state-machine snapshot once this many entries were applied since the last one. */
  readonly snapshotEvery: number;
  /** Entries kept in the log below the snapshot index after compaction. */
  readonly compactKeep: number;
  /** A write completes 0..maxWriteDelay ticks after it started. */
  readonly maxWriteDelay: number;
}

export type NodeStat = "leaders" | "snapshotsInstalled" | "confChangesApplied" | "compactions" | "sentWhileWriting" | "appliedWhileWriting";

/** What a node needs from the cluster around it. */
export interface NodeEnv {
  readonly lib: RaftLib;
  readonly checker: Checker;
  readonly params: NodeParams;
  /** Virtual time (ticks). */
  now(): number;
  trace(node: NodeId, event: string): void;
  send(from: SimNode, m: Message): void;
  /** A proposal was applied somewhere: it is acknowledged. */
  acknowledge(proposal: number): void;
  readDone(node: NodeId, context: Uint8Array, index: number): void;
  /** Counts an event for the run's statistics. */
  count(stat: NodeStat): void;
  /** The node just became leader. */
  elected(node: NodeId): void;
  /** The node just crashed (the cluster schedules its restart). */
  crashed(node: NodeId): void;
}

export const STATE_NAMES = ["follower", "pre-candidate", "candidate", "leader"];

export function storageView(s: SimStorage): LogView {
  return {
    snapshotIndex: () => s.firstIndex() - 1,
    lastIndex: () => s.lastIndex(),
    term: (i) => s.term(i),
    entry: (i) => s.entries(i, i + 1, Number.MAX_SAFE_INTEGER)[0]!,
  };
}

/** The durable snapshot every founding member starts from: index 1, term 1, the initial voters. */
export function bootstrapSnapshot(voters: readonly NodeId[]): Snapshot {
  const sm = new StateMachine();
  sm.applied = 1;
  return { metadata: { index: 1, term: 1, confState: { voters: [...voters], learners: [] } }, data: sm.encode() };
}

export class SimNode {
  readonly storage: SimStorage;
  readonly log: LogView;
  raw: SimRawNode | null = null;
  sm = new StateMachine();
  confState: ConfState = { voters: [], learners: [] };
  state = StateType.Follower;
  /** Removed from the cluster (it applied its own removal): stopped for good. */
  removed = false;
  /** Set by the cluster: the Ready being handled is cut short by a crash at this point. */
  crashPending: CrashPoint | null = null;
  /** The last hard state made durable by an fsync. */
  private synced: HardState;
  private driver: SimReadyDriver | null = null;
  /** The Ready whose write runs, and the tick at which it completes. */
  private writing: { rd: Ready; doneAt: number } | null = null;
  /** The first index the last completed write (re)wrote; Infinity once the next write starts (see isSupersededAck). */
  private rewrittenFrom = Infinity;
  private deferred: (() => void)[] = [];
  /** Write delays: a stream of its own, so that they do not shift the node's raft randomness. */
  private readonly disk: Prng;

  constructor(readonly id: NodeId, private readonly env: NodeEnv, private readonly rng: Prng, bootstrap: Snapshot | null) {
    this.disk = rng.fork("disk");
    this.storage = new env.lib.MemoryStorage();
    this.log = storageView(this.storage);
    if (bootstrap !== null) {
      this.storage.applySnapshot(bootstrap);
      this.storage.setHardState({ term: bootstrap.metadata.term, vote: 0, commit: bootstrap.metadata.index });
    }
    this.synced = this.hardState();
  }

  get live(): boolean {
    return this.raw !== null;
  }

  /** A Ready's write is running (started, not completed). */
  get isWriting(): boolean {
    return this.writing !== null;
  }

  hardState(): HardState {
    return this.storage.initialState().hardState;
  }

  /** (Re)starts from durable storage: state machine from the snapshot, raft from the log. */
  start(): void {
    const snap = this.storage.snapshot();
    this.sm = snap.metadata.index === 0 ? new StateMachine() : StateMachine.decode(snap.data);
    if (snap.metadata.index !== 0) this.env.checker.observeState(this.id, snap.metadata.index, this.sm.digest());
    this.confState = snap.metadata.confState;
    this.state = StateType.Follower;
    const p = this.env.params;
    const raw = new this.env.lib.RawNode({
      id: this.id,
      storage: this.storage,
      electionTick: p.electionTick,
      heartbeatTick: p.heartbeatTick,
      applied: this.sm.applied,
      maxSizePerMsg: p.maxSizePerMsg,
      maxInflightMsgs: p.maxInflightMsgs,
      maxSnapshotChunkBytes: p.maxSnapshotChunkBytes,
      checkQuorum: true,
      preVote: true,
      randomInt: (n) => this.rng.int(n),
    });
    this.raw = raw;
    this.driver = this.newDriver(raw);
    this.env.trace(this.id, `start applied=${this.sm.applied} ${describeHs(this.hardState())} last=${this.storage.lastIndex()}`);
  }

  /** The library's Ready driver over `raw`; its callbacks do nothing once `raw` crashed. */
  private newDriver(raw: SimRawNode): SimReadyDriver {
    const alive = () => this.raw === raw;
    return new this.env.lib.ReadyDriver(raw, this.storage, {
      observe: (rd) => { if (alive() && rd.softState !== null) this.observeSoftState(rd.softState.state, rd.softState.lead); },
      write: (rd) => { if (alive()) this.startWrite(rd); },
      send: (msgs, whileWriting) => { if (alive()) this.sendAll(msgs, whileWriting); },
      apply: (rd, whileWriting) => { if (alive()) this.applyReady(raw, rd, whileWriting); },
    });
  }

  /** Loses everything not fsynced: the RawNode, the state machine, the write in flight, an unsynced hard state. */
  crash(why: string): void {
    this.raw = null;
    this.driver = null;
    this.writing = null;
    this.crashPending = null;
    this.deferred = [];
    const hs = this.hardState();
    if (hs.commit !== this.synced.commit) this.storage.setHardState(this.synced);
    this.env.trace(this.id, `CRASH ${why} (durable: ${describeHs(this.synced)} last=${this.storage.lastIndex()})`);
    this.env.crashed(this.id);
  }

  /** Calls `fn` with the RawNode after the current Ready is advanced (e.g. reportUnreachable). */
  defer(fn: () => void): void {
    this.deferred.push(fn);
  }

  /**
   * Moves the Ready loop on as far as it can now: completes the write in
   * flight if it is due (then the driver sends what waited for it, applies
   * and advances), and takes the next Ready (starting its write). Returns
   * false if nothing happened.
   */
  handleReady(): boolean {
    const raw = this.raw;
    if (raw === null) return false;
    const finished = this.writing !== null;
    if (finished) {
      if (this.writing!.doneAt > this.env.now()) return false;
      if (!this.finishWrite(raw)) return true;
    }
    if (!raw.hasReady()) return finished;
    if (this.crashPending === "before-write") return this.crashAnd("before writing a Ready");
    return this.driver!.next();
  }

  /** Completes the write in flight and the rest of its Ready. Returns false if a crash struck. */
  private finishWrite(raw: SimRawNode): boolean {
    if (this.crashPending === "during-write") return !this.crashAnd("while writing a Ready (its write is lost)");
    this.persist(this.writing!.rd);
    this.writing = null;
    if (this.crashPending === "after-write") return !this.crashAnd("after a write completed, before sending what waited for it");
    this.driver!.writeDone();
    if (this.raw !== raw) return false; // crashed while sending
    if (this.crashPending === "after-apply") return !this.crashAnd("after applying, before compaction");
    this.maybeCompact();
    this.runDeferred(raw);
    if (this.removed) this.stopRemoved();
    return this.raw === raw;
  }

  private crashAnd(why: string): true {
    this.crash(why);
    return true;
  }

  /** The driver's write: checks the Ready contract and lets the write complete a few ticks later. */
  private startWrite(rd: Ready): void {
    if ((rd.snapshot !== null || rd.entries.length > 0) && !rd.mustSync) {
      throw new Violation("Ready Contract", `node ${this.id}: Ready with entries or a snapshot but mustSync=false`);
    }
    this.writing = { rd, doneAt: this.env.now() + this.disk.int(this.env.params.maxWriteDelay + 1) };
    this.rewrittenFrom = Infinity;
  }

  /** Makes a completed write durable: the snapshot, the entries, the hard state. */
  private persist(rd: Ready): void {
    const { checker } = this.env;
    const before = this.hardState();
    if (rd.snapshot !== null) {
      this.storage.applySnapshot(rd.snapshot);
      this.env.trace(this.id, `install snapshot index=${rd.snapshot.metadata.index} term=${rd.snapshot.metadata.term}`);
    }
    if (rd.entries.length > 0) {
      checker.checkNoCommittedOverwrite(this.id, before.commit, rd.entries, this.log);
      this.storage.append(rd.entries);
      checker.observeAppend(this.id, rd.entries, this.log);
    }
    if (rd.hardState !== null) this.persistHardState(before, rd.hardState, rd.mustSync);
    const commit = this.hardState().commit;
    if (commit > this.storage.lastIndex()) {
      throw new Violation("State Machine Safety",
        `node ${this.id} lost committed entries: its commit index is ${commit} but its durable log ends at ${this.storage.lastIndex()}`);
    }
    if (rd.mustSync) this.synced = this.hardState();
    this.rewrittenFrom = rd.entries[0]?.index ?? Infinity;
  }

  private persistHardState(before: HardState, hs: HardState, mustSync: boolean): void {
    if ((hs.term !== before.term || hs.vote !== before.vote) && !mustSync) {
      throw new Violation("Ready Contract", `node ${this.id}: term/vote changed (${describeHs(before)} -> ${describeHs(hs)}) but mustSync=false`);
    }
    if (hs.term < before.term) throw new Violation("Ready Contract", `node ${this.id}: term went back from ${before.term} to ${hs.term}`);
    this.storage.setHardState(hs);
    const durableFloor = Math.max(before.commit, this.storage.firstIndex() - 1);
    if (hs.commit > durableFloor) {
      this.env.checker.observeCommit(this.id, hs.term, before.commit, hs.commit, this.log);
      this.env.trace(this.id, `commit ${hs.commit} (term ${hs.term})`);
    }
  }

  private observeSoftState(state: StateType, lead: NodeId): void {
    if (state === this.state) return;
    this.state = state;
    const term = this.hardState().term;
    this.env.trace(this.id, `${STATE_NAMES[state] ?? state} term=${term} lead=${lead}`);
    if (state !== StateType.Leader) return;
    this.env.checker.observeLeader(this.id, term);
    this.env.count("leaders");
    this.env.elected(this.id);
  }

  /** The driver's send; a "mid-send" crash sends only a random prefix. */
  private sendAll(msgs: readonly Message[], whileWriting: boolean): void {
    const crash = this.crashPending === "mid-send";
    const n = crash ? this.rng.int(msgs.length + 1) : msgs.length;
    for (let i = 0; i < n; i++) {
      this.checkSentDurable(msgs[i]!);
      this.env.send(this, msgs[i]!);
    }
    if (whileWriting) this.env.count("sentWhileWriting");
    if (crash) this.crash(whileWriting ? "while sending, before its write completed (the write is lost)" : "while sending");
  }

  /** Ready Contract (planReady): no message acknowledges, or carries a commit index above, what is durable here. */
  private checkSentDurable(m: Message): void {
    const last = this.storage.lastIndex();
    const acked = m.type === MessageType.AppResp && !m.reject ? m.index : 0;
    const commit = m.type === MessageType.App || m.type === MessageType.Heartbeat ? m.commit : 0;
    if ((acked <= last || this.isSupersededAck(m)) && commit <= last) return;
    const what = acked > last ? `acknowledging index ${acked}` : `with commit ${commit}`;
    throw new Violation("Ready Contract", `node ${this.id} sent ${MessageType[m.type]} to ${m.to} ${what} while its durable log ends at ${last}`);
  }

  /**
   * An AppResp of an older term whose entries this very Ready replaced: the
   * node accepted them (in memory) and queued the ack, then, before the
   * Ready was taken, a leader of a later term overwrote them from
   * `rewrittenFrom` on, and the Ready wrote that leader's entries and term
   * instead (seeds 5574 and 5830). The ack is then stale, not undurable: the
   * run is indistinguishable from one where the entries were written and the
   * ack sent first and delayed in the network, and only a leader of the
   * ack's older term accepts it. A crash before the write completes loses
   * the ack with the entries (it is a late message). Only the late messages
   * of that Ready qualify: the next write resets `rewrittenFrom`.
   */
  private isSupersededAck(m: Message): boolean {
    return m.type === MessageType.AppResp && m.term < this.hardState().term && this.rewrittenFrom <= m.index;
  }

  /** The driver's apply: the snapshot, the committed entries (each durable here first), the completed reads. */
  private applyReady(raw: SimRawNode, rd: Ready, whileWriting: boolean): void {
    if (rd.snapshot !== null) this.restore(rd.snapshot);
    for (const e of rd.committedEntries) {
      this.checkApplyDurable(e);
      this.applyEntry(raw, e);
    }
    for (const rs of rd.readStates) this.env.readDone(this.id, rs.context, rs.index);
    if (whileWriting && rd.committedEntries.length > 0) this.env.count("appliedWhileWriting");
  }

  /** Ready Contract (planReady): an entry is applied only once it is durable here. */
  private checkApplyDurable(e: Entry): void {
    if (e.index <= this.log.snapshotIndex()) return;
    const last = this.storage.lastIndex();
    if (e.index <= last && this.storage.term(e.index) === e.term) return;
    throw new Violation("Ready Contract", `node ${this.id} applied entry ${e.index} (term ${e.term}) before it was durable here (durable log ends at ${last})`);
  }

  private restore(snap: Snapshot): void {
    const sm = StateMachine.decode(snap.data);
    if (sm.applied !== snap.metadata.index) {
      throw new Violation("State Machine Safety", `node ${this.id}: snapshot index ${snap.metadata.index} holds state applied to ${sm.applied}`);
    }
    this.env.checker.observeRestore(this.id, this.sm.applied, snap.metadata.index, sm.digest());
    this.env.count("snapshotsInstalled");
    this.sm = sm;
    this.confState = snap.metadata.confState;
    for (const id of sm.appliedIds()) this.env.acknowledge(id);
  }

  private applyEntry(raw: SimRawNode, e: Entry): void {
    const prev = this.sm.applied;
    const proposal = this.sm.apply(e);
    this.env.checker.observeApply(this.id, prev, e, this.sm.digest());
    if (proposal !== null) this.env.acknowledge(proposal);
    if (e.type !== EntryType.ConfChange) return;
    const cc = this.env.lib.decodeConfChange(e.data);
    this.confState = raw.applyConfChange(cc);
    this.env.count("confChangesApplied");
    this.env.trace(this.id, `apply conf change @${e.index}: ${ConfChangeType[cc.type]} ${cc.nodeId} -> ${describeConf(this.confState)}`);
    if (cc.type === ConfChangeType.RemoveNode && cc.nodeId === this.id) this.removed = true;
  }

  private maybeCompact(): void {
    const p = this.env.params;
    const applied = this.sm.applied;
    if (applied - this.storage.snapshot().metadata.index < p.snapshotEvery) return;
    this.storage.createSnapshot(applied, this.confState, this.sm.encode());
    const keepFrom = applied - p.compactKeep;
    if (keepFrom > this.storage.firstIndex()) this.storage.compact(keepFrom);
    this.synced = this.hardState();
    this.env.count("compactions");
    this.env.trace(this.id, `snapshot at ${applied}, log now [${this.storage.firstIndex()}, ${this.storage.lastIndex()}]`);
  }

  private runDeferred(raw: SimRawNode): void {
    const fns = this.deferred;
    this.deferred = [];
    for (const fn of fns) if (this.raw === raw) fn();
  }

  private stopRemoved(): void {
    this.raw = null;
    this.driver = null;
    this.env.trace(this.id, "removed from the cluster: stopped");
  }
}

export function describeHs(hs: HardState): string {
  return `term=${hs.term} vote=${hs.vote} commit=${hs.commit}`;
}

export function describeConf(cs: ConfState): string {
  return `voters=[${cs.voters.join(",")}] learners=[${cs.learners.join(",")}]`;
}
