// One simulated server: a RawNode, its durable storage, and its state
// machine. The storage (a MemoryStorage) holds only what survived an fsync:
// a Ready with mustSync is durable once persisted; a Ready without it (a
// commit-index-only hard state) is written but lost by a crash before the
// next sync. Creating a snapshot is a sync point (the snapshot file is
// fsynced, and the log is sequential). A crash loses the RawNode and the
// state machine; a restart rebuilds both from the durable storage.

import {
  ConfChangeType,
  type ConfState,
  type Entry,
  EntryType,
  type HardState,
  type Message,
  type NodeId,
  type Ready,
  type Snapshot,
  StateType,
} from "../../node/raft/types.js";
import { type Checker, type LogView, Violation } from "./checker.js";
import type { Prng } from "./prng.js";
import type { RaftLib, SimRawNode, SimStorage } from "./raft-lib.js";
import { StateMachine } from "./state-machine.js";

/** Where, within the handling of one Ready, a crash strikes. */
export type CrashPoint = "before-persist" | "after-persist" | "mid-send" | "after-apply";
export const CRASH_POINTS: readonly CrashPoint[] = ["before-persist", "after-persist", "mid-send", "after-apply"];

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
}

/** What a node needs from the cluster around it. */
export interface NodeEnv {
  readonly lib: RaftLib;
  readonly checker: Checker;
  readonly params: NodeParams;
  trace(node: NodeId, event: string): void;
  send(from: SimNode, m: Message): void;
  /** A proposal was applied somewhere: it is acknowledged. */
  acknowledge(proposal: number): void;
  readDone(node: NodeId, context: Uint8Array, index: number): void;
  /** Counts an event for the run's statistics. */
  count(stat: "leaders" | "snapshotsInstalled" | "confChangesApplied" | "compactions"): void;
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
  /** Set by the cluster: the next Ready is cut short by a crash at this point. */
  crashPending: CrashPoint | null = null;
  /** The last hard state made durable by an fsync. */
  private synced: HardState;
  private deferred: (() => void)[] = [];

  constructor(readonly id: NodeId, private readonly env: NodeEnv, private readonly rng: Prng, bootstrap: Snapshot | null) {
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
    this.raw = new this.env.lib.RawNode({
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
    this.env.trace(this.id, `start applied=${this.sm.applied} ${describeHs(this.hardState())} last=${this.storage.lastIndex()}`);
  }

  /** Loses everything not fsynced: the RawNode, the state machine, an unsynced hard state. */
  crash(why: string): void {
    this.raw = null;
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

  /** Handles one Ready, following the contract of raft-api.md. Returns false if there was none. */
  handleReady(): boolean {
    const raw = this.raw;
    if (raw === null || !raw.hasReady()) return false;
    const rd = raw.ready();
    const point = this.crashPending;
    if (point === "before-persist") return this.crashAnd("before persisting a Ready");
    this.persist(rd);
    if (point === "after-persist") return this.crashAnd("after persisting, before sending");
    if (!this.sendAll(rd.messages, point === "mid-send")) return this.crashAnd("while sending");
    this.applyReady(raw, rd);
    if (point === "after-apply") return this.crashAnd("after applying, before advance");
    raw.advance(rd);
    this.maybeCompact();
    this.runDeferred(raw);
    if (this.removed) this.stopRemoved();
    return true;
  }

  private crashAnd(why: string): true {
    this.crash(why);
    return true;
  }

  private persist(rd: Ready): void {
    const { checker } = this.env;
    const before = this.hardState();
    if ((rd.snapshot !== null || rd.entries.length > 0) && !rd.mustSync) {
      throw new Violation("Ready Contract", `node ${this.id}: Ready with entries or a snapshot but mustSync=false`);
    }
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
    if (rd.softState !== null) this.observeSoftState(rd.softState.state, rd.softState.lead);
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

  /** Sends the messages; with `crashMidway`, only a random prefix. Returns false if the crash struck. */
  private sendAll(msgs: readonly Message[], crashMidway: boolean): boolean {
    const n = crashMidway ? this.rng.int(msgs.length + 1) : msgs.length;
    for (let i = 0; i < n; i++) this.env.send(this, msgs[i]!);
    return !crashMidway;
  }

  private applyReady(raw: SimRawNode, rd: Ready): void {
    if (rd.snapshot !== null) this.restore(rd.snapshot);
    for (const e of rd.committedEntries) this.applyEntry(raw, e);
    for (const rs of rd.readStates) this.env.readDone(this.id, rs.context, rs.index);
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
    this.env.trace(this.id, "removed from the cluster: stopped");
  }
}

export function describeHs(hs: HardState): string {
  return `term=${hs.term} vote=${hs.vote} commit=${hs.commit}`;
}

export function describeConf(cs: ConfState): string {
  return `voters=[${cs.voters.join(",")}] learners=[${cs.learners.join(",")}]`;
}
