// WAL recovery: reads every segment in order and returns its records.
//
// Rules:
//  - a record that fails (short, bad length, CRC mismatch, bad type) at the
//    END of the LAST segment, followed only by bytes that hold no valid record,
//    is a torn tail: the file is truncated there and the truncation fsynced
//    (a last segment whose header itself is torn is deleted);
//  - any other failure (in an earlier segment, or valid records follow it)
//    is corruption: WalCorruptError naming the file and byte offset;
//  - segment sequence numbers must be contiguous (a prefix may have been purged).

import { open, readFile, unlink } from "node:fs/promises";
import { join } from "node:path";
import { setImmediate as nextTurn } from "node:timers/promises";
import { InvalidEncodingError } from "../../proto/crypto/index.js";
import type { Entry, HardState } from "../raft/index.js";
import {
  FRAME_HEADER,
  MAX_RECORD_LEN,
  RecordType,
  type SegmentHeader,
  type SnapshotMarker,
  decodeEntry,
  decodeHardState,
  decodeSegmentHeader,
  decodeSnapshotMarker,
} from "./codec.js";
import { crc32c } from "./crc32c.js";
import { WalCorruptError, WalInconsistentError } from "./errors.js";
import { fsyncDir, listMatching } from "./fsutil.js";

export const SEGMENT_RE = /^([0-9a-f]{16})-([0-9a-f]{16})\.wal$/;

export type WalItem =
  | { kind: "entry"; entry: Entry; file: string; offset: number }
  | { kind: "hardState"; hardState: HardState; file: string; offset: number }
  | { kind: "snapshot"; marker: SnapshotMarker; file: string; offset: number };

/** What the writer needs to know about a segment on disk. */
export interface SegmentState {
  readonly seq: number;
  readonly firstIndex: number;
  readonly name: string;
  size: number;
  /** Highest entry or snapshot-marker index in the segment (0 if none). */
  maxIndex: number;
}

export interface RecoveredWal {
  segments: SegmentState[];
  items: WalItem[];
  /** Bytes cut from a torn tail (0 if none). */
  truncatedBytes: number;
}

interface RawRecord {
  type: RecordType;
  payload: Uint8Array;
  offset: number;
}

type Parse = { ok: true; record: RawRecord; next: number } | { ok: false; reason: string };

/** Tries to parse one framed record at `off`; never throws. */
function parseRecord(buf: Buffer, off: number): Parse {
  if (buf.length - off < FRAME_HEADER + 1) return { ok: false, reason: "short record header" };
  const len = buf.readUInt32LE(off);
  if (len < 1 || len > MAX_RECORD_LEN) return { ok: false, reason: `bad record length ${len}` };
  const end = off + FRAME_HEADER + len;
  if (end > buf.length) return { ok: false, reason: `record of ${len} bytes runs past end of file` };
  const body = buf.subarray(off + FRAME_HEADER, end);
  if (crc32c(body) !== buf.readUInt32LE(off + 4)) return { ok: false, reason: "CRC32C mismatch" };
  const type = body[0]!;
  if (type < RecordType.SegmentHeader || type > RecordType.SnapshotMarker) {
    return { ok: false, reason: `unknown record type ${type}` };
  }
  return { ok: true, record: { type, payload: body.subarray(1), offset: off }, next: end };
}

/** True if any offset in [from, end) starts a complete record with a valid CRC. */
function validRecordFollows(buf: Buffer, from: number): boolean {
  for (let p = from; p + FRAME_HEADER < buf.length; p++) {
    const len = buf.readUInt32LE(p); // cheap pre-check: most offsets fail here
    if (len < 1 || len > MAX_RECORD_LEN || p + FRAME_HEADER + len > buf.length) continue;
    if (parseRecord(buf, p).ok) return true;
  }
  return false;
}

interface ScannedSegment {
  records: RawRecord[];
  /** Offset where a torn tail starts, or null if the file is clean. */
  tornAt: number | null;
}

/**
 * Bytes checked (CRC) and records decoded between two yields to the event
 * loop: recovery reads up to a few hundred MiB at start and must not stall
 * the loop for long (docs/storage.md, "Restart").
 */
const YIELD_BYTES = 2 * 1024 * 1024;
const YIELD_RECORDS = 2048;

async function scanSegment(buf: Buffer, file: string, isLast: boolean): Promise<ScannedSegment> {
  const records: RawRecord[] = [];
  let off = 0;
  for (let pause = YIELD_BYTES; off < buf.length;) {
    if (off >= pause) {
      await nextTurn();
      pause = off + YIELD_BYTES;
    }
    const r = parseRecord(buf, off);
    if (r.ok) {
      records.push(r.record);
      off = r.next;
      continue;
    }
    if (!isLast) throw new WalCorruptError(file, off, `${r.reason} (not the last segment)`);
    if (validRecordFollows(buf, off + 1)) throw new WalCorruptError(file, off, `${r.reason}; valid records follow`);
    return { records, tornAt: off };
  }
  if (records.length === 0) {
    // An empty file: a rotation that crashed before its header was written.
    if (!isLast) throw new WalCorruptError(file, 0, "empty segment (not the last segment)");
    return { records, tornAt: 0 };
  }
  return { records, tornAt: null };
}

function decodeItem(rec: RawRecord, file: string): WalItem | SegmentHeader {
  const at = { file, offset: rec.offset };
  try {
    switch (rec.type) {
      case RecordType.SegmentHeader:
        return decodeSegmentHeader(rec.payload);
      case RecordType.Entry:
        return { kind: "entry", entry: decodeEntry(rec.payload), ...at };
      case RecordType.HardState:
        return { kind: "hardState", hardState: decodeHardState(rec.payload), ...at };
      case RecordType.SnapshotMarker:
        return { kind: "snapshot", marker: decodeSnapshotMarker(rec.payload), ...at };
    }
  } catch (e) {
    if (e instanceof InvalidEncodingError) throw new WalCorruptError(file, rec.offset, `undecodable record: ${e.message}`);
    throw e;
  }
}

function itemIndex(item: WalItem): number {
  if (item.kind === "entry") return item.entry.index;
  if (item.kind === "snapshot") return item.marker.index;
  return 0;
}

/** Checks the header record and decodes the rest of a scanned segment. */
async function decodeSegment(scan: ScannedSegment, file: string, seq: number): Promise<WalItem[]> {
  const first = scan.records[0];
  if (first === undefined) return [];
  const header = decodeItem(first, file);
  if (!("seq" in header)) throw new WalCorruptError(file, 0, "segment does not start with a header record");
  if (header.seq !== seq) throw new WalCorruptError(file, 0, `header seq ${header.seq} does not match file name`);
  const items: WalItem[] = [];
  for (let i = 1; i < scan.records.length; i++) {
    if (i % YIELD_RECORDS === 0) await nextTurn();
    const rec = scan.records[i]!;
    const item = decodeItem(rec, file);
    if ("seq" in item) throw new WalCorruptError(file, rec.offset, "segment header in the middle of a segment");
    items.push(item);
  }
  return items;
}

async function truncateFile(path: string, size: number): Promise<void> {
  const fh = await open(path, "r+");
  try {
    await fh.truncate(size);
    await fh.datasync();
  } finally {
    await fh.close();
  }
}

/** Lists segments sorted by sequence and checks that no sequence number is missing. */
async function listSegments(walDir: string): Promise<{ name: string; seq: number; firstIndex: number }[]> {
  const found = (await listMatching(walDir, SEGMENT_RE)).map(({ name, groups }) => ({
    name,
    seq: parseInt(groups[0]!, 16),
    firstIndex: parseInt(groups[1]!, 16),
  }));
  found.sort((a, b) => a.seq - b.seq);
  for (let i = 1; i < found.length; i++) {
    if (found[i]!.seq !== found[i - 1]!.seq + 1) {
      throw new WalInconsistentError(`WAL segment missing between ${found[i - 1]!.name} and ${found[i]!.name}`);
    }
  }
  return found;
}

/** Reads the WAL directory, repairing a torn tail; see the rules at the top of this file. */
export async function recoverWal(walDir: string): Promise<RecoveredWal> {
  const files = await listSegments(walDir);
  const segments: SegmentState[] = [];
  const items: WalItem[] = [];
  let truncatedBytes = 0;
  for (const [i, f] of files.entries()) {
    const path = join(walDir, f.name);
    const buf = await readFile(path);
    const scan = await scanSegment(buf, path, i === files.length - 1);
    const segItems = await decodeSegment(scan, path, f.seq);
    if (scan.tornAt !== null) {
      truncatedBytes += buf.length - scan.tornAt;
      if (scan.records.length === 0) {
        await unlink(path);
        await fsyncDir(walDir);
        continue;
      }
      await truncateFile(path, scan.tornAt);
    }
    const size = scan.tornAt ?? buf.length;
    const maxIndex = segItems.reduce((m, it) => Math.max(m, itemIndex(it)), 0);
    segments.push({ seq: f.seq, firstIndex: f.firstIndex, name: f.name, size, maxIndex });
    for (const it of segItems) items.push(it);
  }
  return { segments, items, truncatedBytes };
}
