// Drives one RawNode: ticks, inbound messages, proposals, and the Ready
// loop, which is node/raft's ReadyDriver (its contract and planReady are in
// node/raft/ready-driver.ts; the argument is in docs/raft.md, "Sending while
// the leader writes"). Here: the write is DiskStorage.save, the sends go to
// the transport, and applying applies committed entries to the vault once
// each, in order, then commits the vault store; conf changes go to
// RawNode.applyConfChange and the transport, and are skipped by the vault.
// A Raft snapshot names a state of the vault store (docs/storage.md,
// "Snapshot transfer"): an installed one was staged before Raft saw it
// (store-snapshots.ts) and is swapped in with the write; a local one is taken
// at the store's durable applied index, so log compaction never passes what a
// restart finds in the store.
import { randomBytes, randomInt } from "node:crypto";
import {
  type ConfChange, ConfChangeType, type Entry, EntryType, ErrInvalidMessage, ErrProposalDropped,
  type Message, MessageType, NONE, type NodeId, RawNode, type Ready, ReadyDriver, type Snapshot, type SoftState, StateType,
  confChangeOf, entrySize,
} from "../raft/index.js";
import type { SnapshotStream } from "../transport/index.js";
import { VaultInvariantError, VaultStateMachine, type VaultResult, requestFingerprint } from "../vault/index.js";
import { decodeServerSnapshot } from "./snapshot-data.js";
import { SnapshotStager, candidateOf, stageForInstall } from "./store-snapshots.js";
import { LocalSnapshots } from "./local-snapshots.js";
import { APPLY_BYTES_PER_READY, APPLY_MS_PER_READY, ApplyBudget } from "./apply-budget.js";
import { CommitHold } from "./commit-hold.js";
import type { AdminLoop, VaultLoop, VaultReader } from "./raft-view.js";
import { LoopWaiters, ReadRounds } from "./waiters.js";
import { Membership } from "./membership.js";
import { throttledWarn } from "./log-throttle.js";
import { LeaderStamp } from "./leader-stamp.js";
import { DEFAULT_FORWARDED_BYTES_PER_SECOND, DEFAULT_MAX_FORWARDED_ENTRY_BYTES, ForwardGate } from "./forward-gate.js";
import { ConfChangeIgnoredError, type PeerLink, ProposalError, type RaftLoopOptions, proposalDropped } from "./loop-types.js";
export { type AppliedEvent, ConfChangeIgnoredError, type PeerLink, ProposalError, type RaftLoopOptions } from "./loop-types.js";

/** Most entries handed to Raft in one proposal (one MsgProp, and at most one MsgApp per follower when small). */
const MAX_BATCH = 256;
/**
 * Applied entries after which the vault store is committed at once; else it
 * is committed at the next tick. Like etcd's backend batch (its
 * batch-interval and batch-limit): the store's commit (an fsync) is not paid
 * per Ready, and a restart replays the WAL after the store's applied index.
 */
const STORE_COMMIT_ENTRIES = 1000;
/**
 * drain yields to the event loop (the ports, the transport, timers) once a
 * turn ran this long. On a machine where the main thread waits for a core
 * as long as it runs, a turn's wall time doubles, and so does the stall.
 */
const DRAIN_TURN_MS = 8;
/**
 * How long a leader holds a commit-only MsgApp for the next MsgApp to the
 * same follower to carry its commit index instead (commit-hold.ts): longer
 * than a client's turn between two calls on loopback, far below a tick.
 */
const COMMIT_HOLD_MS = 5;

const hex = (b: Uint8Array): string => Buffer.from(b).toString("hex");
/** A proposal waiter's key: the request id and the fingerprint of the request it names (ApplyOutcome.fingerprint). */
const proposalKey = (requestId: Uint8Array, print: Uint8Array): string => `${hex(requestId)}:${hex(print)}`;
const confKey = (cc: ConfChange): string => `${cc.type}:${cc.nodeId}`;

export class RaftLoop implements VaultLoop, AdminLoop {
  private readonly raw: RawNode;
  private sm: VaultStateMachine;
  private readonly members: Membership;
  private link: PeerLink | null = null;
  private timer: NodeJS.Timeout | null = null;
  /** The running drain, if any; stop awaits it. */
  private draining: Promise<void> | null = null;
  private stopped = false;
  private soft: SoftState = { lead: NONE, state: StateType.Follower };
  /** Snapshot requests registered now are answered by the snapshot of this round. */
  private snapshotRound = 0;
  private readonly waiters = new LoopWaiters();
  /** Linearizable reads share ReadIndex rounds, one in flight at a time. */
  private readonly readRounds = new ReadRounds((deadline) => this.readIndexRound(deadline));
  private readonly driver: ReadyDriver;
  /** The write the driver started last, awaited by drain before it calls writeDone. */
  private saving: Promise<void> = Promise.resolve();
  /** Proposals waiting for the next drain, which hands them to Raft together. */
  private batch: Array<{ data: Uint8Array; dropped(err: ProposalError): void }> = [];
  /** The last vault store commit (commits complete in order): awaited, everything applied before it is durable. */
  private committed: Promise<void> = Promise.resolve();
  /** Index of the last entry (or snapshot) Raft handed over: the conf state is current up to it. */
  private appliedEntry: number;
  private readonly snapshots: LocalSnapshots;
  /** Entries applied since the last store commit. */
  private uncommitted = 0;
  private readonly stager: SnapshotStager;
  private readonly applyBudget = new ApplyBudget(APPLY_MS_PER_READY, APPLY_BYTES_PER_READY.min, APPLY_BYTES_PER_READY.max);
  private readonly commitHold = new CommitHold((messages) => this.link?.send(messages), COMMIT_HOLD_MS);

  /** Bounds what other members forward to this node as leader. */
  private readonly forwarded: ForwardGate;
  private readonly stamp: LeaderStamp;

  constructor(private readonly o: RaftLoopOptions) {
    this.forwarded = new ForwardGate({
      maxEntryBytes: o.maxForwardedEntryBytes ?? DEFAULT_MAX_FORWARDED_ENTRY_BYTES,
      bytesPerSecond: o.forwardedBytesPerSecond ?? DEFAULT_FORWARDED_BYTES_PER_SECOND,
      warn: throttledWarn(o.log, 10_000),
    });
    this.stamp = new LeaderStamp(() => (o.clusterNow ?? Date.now)());
    const snap = o.storage.snapshot();
    const data = snap.data.length > 0 ? decodeServerSnapshot(snap.data) : null;
    this.members = new Membership(o.id, snap.metadata.confState, data?.peers ?? new Map());
    this.sm = o.sm;
    this.appliedEntry = snap.metadata.index;
    this.snapshots = new LocalSnapshots({
      clusterId: o.clusterId, storage: o.storage, files: o.files, log: o.log,
      snapshotInterval: o.snapshotInterval, snapshotRetention: o.snapshotRetention,
      applied: () => this.sm.appliedIndex, digest: () => this.sm.digest(), peers: () => this.members.peers,
      confState: () => this.members.confState, schedule: () => this.schedule(),
      committed: () => {
        if (this.uncommitted > 0) this.commitStore();
        return this.committed;
      },
    });
    this.stager = new SnapshotStager({
      clusterId: o.clusterId, files: o.files, log: o.log,
      fetch: (from, index, term, signal) => this.fetchFrom(from, index, term, signal),
      appliedIndex: () => this.sm.appliedIndex, term: () => this.term,
      ...(o.snapshotDownload === undefined ? {} : { limits: o.snapshotDownload }), abandoned: (reason) => o.onDownloadAbandoned?.(reason),
      step: (m) => this.guard(() => this.raw.step(m)),
      attest: (m, state, staged) => o.attest(candidateOf(m, state, staged, this.sm.store, this.members.withSnapshotOf(m))),
    });
    this.raw = new RawNode({
      id: o.id, storage: this.snapshots.raftStorage(), electionTick: o.electionTick, heartbeatTick: o.heartbeatTick,
      applied: snap.metadata.index, randomInt: (n) => randomInt(n), maxCommittedSizePerReady: APPLY_BYTES_PER_READY.max,
      logger: { debug: () => {}, info: (m) => o.log.info(m), warn: (m) => o.log.warn(m) },
    });
    this.driver = new ReadyDriver(this.raw, o.storage, {
      observe: (rd) => { if (rd.softState !== null) this.onSoftState(rd.softState); },
      write: (rd) => this.startWrite(rd),
      send: (messages) => { this.snapshots.noteSent(messages); this.commitHold.send(messages); },
      apply: (rd) => this.applyReady(rd),
    });
  }

  /** Connects the transport (Membership.connect: `addressBook` is the config's nodes) and starts ticking. */
  start(link: PeerLink, addressBook: ReadonlyMap<NodeId, string>): void {
    this.link = link;
    this.members.connect(link, addressBook);
    this.timer = setInterval(() => {
      this.guard(() => this.raw.tick());
      this.snapshots.sweep();
      if (this.uncommitted > 0) this.commitStore();
    }, this.o.tickMs);
    this.schedule();
  }

  /** Stops ticking and fails every waiter; the storage is closed by the caller. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    this.commitHold.stop();
    while (this.draining !== null) await this.draining;
    this.stager.stop();
    this.snapshots.releaseAll();
    if (this.uncommitted > 0) this.commitStore();
    await this.committed.catch(() => undefined);
    this.batch = [];
    this.waiters.failAll(new ProposalError("STOPPED", "the node is shutting down; retry with the same request id"));
  }

  // --- inputs -----------------------------------------------------------

  /** Steps an inbound message; a snapshot message naming a store state not staged yet is held (store-snapshots.ts). */
  step(m: Message): void {
    if (this.stopped || this.stager.intercept(m)) return;
    if (m.type !== MessageType.Prop || !this.isLeader) {
      this.guard(() => this.raw.step(m));
      return;
    }
    if (!this.forwarded.admit(m)) return;
    const stamped = this.stamp.forwarded(m);
    if (stamped !== null) this.guard(() => this.raw.step(stamped));
  }

  /** This node's state digest right after applied index `index`, if it remembers it (GetStateDigest). */
  digestAt(index: number): Uint8Array | undefined {
    return this.sm.digestAt(index);
  }

  private fetchFrom(from: NodeId, index: number, term: number, signal: AbortSignal): AsyncIterable<Uint8Array> {
    if (this.link === null) throw new Error("the loop is not started");
    return this.link.fetchSnapshot(from, index, term, signal);
  }

  /** The store state of local snapshot (index, term) for a follower's download, or null (FetchSnapshot's source). */
  openSnapshot(from: NodeId, index: number, term: number): SnapshotStream | null {
    if (this.stopped) return null;
    const stream = this.snapshots.open(index, term);
    // Released (idle) or superseded: Raft starts that follower over, with a snapshot pinned anew.
    if (stream === null) this.reportSnapshot(from, false);
    return stream;
  }

  reportUnreachable(id: NodeId): void {
    this.guard(() => this.raw.reportUnreachable(id));
  }

  /**
   * A failed MsgSnap starts the transfer over. A written one is no success: the follower has yet to download,
   * stage and attest its store state; its MsgAppResp after installing moves Raft on (docs/storage.md).
   */
  reportSnapshot(id: NodeId, ok: boolean): void {
    if (ok) return;
    this.guard(() => this.raw.reportSnapshot(id, false));
  }

  private guard(f: () => void): void {
    if (this.stopped) return;
    try {
      f();
    } catch (err) {
      if (!(err instanceof ErrInvalidMessage)) { this.o.onFatal(err); return; }
    }
    this.schedule();
  }

  /**
   * Proposes an encoded vault command carrying `requestId` and resolves with
   * its outcome once applied here: the outcome of an entry carrying this id
   * and this request (proposalKey), never another request committed under the
   * same id. A follower's proposal is forwarded to the leader by Raft. Rejects
   * with ProposalError when it cannot know the outcome.
   */
  propose(requestId: Uint8Array, data: Uint8Array): Promise<VaultResult> {
    this.checkCanPropose();
    const w = this.waiters.proposals.register(proposalKey(requestId, requestFingerprint(data)), this.proposalDeadline(),
      () => new ProposalError("TIMEOUT", "the request was not committed in time; retry with the same request id"));
    // Proposed with the others of this event-loop turn by the next drain (one MsgProp, one MsgApp per follower).
    this.batch.push({ data, dropped: (err) => w.fail(err) });
    this.schedule();
    return w.promise;
  }

  private proposalDeadline(): number {
    return Date.now() + this.o.proposalTimeoutMs;
  }

  /**
   * Proposes the queued entries, at most MAX_BATCH at a time. A batch Raft
   * refuses (ErrProposalDropped) fails only its own callers.
   */
  private proposeBatch(): void {
    while (this.batch.length > 0) {
      const part = this.batch.splice(0, MAX_BATCH);
      try {
        this.raw.proposeMany(part.map((p) => this.stamped(p.data)));
      } catch (err) {
        if (!(err instanceof ErrProposalDropped)) throw err;
        const e = proposalDropped();
        for (const p of part) p.dropped(e);
      }
    }
  }

  /** Proposes an entry whose outcome nobody waits for (node announcements). */
  proposeUnwaited(data: Uint8Array): void {
    this.checkCanPropose();
    this.submit(() => this.raw.propose(this.stamped(data)));
  }

  /** A leader stamps its own entries (leader-stamp.ts); a follower's are stamped by the leader. */
  private stamped(data: Uint8Array): Uint8Array {
    return this.isLeader ? this.stamp.entry(data) : data;
  }

  /**
   * Proposes a membership change; resolves with its log index once applied
   * here, or rejects with ConfChangeIgnoredError when the entry of that kind
   * and node applied here changed nothing.
   */
  proposeConfChange(cc: ConfChange): Promise<number> {
    this.checkCanPropose();
    this.submit(() => this.raw.proposeConfChange(cc));
    return this.waiters.confChanges.register(confKey(cc), this.proposalDeadline(),
      () => new ProposalError("TIMEOUT", "the membership change was not applied in time")).promise;
  }

  private checkCanPropose(): void {
    if (this.stopped) throw new ProposalError("STOPPED", "the node is shutting down");
    if (this.soft.lead === NONE) throw new ProposalError("NO_LEADER", "no leader is known (election in progress); retry");
  }

  /** Runs a RawNode proposal; a dropped proposal fails only its own caller. */
  private submit(f: () => void): void {
    try {
      f();
    } catch (err) {
      if (err instanceof ErrProposalDropped) {
        throw proposalDropped();
      }
      throw err;
    }
    this.schedule();
  }

  /** Resolves true once this node applied `index` (false after timeoutMs, or when the loop stops). */
  waitApplied(index: number, timeoutMs: number): Promise<boolean> {
    return this.appliedBy(index, Date.now() + timeoutMs);
  }

  private appliedBy(index: number, deadline: number): Promise<boolean> {
    if (this.sm.appliedIndex >= index) return Promise.resolve(true);
    const w = this.waiters.applied.register(index, deadline, () => new ProposalError("TIMEOUT", `index ${index} not applied in time`));
    return w.promise.then(() => true, () => false);
  }

  /**
   * A linearizable read point (ReadIndex, Raft thesis §6.4): resolves once
   * this node applied at least the commit index the leader had when it
   * confirmed its leadership with a heartbeat quorum, after this call. Rejects
   * with ProposalError NO_LEADER at once, or TIMEOUT when no leader answered
   * (partitioned, deposed) or this node did not apply in time. Concurrent
   * reads share rounds (ReadRounds): one heartbeat round serves many reads.
   */
  async readBarrier(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    const index = await this.readIndex(timeoutMs);
    if (!(await this.appliedBy(index, deadline))) throw new ProposalError("TIMEOUT", `this node has not applied the read index ${index} in time; retry`);
  }

  /** A ReadIndex round's index: every entry committed before the call is at or below it. */
  readIndex(timeoutMs: number): Promise<number> {
    this.checkCanPropose();
    return this.readRounds.join(Date.now() + timeoutMs);
  }

  /** One ReadIndex round (readRounds: one at a time, shared by the reads that arrived before it started). */
  private readIndexRound(deadline: number): Promise<number> {
    this.checkCanPropose();
    const context = new Uint8Array(randomBytes(8));
    const read = this.waiters.reads.register(hex(context), deadline,
      () => new ProposalError("TIMEOUT", "no leader confirmed a read index in time (partitioned or electing); retry"));
    this.guard(() => this.raw.readIndex(context));
    return read.promise;
  }

  /**
   * Sends the commit-only MsgApps the commit hold keeps, now (nothing on a
   * follower). For a request that shows a client asking the other nodes
   * about an index just committed (an Evaluate: the SDK asks every share
   * holder at once, and each waits for the attempt to apply).
   */
  sendHeldCommits(): void {
    this.commitHold.flush();
  }

  /** Snapshots the applied state and compacts the log (admin TakeSnapshot). */
  requestSnapshot(): Promise<Snapshot> {
    if (this.stopped) return Promise.reject(new ProposalError("STOPPED", "the node is shutting down"));
    const w = this.waiters.snapshots.register(this.snapshotRound, null, () => new ProposalError("TIMEOUT", "no deadline"));
    this.schedule();
    return w.promise;
  }

  /** The latest snapshot, self-contained (PinnedViews.selfContained): what SaveSnapshot streams. */
  async *snapshotStream(): AsyncIterable<Uint8Array> {
    // A released view is pinned again (or a newer snapshot taken) before the stream starts.
    const chunks = this.snapshots.selfContained(this.o.storage.snapshot()) ?? this.snapshots.selfContained(await this.requestSnapshot());
    if (chunks === null) throw new ProposalError("DROPPED", "the store view of the latest snapshot was released meanwhile; retry");
    yield* chunks;
  }

  // --- the Ready loop ---------------------------------------------------

  private schedule(): void {
    if (this.draining !== null || this.stopped) return;
    this.draining = new Promise<void>((resolve) => setImmediate(() => { void this.drain().then(resolve); }));
  }

  /** Runs Readies until none is left or the turn ran DRAIN_TURN_MS (then the rest is scheduled after the event loop's other work). */
  private async drain(): Promise<void> {
    const t0 = performance.now();
    try {
      while (!this.stopped && performance.now() - t0 < DRAIN_TURN_MS) {
        this.proposeBatch();
        this.raw.setMaxCommittedSizePerReady(this.applyBudget.bytes);
        if (!this.driver.next()) break;
        await this.saving;
        this.driver.writeDone();
      }
      if (!this.stopped) await this.maybeSnapshot();
    } catch (err) {
      this.o.onFatal(err);
    } finally {
      this.draining = null;
    }
    if (!this.stopped && (this.batch.length > 0 || this.raw.hasReady())) this.schedule();
  }

  /** The driver's write: drain awaits it, then tells the driver (DiskStorage exposes a save only once durable). */
  private startWrite(rd: Ready): void {
    this.saving = rd.snapshot === null ? this.save(rd) : this.installSnapshot(rd, rd.snapshot);
    this.saving.catch(() => undefined); // awaited by drain; this only keeps a failure from being "unhandled" meanwhile
  }

  private save(rd: Ready): Promise<void> {
    return this.o.storage.save({ hardState: rd.hardState, entries: rd.entries, snapshot: rd.snapshot, mustSync: rd.mustSync });
  }

  /**
   * The store state of an installed snapshot is staged (downloaded before
   * Raft saw the message, or here from inline bytes), then the snapshot is
   * saved, then the staged store becomes current. A restart between the save
   * and the swap finishes the swap (openVault).
   */
  private async installSnapshot(rd: Ready, snap: Snapshot): Promise<void> {
    await stageForInstall(this.o.files, this.o.clusterId, snap);
    await this.save(rd);
    await this.o.files.promote(snap.metadata.index);
  }

  /** Applies, then wakes the waiters of the applied indexes at once, not after the write (an fsync of later entries). */
  private applyReady(rd: Ready): void {
    if (rd.snapshot !== null) this.restore(rd.snapshot);
    this.applyCommitted(rd);
    const applied = this.sm.appliedIndex;
    if (this.waiters.applied.size > 0) this.waiters.applied.resolveWhere((index) => index <= applied, () => undefined);
    for (const rs of rd.readStates) this.waiters.reads.resolve(hex(rs.context), rs.index);
  }

  private applyCommitted(rd: Ready): void {
    if (rd.committedEntries.length === 0) return;
    const t0 = performance.now();
    let bytes = 0;
    for (const e of rd.committedEntries) {
      this.applyEntry(e);
      bytes += entrySize(e);
    }
    const ms = performance.now() - t0;
    this.applyBudget.observe(bytes, ms);
    this.o.onApplied?.(rd.committedEntries.length, ms);
    this.uncommitted += rd.committedEntries.length;
    if (this.uncommitted >= STORE_COMMIT_ENTRIES) this.commitStore();
  }

  /**
   * Commits what was applied since the last commit (pipelined: applying goes
   * on while it is written), after beforeStoreCommit's promise (the audit
   * log, whose lines for these entries are written, is then durable first:
   * a restart does not apply the store's entries again; the audit chain's
   * head goes into the same commit).
   */
  private commitStore(): void {
    this.uncommitted = 0;
    let c: Promise<void>;
    try {
      const store = this.o.files.store;
      c = store.commit(this.o.beforeStoreCommit?.(store));
    } catch (err) {
      c = Promise.reject(err); // a store that failed before refuses at once: the same fatal path
    }
    this.committed = c;
    c.catch((err: unknown) => this.o.onFatal(err));
  }

  private onSoftState(s: SoftState): void {
    const leaderChanged = s.lead !== this.soft.lead;
    this.soft = s;
    if (leaderChanged) {
      this.o.log.info("leader changed", { leader: s.lead, term: this.term, role: StateType[s.state] });
      // A proposal in flight may or may not commit now: the caller retries with the same request id.
      this.waiters.proposals.failAll(new ProposalError("LEADER_CHANGED", "leadership changed; retry with the same request id"));
      if (s.lead !== NONE && s.lead !== this.o.id) this.waiters.leaderMoved.resolve("moved", s.lead);
    }
  }

  /** Moves onto the store installSnapshot made current; the replaced one is closed once nothing reads it. */
  private restore(snap: Snapshot): void {
    const { index, term } = snap.metadata;
    const data = decodeServerSnapshot(snap.data);
    this.snapshots.releaseAll(); // views of the replaced store, before it is closed
    this.sm = new VaultStateMachine({ clusterId: this.o.clusterId, store: this.o.files.store });
    if (data.store !== undefined && data.store.appliedIndex !== this.sm.appliedIndex) {
      throw new VaultInvariantError(`the store swapped in for snapshot ${index} is at index ${this.sm.appliedIndex}, not ${data.store.appliedIndex}`);
    }
    this.o.files.closeRetired().catch((err: unknown) => this.o.onFatal(err));
    this.snapshots.restored(snap, data.store !== undefined);
    this.members.reset(snap.metadata.confState, data.peers);
    this.appliedEntry = index;
    this.o.log.info("restored snapshot", { index, term, applied: this.sm.appliedIndex });
    this.o.onOutcome?.({ kind: "snapshot", index });
  }

  private applyEntry(e: Entry): void {
    // In the store already (applied before a restart): Raft still takes the conf changes again.
    const inStore = e.index <= this.sm.appliedIndex;
    this.appliedEntry = e.index;
    if (e.type === EntryType.ConfChange) {
      this.applyConfChange(e, inStore);
      return;
    }
    if (inStore) return;
    const out = this.sm.apply(e.index, e.data, this.members.confState.voters);
    this.o.onOutcome?.({ kind: "command", index: e.index, data: e.data, result: out.result, parsed: out });
    if (out.requestId !== null && out.fingerprint !== null) this.waiters.proposals.resolve(proposalKey(out.requestId, out.fingerprint), out.result);
  }

  /**
   * A committed membership entry. One whose data does not decode changes
   * nothing, on every node alike: only a rogue leader appends one (an honest
   * leader vets proposals), and failing on it would stop every follower at
   * each restart, since the entry is in their WALs. The observer hears of it,
   * and of a change Raft ignores, as ignored, with the reason.
   */
  private applyConfChange(e: Entry, inStore: boolean): void {
    if (!inStore) this.sm.skip(e.index);
    const cc = confChangeOf(e) ?? null;
    const ignored = cc === null ? "undecodable" : this.members.ignoredReason(cc);
    this.o.onOutcome?.({ kind: "membership", index: e.index, change: cc, ...(ignored === undefined ? {} : { ignored }) });
    if (cc === null) {
      this.o.log.error("ignored an undecodable membership entry (only a faulty or rogue leader appends one)", { index: e.index, term: e.term, bytes: e.data.length });
      return;
    }
    this.members.applyConfChange(cc, this.raw.applyConfChange(cc));
    const { voters, learners } = this.members.confState;
    const fields = { index: e.index, change: ConfChangeType[cc.type], member: cc.nodeId, voters, learners, reason: ignored };
    if (ignored === undefined) {
      this.o.log.info("applied membership change", fields);
      this.waiters.confChanges.resolve(confKey(cc), e.index);
    } else {
      this.o.log.warn("ignored a membership change (Raft refused it against the configuration)", fields);
      this.waiters.confChanges.reject(confKey(cc), new ConfChangeIgnoredError(e.index, ignored));
    }
  }

  private async maybeSnapshot(): Promise<void> {
    const applied = this.sm.appliedIndex;
    if (!this.snapshots.isDue(applied) && this.waiters.snapshots.size === 0) return;
    if (this.appliedEntry < applied) return; // replaying entries the store holds: the conf state is not current yet
    const round = this.snapshotRound++;
    try {
      this.waiters.snapshots.resolve(round, await this.snapshots.take(applied));
    } catch (err) {
      this.waiters.snapshots.reject(round, err as Error);
      throw err;
    }
  }

  // --- the view (RaftView) ---------------------------------------------

  get vault(): VaultReader {
    return this.sm;
  }

  get peers(): ReadonlyMap<NodeId, string> {
    return this.members.peers;
  }

  get term(): number {
    return this.raw.status().hardState.term;
  }

  get commitIndex(): number {
    return this.raw.status().hardState.commit;
  }

  matchIndex(id: NodeId): number {
    return this.raw.status().progress?.get(id)?.match ?? 0;
  }

  get leaderId(): NodeId {
    return this.soft.lead;
  }

  get isLeader(): boolean {
    return this.soft.state === StateType.Leader;
  }

  get role(): StateType {
    return this.soft.state;
  }

  get voters(): readonly NodeId[] {
    return this.members.confState.voters;
  }

  get learners(): readonly NodeId[] {
    return this.members.confState.learners;
  }

  get lastSnapshotIndex(): number {
    return this.snapshots.index;
  }

  /** Hands leadership to the most caught-up other voter; resolves once it moved (or after timeoutMs). */
  async transferLeadership(to: NodeId, timeoutMs: number): Promise<NodeId> {
    const target = to !== NONE ? to : this.members.mostCaughtUpVoter(this.raw.status().progress);
    if (target === NONE) return this.soft.lead;
    if (this.soft.lead !== this.o.id && this.soft.lead !== NONE) return this.soft.lead;
    const moved = this.waiters.leaderMoved.register("moved", Date.now() + timeoutMs, () => new ProposalError("TIMEOUT", "leadership did not move in time"));
    this.guard(() => this.raw.transferLeadership(target));
    return moved.promise.catch(() => this.soft.lead);
  }
}
