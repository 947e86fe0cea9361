// DiskStorage: raft's Storage backed by the WAL and snapshot files. Reads are
// served by an in-memory MemoryStorage; every write is made durable first and
// only then applied to memory, so raft never sees an entry that is not stable.
//
// Layout under `dir`:   wal/<seq>-<firstIndex>.wal   snap/<term>-<index>.snap
// (see docs/storage.md for byte formats and the durability contract).

import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import {
  MemoryStorage,
  type ConfState,
  type Entry,
  type HardState,
  type Snapshot,
  type Storage,
  isEmptyHardState,
} from "../raft/index.js";
import { RecordType, encodeEntry, encodeHardState, encodeSnapshotMarker } from "./codec.js";
import { InvalidSaveError, StorageFailedError, WalInconsistentError } from "./errors.js";
import { fsyncDir } from "./fsutil.js";
import { replay } from "./replay.js";
import { SnapshotKind, Snapshotter } from "./snapshotter.js";
import { recoverWal } from "./wal-reader.js";
import { DEFAULT_SEGMENT_BYTES, Wal, type WalRecord, type WalStats } from "./wal.js";

export interface DiskStorageOptions {
  /** Soft upper bound of a WAL segment in bytes (default 64 MiB); a single larger batch gets a segment of its own. */
  segmentBytes?: number;
  /** Snapshot files kept (default 2, minimum 2: the older one is the fallback if the newest is corrupt). */
  keepSnapshots?: number;
  logger?: { warn(msg: string): void };
}

/** The persistable part of a raft Ready. */
export interface SaveRequest {
  readonly hardState?: HardState | null;
  readonly entries?: readonly Entry[];
  readonly snapshot?: Snapshot | null;
  /** Ignored (treated as true) when entries or a snapshot are present. */
  readonly mustSync?: boolean;
}

export interface OpenReport {
  /** Bytes cut from a torn WAL tail on open. */
  truncatedBytes: number;
  /** Index of the snapshot loaded on open (0 if none). */
  snapshotIndex: number;
}

export class DiskStorage implements Storage {
  /** Serializes saves that must wait for a snapshot file; `chained` counts links not yet enqueued. */
  private chain: Promise<unknown> = Promise.resolve();
  private chained = 0;
  /** lastIndex once every queued save is applied: validates new saves before they are written. */
  private expectedLast: number;
  /** Index of the newest snapshot passed to save(), durable or not. */
  private installedIndex = 0;
  private closed = false;
  private failed: StorageFailedError | null = null;
  /** Serializes snapshot retention and WAL purges. Never rejects. */
  private housekeeping: Promise<void> = Promise.resolve();

  private constructor(
    private readonly wal: Wal,
    private readonly snapshotter: Snapshotter,
    private readonly memory: MemoryStorage,
    private readonly keepSnapshots: number,
    private readonly warn: (msg: string) => void,
    readonly openReport: OpenReport,
  ) {
    this.expectedLast = memory.lastIndex();
  }

  /** Opens (creating if needed) the storage in `dir`, recovering the WAL; see docs/storage.md for the rules. */
  static async open(dir: string, opts: DiskStorageOptions = {}): Promise<DiskStorage> {
    const warn = opts.logger ? (m: string) => opts.logger!.warn(m) : (m: string) => console.warn(`bkv storage: ${m}`);
    const walDir = join(dir, "wal");
    const snapDir = join(dir, "snap");
    await mkdir(walDir, { recursive: true });
    await mkdir(snapDir, { recursive: true });
    await fsyncDir(dir);
    const snapshotter = new Snapshotter(snapDir, warn);
    await snapshotter.removeTemporaries();
    const base = await snapshotter.loadNewest();
    const recovered = await recoverWal(walDir);
    if (recovered.truncatedBytes > 0) warn(`truncated a torn WAL tail of ${recovered.truncatedBytes} bytes`);
    // Snapshots (even ones renamed corrupt just now or before) prove this member had state: without the WAL its term and vote are gone.
    if (recovered.segments.length === 0 && (base !== null || (await snapshotter.anyFiles()))) {
      throw new WalInconsistentError(`${snapDir} holds snapshots but ${walDir} has no segment: the hard state is lost`);
    }
    const log = replay(recovered.items, base);
    const memory = new MemoryStorage();
    if (base) memory.applySnapshot(base.snapshot);
    memory.append(owned(log.entries));
    memory.setHardState(log.hardState);
    const wal = await Wal.open(walDir, {
      segments: recovered.segments,
      lastHardState: isEmptyHardState(log.hardState) ? null : encodeHardState(log.hardState),
      lastIndex: memory.lastIndex(),
      segmentBytes: opts.segmentBytes ?? DEFAULT_SEGMENT_BYTES,
    });
    const report = { truncatedBytes: recovered.truncatedBytes, snapshotIndex: base?.snapshot.metadata.index ?? 0 };
    return new DiskStorage(wal, snapshotter, memory, Math.max(2, opts.keepSnapshots ?? 2), warn, report);
  }

  // --- Storage (reads), served from memory ---

  initialState(): { hardState: HardState; confState: ConfState } {
    return this.memory.initialState();
  }
  entries(lo: number, hi: number, maxSize: number): Entry[] {
    return this.memory.entries(lo, hi, maxSize);
  }
  term(i: number): number {
    return this.memory.term(i);
  }
  lastIndex(): number {
    return this.memory.lastIndex();
  }
  firstIndex(): number {
    return this.memory.firstIndex();
  }
  snapshot(): Snapshot {
    return this.memory.snapshot();
  }

  // --- writes ---

  /**
   * Persists a Ready's snapshot (first), entries and hard state, then applies
   * them to memory. Resolves once durable (fdatasynced) when mustSync, entries
   * or a snapshot are present, else once written. Concurrent saves are
   * group-committed and applied in call order.
   */
  save(rd: SaveRequest): Promise<void> {
    if (this.closed) return Promise.reject(new StorageFailedError("storage is closed"));
    if (this.failed) return Promise.reject(this.failed);
    try {
      this.validate(rd);
    } catch (e) {
      return Promise.reject(e as Error);
    }
    if (this.chained === 0 && !rd.snapshot) return this.commit(rd);
    this.chained++;
    const enqueued = this.chain.then(async () => {
      try {
        if (rd.snapshot) await this.snapshotter.save(rd.snapshot, SnapshotKind.Installed);
      } catch (e) {
        this.failed ??= new StorageFailedError(`snapshot write failed, refusing further writes: ${(e as Error).message}`);
        throw this.failed;
      } finally {
        this.chained--;
      }
      return { durable: this.commit(rd) };
    });
    // The chain never rejects: a failed link fails only its own save (and sets `failed`).
    this.chain = enqueued.then(
      () => (rd.snapshot ? this.afterSnapshot() : undefined),
      () => undefined,
    );
    return enqueued.then((x) => x.durable);
  }

  /** Persists a snapshot received from the leader, then installs it in memory (the log restarts after it). */
  saveSnapshot(snapshot: Snapshot): Promise<void> {
    return this.save({ snapshot, mustSync: true });
  }

  /**
   * Records a snapshot of the applied state at index i (local compaction):
   * writes the snapshot file durably, makes it the memory snapshot, keeps the
   * newest snapshots and removes WAL segments the older kept one covers.
   * Entries stay readable until compact(i).
   */
  async createSnapshot(i: number, confState: ConfState, data: Uint8Array): Promise<Snapshot> {
    const current = this.memory.snapshot();
    if (i <= current.metadata.index) return current;
    if (i > this.memory.lastIndex()) throw new InvalidSaveError(`createSnapshot: ${i} is past last index ${this.memory.lastIndex()}`);
    const snap = { metadata: { index: i, term: this.memory.term(i), confState }, data };
    await this.snapshotter.save(snap, SnapshotKind.Local);
    this.memory.createSnapshot(i, confState, data);
    await this.afterSnapshot();
    return this.memory.snapshot();
  }

  /** Drops in-memory entries before compactIndex (which must not exceed the snapshot index). */
  compact(compactIndex: number): void {
    const snapIndex = this.memory.snapshot().metadata.index;
    if (compactIndex > snapIndex) throw new InvalidSaveError(`compact: ${compactIndex} is past snapshot index ${snapIndex}`);
    this.memory.compact(compactIndex);
  }

  get stats(): Readonly<WalStats> {
    return this.wal.stats;
  }

  /** Current WAL segment file names, oldest first (for tests and operators). */
  walSegments(): string[] {
    return this.wal.segmentNames();
  }

  /** Waits for pending saves and closes files. The storage cannot be used afterwards. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.chain;
    await this.housekeeping;
    await this.wal.close();
  }

  /** Refuses saves that would leave a gap, before anything is written. */
  private validate(rd: SaveRequest): void {
    const ents = rd.entries ?? [];
    const snapIndex = rd.snapshot?.metadata.index;
    if (snapIndex !== undefined) {
      const current = Math.max(this.installedIndex, this.memory.snapshot().metadata.index);
      // An older snapshot would be ignored by memory but would reset the log on replay: refuse it.
      if (snapIndex <= current) throw new InvalidSaveError(`save: snapshot ${snapIndex} is not newer than ${current}`);
    }
    let last = snapIndex ?? this.expectedLast;
    for (const e of ents) {
      if (!Number.isSafeInteger(e.index) || e.index < 1 || e.index > last + 1) {
        throw new InvalidSaveError(`save: entry ${e.index} does not follow ${last}`);
      }
      last = e.index;
    }
    if (snapIndex !== undefined) this.installedIndex = snapIndex;
    if (rd.snapshot || ents.length > 0) this.expectedLast = last;
  }

  /** Enqueues the WAL records of `rd` now (fixing its order) and applies it to memory once durable. */
  private commit(rd: SaveRequest): Promise<void> {
    const records: WalRecord[] = [];
    if (rd.snapshot) {
      const { index, term } = rd.snapshot.metadata;
      records.push({ type: RecordType.SnapshotMarker, payload: encodeSnapshotMarker({ index, term }), index });
    }
    for (const e of rd.entries ?? []) records.push({ type: RecordType.Entry, payload: encodeEntry(e), index: e.index });
    if (rd.hardState) records.push({ type: RecordType.HardState, payload: encodeHardState(rd.hardState) });
    if (records.length === 0) return Promise.resolve();
    const sync = rd.mustSync === true || records.length > (rd.hardState ? 1 : 0);
    return this.wal.append(records, sync).then(() => this.applyToMemory(rd));
  }

  private applyToMemory(rd: SaveRequest): void {
    if (rd.snapshot) this.memory.applySnapshot(rd.snapshot);
    if (rd.entries) this.memory.append(owned(rd.entries));
    if (rd.hardState) this.memory.setHardState(rd.hardState);
  }

  /**
   * Keeps the newest snapshot files and purges WAL segments below the oldest
   * kept one (so a fallback to it still finds every later entry). Failure only
   * leaves extra files behind: warned, not fatal.
   */
  private afterSnapshot(): Promise<void> {
    this.housekeeping = this.housekeeping.then(() => this.retainAndPurge());
    return this.housekeeping;
  }

  private async retainAndPurge(): Promise<void> {
    try {
      const kept = await this.snapshotter.retain(this.keepSnapshots);
      if (kept.length >= this.keepSnapshots) await this.wal.purge(kept[0]!);
    } catch (e) {
      this.warn(`removing old snapshots or WAL segments failed: ${(e as Error).message}`);
    }
  }
}

/**
 * The entries with their data copied into buffers of their own. An entry's
 * data is often a view of a larger buffer (a WAL segment read at start, a peer
 * frame, Node's 8 KiB pool); the log keeps entries until compaction, and a
 * view would keep the whole buffer alive that long.
 */
function owned(entries: readonly Entry[]): Entry[] {
  return entries.map((e) => (e.data.byteOffset === 0 && e.data.byteLength === e.data.buffer.byteLength ? e : { ...e, data: new Uint8Array(e.data) }));
}
