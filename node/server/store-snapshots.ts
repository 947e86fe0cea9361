// Snapshots of the vault store, both ends (docs/storage.md, "Snapshot
// transfer"). A Raft snapshot's data names a store state (applied index and
// digest, snapshot-data.ts format 2); the state itself travels over
// RaftService.FetchSnapshot, never through Raft's InstallSnapshot.
//
// Sender (PinnedViews): a local snapshot pins a read view of the store at its
// index, for followers to download. A pinned view keeps every page it can
// read, so lmdb cannot reuse the pages later commits free and the store file
// grows by all it writes while the view is held (measured: ~20 MiB a minute
// at ~12 entries/s, bench:soak). So a view is released once no transfer has
// read it for PIN_IDLE_MS (and beyond the newest `retention`); when Raft
// wants to send a snapshot whose view is gone, the Raft storage says
// "temporarily unavailable" (withPinnedSnapshots) and the loop pins a fresh
// one, which Raft sends at its next chance (etcd's
// ErrSnapshotTemporarilyUnavailable).
//
// Receiver (SnapshotStager): a MsgSnap above the applied index is held back
// from Raft until its state is in a staged store, verified, and attested by
// the other nodes (snapshot-attest.ts); then it is stepped. A store state is
// downloaded from the sender first (as etcd's rafthttp saves the db file
// before Raft sees the message), an inline one (format 1: the bootstrap, a
// leader of the release before the store) is restored from the message. One
// at a time: a MsgSnap that arrives meanwhile is dropped unless its term is
// newer (below, "Preemption"), and so is one that is refused or is not one
// complete server snapshot (the leader sends another while the follower does
// not answer). A download is bounded in time, rate, size and disk
// (snapshot-download.ts); one past a bound is ended and its staging deleted.
//
// Preemption. A MsgSnap of a newer term than the download's ends the
// download and starts its own: a new leader's snapshot is not kept waiting
// by an old leader's transfer, stalled or slow. One of an older term than
// Raft's own is Raft's to refuse (it ignores it). Does this let a rogue
// member do more? The stager sees messages before Raft does, so a rogue's
// newer term preempts without Raft learning of it. But what it gains is what
// a member already has: any message of a higher term makes its sender the
// follower's leader (Raft has no vote certificates: docs/threat-model.md,
// "one compromised node"), after which Raft refuses the honest leader's
// snapshot messages anyway; and without preemption a rogue can take the free
// download, at the current term, each time the last one ends. Either way it
// can deny this follower snapshot catch-up for as long as it keeps at it, a
// denial of service; what it cannot do is hold the download past the bounds
// with one message, or fill the disk. An honest sender never loses its place
// to an older term, so a leader that is deposed or stalls cannot hold it.
import { setImmediate as nextTurn } from "node:timers/promises";
import { ErrSnapshotTemporarilyUnavailable, type Message, MessageType, type NodeId, type Snapshot, type Storage } from "../raft/index.js";
import type { LmdbVaultStore, StagedSnapshot, StoreView, VaultFiles } from "../storage/index.js";
import type { SnapshotStream } from "../transport/index.js";
import { ALL_KEYS, SnapshotImporter, VaultInvariantError, VaultStateMachine, type VaultStore, rollbackFrom, snapshotChunks } from "../vault/index.js";
import type { Candidate } from "./snapshot-attest.js";
import { decodeServerSnapshot, encodeServerSnapshot, type ServerSnapshot, type StoreRef } from "./snapshot-data.js";
import type { Logger } from "./log.js";
import { type ImportHasher, WorkerPairHasher } from "./pair-hashers.js";
import { type AbortReason, DEFAULT_DOWNLOAD_LIMITS, type DownloadLimits, DownloadAbortedError, availableBytes, boundedChunks } from "./snapshot-download.js";

/** Bytes per chunk of an inline snapshot's self-contained stream. */
const INLINE_CHUNK = 256 * 1024;

function* chunksOf(data: Uint8Array, size: number): Generator<Uint8Array> {
  for (let at = 0; at < data.length; at += size) yield data.subarray(at, at + size);
}

/** How long a pinned view nobody reads is kept (a follower fetches within a round trip of the MsgSnap). */
export const PIN_IDLE_MS = 30_000;

interface Pinned {
  readonly term: number;
  readonly view: StoreView;
  readers: number;
  retired: boolean;
  /** When it was pinned or last read (ms). */
  usedAt: number;
}

export class PinnedViews {
  private readonly pinned = new Map<number, Pinned>();

  constructor(private readonly clusterId: string, private readonly retention: number, private readonly now: () => number = Date.now) {}

  /** Pins `view` (the store at `index`) for the snapshot (index, term); releases the pins beyond retention. */
  pin(index: number, term: number, view: StoreView): void {
    this.pinned.get(index)?.view.release();
    this.pinned.set(index, { term, view, readers: 0, retired: false, usedAt: this.now() });
    const indices = [...this.pinned.keys()].sort((a, b) => b - a);
    for (const i of indices.slice(this.retention)) this.retire(i);
  }

  has(index: number): boolean {
    return this.pinned.get(index)?.retired === false;
  }

  /** Whether Raft may send `snap` now: an inline snapshot always, a store snapshot while its view is pinned. */
  sendable(snap: Snapshot): boolean {
    return snap.metadata.index === 0 || decodeServerSnapshot(snap.data).store === undefined || this.has(snap.metadata.index);
  }

  /** The lowest index of a snapshot a follower is downloading now, if any. */
  oldestRead(): number | undefined {
    let oldest: number | undefined;
    for (const [i, p] of this.pinned) if (p.readers > 0 && (oldest === undefined || i < oldest)) oldest = i;
    return oldest;
  }

  /** Releases the views no transfer has read for PIN_IDLE_MS. */
  sweep(): void {
    const now = this.now();
    for (const [i, p] of this.pinned) if (p.readers === 0 && now - p.usedAt > PIN_IDLE_MS) this.retire(i);
  }

  /** The snapshot stream of (index, term), or null when it is not pinned (FetchSnapshot's source). */
  open(index: number, term: number): SnapshotStream | null {
    const p = this.pinned.get(index);
    if (p === undefined || p.retired || p.term !== term) return null;
    p.readers++;
    let closed = false;
    return {
      chunks: snapshotChunks(this.clusterId, p.view.scan(...ALL_KEYS)),
      close: () => {
        if (closed) return;
        closed = true;
        p.readers--;
        p.usedAt = this.now();
        if (p.retired) this.retire(index);
      },
    };
  }

  /**
   * `snap` as one self-contained server snapshot (format 1, snapshot-data.ts):
   * the peer list, then the vault state inline, streamed from the view pinned
   * at it (never whole in memory); an inline snapshot is cut in chunks of
   * 256 KiB. Null when its view is not pinned.
   */
  selfContained(snap: Snapshot): Generator<Uint8Array> | null {
    const data = decodeServerSnapshot(snap.data);
    if (data.store === undefined) return chunksOf(snap.data, INLINE_CHUNK);
    const { index, term } = snap.metadata;
    return this.pinned.get(index)?.term === term && this.has(index) ? this.inline(data.peers, index, term) : null;
  }

  private *inline(peers: ReadonlyMap<number, string>, index: number, term: number): Generator<Uint8Array> {
    const stream = this.open(index, term);
    if (stream === null) throw new Error(`the store view of snapshot ${index} was released`);
    try {
      yield encodeServerSnapshot({ peers, vault: new Uint8Array(0) });
      yield* stream.chunks;
    } finally {
      stream.close();
    }
  }

  /** Releases every view (a store swap or shutdown); transfers in progress fail. */
  releaseAll(): void {
    for (const p of this.pinned.values()) p.view.release();
    this.pinned.clear();
  }

  private retire(index: number): void {
    const p = this.pinned.get(index);
    if (p === undefined) return;
    p.retired = true;
    if (p.readers > 0) return;
    p.view.release();
    this.pinned.delete(index);
  }
}

/**
 * The Raft storage the leader reads: `storage` itself, except that a store
 * snapshot whose view is not pinned is ErrSnapshotTemporarilyUnavailable
 * (Raft tries again at its next chance) and `wanted()` asks the loop to pin one.
 */
export function withPinnedSnapshots(storage: Storage, views: PinnedViews, wanted: () => void): Storage {
  return {
    initialState: () => storage.initialState(),
    entries: (lo, hi, maxSize) => storage.entries(lo, hi, maxSize),
    term: (i) => storage.term(i),
    firstIndex: () => storage.firstIndex(),
    lastIndex: () => storage.lastIndex(),
    snapshot: () => {
      const snap = storage.snapshot();
      if (views.sendable(snap)) return snap;
      wanted();
      throw new ErrSnapshotTemporarilyUnavailable(`the store view of snapshot ${snap.metadata.index} is being pinned`);
    },
  };
}

export interface StagerContext {
  readonly clusterId: string;
  readonly files: VaultFiles;
  readonly log: Logger;
  /** Downloads snapshot (index, term) from node `from`. */
  fetch(from: NodeId, index: number, term: number, signal: AbortSignal): AsyncIterable<Uint8Array>;
  /** The vault's applied index (a snapshot at or below it is Raft's to refuse). */
  appliedIndex(): number;
  /** Raft's current term (a message of an older term is Raft's to refuse). */
  term(): number;
  /** Steps a message into Raft (the held MsgSnap, once staged). */
  step(m: Message): void;
  /** Resolves when the staged state (verified here, held in `staged`) may be installed; throws to refuse it (snapshot-attest.ts). */
  attest(m: Message, state: StoreRef, staged: VaultStore): Promise<void>;
  /** The hasher of each download's pairs (default: a WorkerPairHasher of defaultHashThreads()). */
  readonly pairHasher?: () => ImportHasher;
  /** The bounds of one download (default: DEFAULT_DOWNLOAD_LIMITS). */
  readonly limits?: DownloadLimits;
  /** Bytes available on the staging store's file system (default: statfs of `files.dir`). */
  freeBytes?(): Promise<number>;
  /** A download ended before its last chunk, and why (a metric). Must not throw. */
  abandoned?(reason: AbortReason): void;
}

/** Uncommitted pairs an import holds before it commits (bounds its memory to a few MB and the synchronous part of a commit). */
const IMPORT_COMMIT_PAIRS = 2048;
/** Commits of an import written at once: the next batch is parsed while the last ones are written and fsynced. */
const IMPORT_COMMITS_IN_FLIGHT = 3;
/** The import gives the event loop a turn once it ran this long without one. */
const IMPORT_TURN_MS = 10;
/**
 * The import parses a received chunk this many bytes at a time, so that a
 * turn can come between two parts: a chunk is whatever the stream delivered
 * (~170 KiB on average, more when it buffered), and parsing and storing one
 * whole took 30-80 ms of the event loop (a 16 KiB part: a few ms).
 */
const IMPORT_SLICE_BYTES = 16 * 1024;

/** Gives the event loop a turn when IMPORT_TURN_MS passed without one: called between units of a long piece of work. */
class Turns {
  private last = performance.now();

  async due(): Promise<void> {
    if (performance.now() - this.last < IMPORT_TURN_MS) return;
    await nextTurn();
    this.last = performance.now();
  }
}

/** Runs `steps` to its end, giving the event loop a turn whenever it ran IMPORT_TURN_MS without one; returns its value. */
export async function withTurns<T>(steps: Generator<void, T>): Promise<T> {
  const turns = new Turns();
  for (;;) {
    const r = steps.next();
    if (r.done === true) return r.value;
    await turns.due();
  }
}

/**
 * What the attestation judges for the MsgSnap `m`: the staged state (its
 * reference, and the store holding it, compared with this node's `current`
 * store for a rollback) and the members to ask.
 */
export function candidateOf(m: Message, state: StoreRef, staged: VaultStore, current: VaultStore, members: readonly NodeId[]): Candidate {
  return { from: m.from, index: m.snapshot!.metadata.index, ...state, members, rollback: () => withTurns(rollbackFrom(current, staged)) };
}

/**
 * The stager's one piece of work in progress: the download (then the
 * attestation) of a snapshot message's state, or a staged state judged again.
 */
interface InProgress {
  readonly index: number;
  /** The term of the message it serves: a download is preempted by a message of a newer one. */
  readonly term: number;
  readonly abort: AbortController;
  /** False for a judging again: it downloads nothing and ends within the attestation's own time limits. */
  readonly preemptible: boolean;
}

export class SnapshotStager {
  private download: InProgress | null = null;
  /** The staged snapshot last judged (rollback check and attestation), and this node's applied index when it was. */
  private checked: { readonly index: number; readonly term: number; readonly applied: number } | null = null;
  private readonly limits: DownloadLimits;
  private readonly freeBytes: () => Promise<number>;

  constructor(private readonly ctx: StagerContext) {
    this.limits = ctx.limits ?? DEFAULT_DOWNLOAD_LIMITS;
    this.freeBytes = ctx.freeBytes?.bind(ctx) ?? (() => availableBytes(ctx.files.dir));
  }

  /**
   * Takes a MsgSnap: returns true when it is held or dropped here, false when
   * Raft should step it now: at or below the applied index, or of an older
   * term than Raft's (Raft's to refuse), or naming the staged state, judged
   * against this node's state as it is now. A staged state is judged again
   * when this node applied entries since (Raft did not take the message that
   * staged it, and a rogue leader committed entries meanwhile), and never
   * installed under a message that names another state.
   */
  intercept(m: Message): boolean {
    if (m.type !== MessageType.Snap || m.snapshot === null) return false;
    const { index, term } = m.snapshot.metadata;
    if (index <= this.ctx.appliedIndex() || m.term < this.ctx.term()) return false;
    const data = serverSnapshotOf(m);
    if (data === null) {
      this.ctx.log.warn("snapshot message dropped: not one complete server snapshot", { from: m.from, index, term });
      return true;
    }
    const staged = this.ctx.files.stagedAt(index);
    if (staged?.term === term) return !this.passStaged(m, staged, data);
    this.take(m, data);
    return true;
  }

  /** Stages `m` when nothing is in progress, or in place of a download of an older term (preemption: file comment); else drops it. */
  private take(m: Message, data: ServerSnapshot): void {
    const d = this.download;
    if (d !== null) {
      if (!d.preemptible || m.term <= d.term) return;
      this.ctx.log.info("a snapshot message of a newer term preempts the download in progress", {
        from: m.from, index: m.snapshot!.metadata.index, term: m.term, downloading: d.index, downloadTerm: d.term,
      });
      d.abort.abort(new DownloadAbortedError("preempted", `a snapshot message of term ${m.term} from node ${m.from} preempted it`));
    }
    void this.stage(m, data);
  }

  /** Whether `m`, naming the staged snapshot `staged`, may go to Raft now; if not, it is dropped or judged again first. */
  private passStaged(m: Message, staged: StagedSnapshot, data: ServerSnapshot): boolean {
    if (data.store !== undefined && !sameRef(data.store, staged)) {
      this.ctx.log.warn("snapshot message dropped: it names another state than the one staged at its index", { from: m.from, index: staged.index, staged: staged.appliedIndex, named: data.store.appliedIndex });
      return false;
    }
    const c = this.checked;
    if (c !== null && c.index === staged.index && c.term === staged.term && c.applied === this.ctx.appliedIndex()) return true;
    if (this.download === null) void this.judgeAgain(m, staged);
    return false;
  }

  /** Cancels a download in progress. */
  stop(): void {
    this.download?.abort.abort(new DownloadAbortedError("stopped", "the node is stopping"));
  }

  private async stage(m: Message, data: ServerSnapshot): Promise<void> {
    const { index, term } = m.snapshot!.metadata;
    const mine: InProgress = { index, term: m.term, abort: new AbortController(), preemptible: true };
    const { signal } = mine.abort;
    this.download = mine;
    const t0 = performance.now();
    this.ctx.log.info("downloading a snapshot", { from: m.from, index, term });
    try {
      let judgedAt = 0;
      const staged = await this.ctx.files.stage(index, term, async (store) => {
        const got = data.store !== undefined
          ? checkRef(await this.importFrom(m.from, index, term, store, mine.abort), data.store)
          : restoreInline(this.ctx.clusterId, store, data.vault);
        signal.throwIfAborted(); // preempted or stopped meanwhile: the staging is deleted
        this.ctx.log.info("downloaded a snapshot; attesting it", { from: m.from, index, seconds: +((performance.now() - t0) / 1000).toFixed(3) });
        judgedAt = this.ctx.appliedIndex();
        await this.ctx.attest(m, got, store);
        signal.throwIfAborted();
        return got;
      });
      this.ctx.log.info("staged a snapshot", { from: m.from, index, seconds: +((performance.now() - t0) / 1000).toFixed(3) });
      this.checked = { index, term, applied: judgedAt };
      if (this.download !== mine) return; // preempted as it was marked staged: the newer message's download goes on
      this.download = null;
      if (!this.passStaged(m, staged, data)) return;
      this.ctx.step(m);
    } catch (err) {
      if (this.download === mine) this.download = null;
      this.notStaged(m, err);
    }
  }

  /** Logs why `m`'s state was not staged (and counts a download ended early); the leader's next message tries again. */
  private notStaged(m: Message, err: unknown): void {
    const fields = { from: m.from, index: m.snapshot!.metadata.index, term: m.term };
    if (!(err instanceof DownloadAbortedError)) {
      this.ctx.log.warn("snapshot not staged; waiting for the next snapshot message", { ...fields, error: err });
      return;
    }
    const msg = "snapshot not staged: its download was abandoned and the staging deleted; waiting for the next snapshot message";
    const line = { ...fields, reason: err.reason, why: err.message };
    if (err.reason !== "stopped") this.ctx.abandoned?.(err.reason);
    if (err.reason === "preempted") this.ctx.log.info(msg, line);
    else this.ctx.log.warn(msg, line);
  }

  /** Judges the staged state again against this node's state now (rollback check, attestation), then steps `m` if it still holds. */
  private async judgeAgain(m: Message, staged: StagedSnapshot): Promise<void> {
    const store = this.ctx.files.stagedStore(staged.index);
    if (store === undefined) return;
    const mine: InProgress = { index: staged.index, term: m.term, abort: new AbortController(), preemptible: false };
    this.download = mine;
    try {
      const applied = this.ctx.appliedIndex();
      await this.ctx.attest(m, { appliedIndex: staged.appliedIndex, digest: staged.digest }, store);
      this.checked = { index: staged.index, term: staged.term, applied };
      if (this.download === mine) this.download = null;
      if (this.ctx.appliedIndex() === applied) this.ctx.step(m); // else the next message of the leader is judged again
    } catch (err) {
      this.ctx.log.warn("staged snapshot refused when judged again; waiting for the next snapshot message", { from: m.from, index: staged.index, error: err });
      if (this.download === mine) this.download = null;
    }
  }

  /** Downloads snapshot (index, term) from `from` into `store`, within the download bounds (snapshot-download.ts). */
  private async importFrom(from: NodeId, index: number, term: number, store: LmdbVaultStore, abort: AbortController): Promise<StoreRef> {
    const hasher = (this.ctx.pairHasher ?? (() => new WorkerPairHasher()))();
    try {
      const importer = new SnapshotImporter(this.ctx.clusterId, loadingInto(store), hasher);
      const chunks = boundedChunks(this.ctx.fetch(from, index, term, abort.signal), { limits: this.limits, abort, freeBytes: this.freeBytes });
      await this.importChunks(importer, hasher, chunks, store);
      return await importer.finishHashed();
    } finally {
      await hasher.close();
    }
  }

  /** Parses `chunks` into `store`, with commits in flight, the hasher's backpressure, and a turn every IMPORT_TURN_MS. */
  private async importChunks(importer: SnapshotImporter, hasher: ImportHasher, chunks: AsyncIterable<Uint8Array>, store: LmdbVaultStore): Promise<void> {
    const commits: Array<Promise<void>> = [];
    const spent = new ImportSpent();
    const turns = new Turns();
    for await (const chunk of chunks) {
      spent.lap("waitedForChunksMs");
      for (let at = 0; at < chunk.byteLength; at += IMPORT_SLICE_BYTES) {
        importer.push(chunk.subarray(at, at + IMPORT_SLICE_BYTES));
        spent.lap("parsedMs");
        await hasher.ready();
        spent.lap("waitedForHashersMs");
        // Buffered chunks resume this loop on microtasks: without a turn the ports and Raft would wait for the whole buffer.
        await turns.due();
        if (store.uncommitted >= IMPORT_COMMIT_PAIRS) {
          const c = store.commit();
          c.catch(() => undefined); // awaited below; a failure also poisons the store, so the next push throws
          commits.push(c);
          if (commits.length >= IMPORT_COMMITS_IN_FLIGHT) await commits.shift();
        }
        spent.lap("turnsAndCommitsMs");
      }
    }
    commits.push(store.commit()); // the last loads: the importer's checks read them
    await Promise.all(commits);
    this.ctx.log.info("imported a snapshot", spent.fields());
  }
}

/** Where an import's time went, in ms (its log line): what the loop waited on, and its own work. */
class ImportSpent {
  private readonly ms = { waitedForChunksMs: 0, parsedMs: 0, waitedForHashersMs: 0, turnsAndCommitsMs: 0 };
  private chunks = 0;
  private last = performance.now();

  lap(what: keyof ImportSpent["ms"]): void {
    const now = performance.now();
    this.ms[what] += now - this.last;
    this.last = now;
    if (what === "waitedForChunksMs") this.chunks++;
  }

  fields(): Record<string, number> {
    return { chunks: this.chunks, ...Object.fromEntries(Object.entries(this.ms).map(([k, v]) => [k, Math.round(v)])) };
  }
}

/** The server snapshot of a complete single-chunk MsgSnap, else null (current nodes never send more than one chunk). */
function serverSnapshotOf(m: Message): ServerSnapshot | null {
  const c = m.snapshot;
  if (c === null || c.offset !== 0 || !c.done) return null;
  try {
    return decodeServerSnapshot(c.data);
  } catch {
    return null;
  }
}

/** `store` as an import's target: its puts are load()s, seen by reads once committed (importChunks commits them all before the checks). */
function loadingInto(store: LmdbVaultStore): VaultStore {
  return {
    get: (key) => store.get(key),
    put: (key, value) => store.load(key, value),
    delete: (key) => store.delete(key),
    scan: (start, end) => store.scan(start, end),
  };
}

/** Restores an inline vault state (empty: a new state) into `store`. */
function restoreInline(clusterId: string, store: LmdbVaultStore, vault: Uint8Array): StoreRef {
  const sm = vault.length > 0 ? VaultStateMachine.restore({ clusterId, store }, vault) : new VaultStateMachine({ clusterId, store });
  return { appliedIndex: sm.appliedIndex, digest: sm.digest() };
}

/** Whether two store references name the same state (applied index and digest). */
function sameRef(a: StoreRef, b: StoreRef): boolean {
  return a.appliedIndex === b.appliedIndex && Buffer.from(a.digest).equals(b.digest);
}

/** The downloaded state's reference, if it is the one the snapshot message names. */
function checkRef(got: StoreRef, want: StoreRef): StoreRef {
  if (!sameRef(got, want)) {
    throw new Error(`the downloaded state (applied ${got.appliedIndex}) is not the one the snapshot message names (applied ${want.appliedIndex})`);
  }
  return got;
}

/**
 * Makes sure the store state of a snapshot Raft is about to install is
 * staged: a store snapshot must have been staged before Raft saw its message;
 * an inline one (format 1: the bootstrap, or a leader of the release before
 * the store) is restored into a staged store here.
 */
export async function stageForInstall(files: VaultFiles, clusterId: string, snap: Snapshot): Promise<void> {
  const { index, term } = snap.metadata;
  const data = decodeServerSnapshot(snap.data);
  if (data.store !== undefined) {
    if (files.stagedAt(index)?.term !== term) throw new VaultInvariantError(`Raft installs snapshot ${index} (term ${term}) but its store state is not staged`);
    return;
  }
  await files.stage(index, term, async (store) => restoreInline(clusterId, store, data.vault));
}
