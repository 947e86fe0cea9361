// The WAL writer: appends framed records to the current segment with group
// commit, rotates segments, and removes segments a snapshot has made redundant.
//
// Group commit: append() queues its records and returns a promise. A single
// flush loop takes everything queued, writes it with ONE write() at the end of
// the segment and, if any caller asked for durability, ONE fdatasync(); the
// promises of that batch then resolve in call order. Appends that arrive while
// a flush is in flight form the next batch. After a failed write or fsync the
// WAL's on-disk state is unknown, so it refuses all further appends.
//
// Rotation (between batches, when the segment would exceed segmentBytes):
// fdatasync the old segment, create the new file, write its header and the
// latest hard state, fdatasync it, fsync the directory. Every segment thus
// starts with the hard state current at its creation, so removing older
// segments never loses the hard state.

import { type FileHandle, open, unlink } from "node:fs/promises";
import { join } from "node:path";
import { RecordType, encodeSegmentHeader, frameRecord } from "./codec.js";
import { StorageFailedError } from "./errors.js";
import { fsyncDir, hex16, writeFully } from "./fsutil.js";
import type { SegmentState } from "./wal-reader.js";

export const DEFAULT_SEGMENT_BYTES = 64 * 1024 * 1024;

/** A record to append; `index` is set for entries and snapshot markers. */
export interface WalRecord {
  readonly type: RecordType;
  readonly payload: Uint8Array;
  readonly index?: number;
}

export interface WalStats {
  /** append() calls. */
  appends: number;
  /** write() calls (one per batch, plus one per rotation). */
  writes: number;
  /** fdatasync() calls on segment files (batches and rotations). */
  fsyncs: number;
  /** fsync() calls on the WAL directory. */
  dirSyncs: number;
  bytes: number;
  rotations: number;
  purgedSegments: number;
}

interface Pending {
  readonly frames: Buffer[];
  readonly records: readonly WalRecord[];
  readonly sync: boolean;
  resolve(): void;
  reject(e: Error): void;
}

export interface WalWriterState {
  segments: SegmentState[];
  /** Payload of the last hard-state record in the WAL, written at the start of each new segment. */
  lastHardState: Uint8Array | null;
  /** Highest entry index written; names the next segment. */
  lastIndex: number;
  segmentBytes: number;
}

export function segmentName(seq: number, firstIndex: number): string {
  return `${hex16(seq)}-${hex16(firstIndex)}.wal`;
}

export class Wal {
  readonly stats: WalStats = { appends: 0, writes: 0, fsyncs: 0, dirSyncs: 0, bytes: 0, rotations: 0, purgedSegments: 0 };
  private queue: Pending[] = [];
  private flushing: Promise<void> | null = null;
  private failed: Error | null = null;
  private dirty = false;
  private closed = false;

  private constructor(
    private readonly dir: string,
    private fh: FileHandle,
    private readonly state: WalWriterState,
  ) {}

  /** Opens the last segment of `state.segments` for append, or creates the first segment. */
  static async open(dir: string, state: WalWriterState): Promise<Wal> {
    const last = state.segments.at(-1);
    if (last !== undefined) return new Wal(dir, await open(join(dir, last.name), "r+"), state);
    const wal = new Wal(dir, await open(join(dir, segmentName(0, state.lastIndex + 1)), "wx"), state);
    await wal.initSegment(0, state.lastIndex + 1);
    return wal;
  }

  /** Queues records; resolves once written and, if `sync`, fdatasynced. */
  append(records: readonly WalRecord[], sync: boolean): Promise<void> {
    if (this.failed) return Promise.reject(this.failed);
    if (this.closed) return Promise.reject(new StorageFailedError("WAL is closed"));
    this.stats.appends++;
    const frames = records.map((r) => frameRecord(r.type, r.payload));
    return new Promise((resolve, reject) => {
      this.queue.push({ frames, records, sync, resolve, reject });
      this.flushing ??= this.flushLoop();
    });
  }

  /**
   * Removes the oldest segments whose every entry and marker index is below
   * `belowIndex`; never the current segment. Returns the removed file names.
   */
  async purge(belowIndex: number): Promise<string[]> {
    const segs = this.state.segments;
    let n = 0;
    while (n < segs.length - 1 && segs[n]!.maxIndex < belowIndex) n++;
    if (n === 0) return [];
    const victims = segs.splice(0, n);
    for (const s of victims) await unlink(join(this.dir, s.name));
    await this.syncDir();
    this.stats.purgedSegments += n;
    return victims.map((s) => s.name);
  }

  segmentNames(): string[] {
    return this.state.segments.map((s) => s.name);
  }

  /** Waits for queued appends, syncs and closes the current segment. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.flushing;
    try {
      if (this.dirty && !this.failed) await this.fh.datasync();
    } finally {
      await this.fh.close();
    }
  }

  private async flushLoop(): Promise<void> {
    while (this.queue.length > 0) {
      const batch = this.queue;
      this.queue = [];
      try {
        await this.writeBatch(batch);
      } catch (e) {
        this.failed = new StorageFailedError(`WAL write failed, refusing further writes: ${(e as Error).message}`);
        for (const p of [...batch, ...this.queue]) p.reject(this.failed);
        this.queue = [];
        break;
      }
      for (const p of batch) p.resolve();
    }
    this.flushing = null;
  }

  private async writeBatch(batch: readonly Pending[]): Promise<void> {
    const buf = Buffer.concat(batch.flatMap((p) => p.frames));
    const current = this.current();
    if (current.size + buf.length > this.state.segmentBytes) await this.rotate();
    const seg = this.current();
    await this.writeAt(buf, seg.size);
    seg.size += buf.length;
    this.dirty = true;
    if (batch.some((p) => p.sync)) await this.datasync();
    for (const p of batch) for (const r of p.records) this.track(r);
  }

  /** Updates what the next segment header needs: last hard state, highest index. */
  private track(r: WalRecord): void {
    if (r.type === RecordType.HardState) this.state.lastHardState = r.payload;
    if (r.index !== undefined) {
      const seg = this.current();
      seg.maxIndex = Math.max(seg.maxIndex, r.index);
      this.state.lastIndex = r.index; // an entry, or a marker after which the log restarts
    }
  }

  private async rotate(): Promise<void> {
    if (this.dirty) await this.datasync();
    const seq = this.current().seq + 1;
    const firstIndex = this.state.lastIndex + 1;
    const next = await open(join(this.dir, segmentName(seq, firstIndex)), "wx");
    await this.fh.close();
    this.fh = next;
    await this.initSegment(seq, firstIndex);
    this.stats.rotations++;
  }

  /**
   * Writes header (+ latest hard state) to the fresh file in this.fh, syncs it
   * and the directory; only then does the segment become current (and older
   * segments purgeable).
   */
  private async initSegment(seq: number, firstIndex: number): Promise<void> {
    const frames = [frameRecord(RecordType.SegmentHeader, encodeSegmentHeader({ seq, firstIndex }))];
    if (this.state.lastHardState) frames.push(frameRecord(RecordType.HardState, this.state.lastHardState));
    const buf = Buffer.concat(frames);
    await this.writeAt(buf, 0);
    await this.datasync();
    await this.syncDir();
    this.state.segments.push({ seq, firstIndex, name: segmentName(seq, firstIndex), size: buf.length, maxIndex: 0 });
  }

  /**
   * Writes `buf` at `position` on libuv's thread pool, never on the event
   * loop: a write(2) that only appends to the page cache takes microseconds,
   * but the vault store's and the audit log's fsyncs on the same file system
   * make it wait for the journal (measured on a follower at 1 call in flight:
   * p90 1.5 ms, up to 80 ms, the event loop blocked meanwhile).
   */
  private async writeAt(buf: Buffer, position: number): Promise<void> {
    await writeFully(buf, async (offset, length) => (await this.fh.write(buf, offset, length, position + offset)).bytesWritten);
    this.stats.writes++;
    this.stats.bytes += buf.length;
  }

  private async datasync(): Promise<void> {
    await this.fh.datasync();
    this.dirty = false;
    this.stats.fsyncs++;
  }

  private async syncDir(): Promise<void> {
    await fsyncDir(this.dir);
    this.stats.dirSyncs++;
  }

  private current(): SegmentState {
    const seg = this.state.segments.at(-1);
    if (seg === undefined) throw new StorageFailedError("WAL has no segment");
    return seg;
  }
}
