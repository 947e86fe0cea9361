// Binary encodings of WAL records and their payloads, written with the one
// codec (proto/crypto/bytes.ts). All integers are little-endian; u64 values
// are JavaScript safe integers (< 2^53), anything larger is refused on decode.
// Decoders check every bound and throw InvalidEncodingError; callers turn that
// into an error naming file and offset.
//
// Record frame:  len u32 | crc u32 | type u8 | payload (len - 1 bytes)
//   len = 1 + payload length; crc = CRC-32C over type byte + payload.

import { type ByteOrder, InvalidEncodingError, Reader, Writer } from "../../proto/crypto/index.js";
import { type Entry, EntryType, type HardState, type ConfState } from "../raft/index.js";
import { crc32c } from "./crc32c.js";
import { EncodeError } from "./errors.js";

export const FRAME_HEADER = 8;
/** Upper bound of `len`: a larger value is treated as corruption, not a record. */
export const MAX_RECORD_LEN = 256 * 1024 * 1024;

export enum RecordType {
  SegmentHeader = 1,
  Entry = 2,
  HardState = 3,
  /** A snapshot installed from the leader: the log restarts after (index, term). */
  SnapshotMarker = 4,
}

export const WAL_MAGIC = 0x4c41_5742; // "BWAL" read as u32 LE
export const WAL_VERSION = 1;

/** The byte order of every node/storage file (WAL segments and snapshot files). */
export const STORAGE_BYTE_ORDER: ByteOrder = "little-endian";

/** A Writer of a node/storage payload; capacity is the expected size (from Node's buffer pool, as the WAL writes one per entry). */
export function storageWriter(capacity: number): Writer {
  return new Writer(STORAGE_BYTE_ORDER, Buffer.allocUnsafe(capacity));
}

/** A Reader of a node/storage payload; it throws InvalidEncodingError naming `what`. */
export function storageReader(payload: Uint8Array, what: string): Reader {
  return new Reader(payload, what, STORAGE_BYTE_ORDER);
}

/** Frames one record: len | crc | type | payload. */
export function frameRecord(type: RecordType, payload: Uint8Array): Buffer {
  const len = payload.length + 1;
  if (len > MAX_RECORD_LEN) throw new EncodeError(`record of ${len} bytes exceeds ${MAX_RECORD_LEN}`);
  const out = Buffer.allocUnsafe(FRAME_HEADER + len);
  out.writeUInt32LE(len, 0);
  out[FRAME_HEADER] = type;
  out.set(payload, FRAME_HEADER + 1);
  out.writeUInt32LE(crc32c(out.subarray(FRAME_HEADER)), 4);
  return out;
}

export function encodeEntry(e: Entry): Uint8Array {
  return storageWriter(17 + e.data.length).u64(e.term).u64(e.index).u8(e.type).fixed(e.data).bytes();
}

export function decodeEntry(payload: Uint8Array): Entry {
  const r = storageReader(payload, "a WAL entry");
  const term = r.safeU64();
  const index = r.safeU64();
  const type = r.u8();
  if (type !== EntryType.Normal && type !== EntryType.ConfChange) throw new InvalidEncodingError(`bad entry type ${type}`);
  return { term, index, type, data: r.fixed(r.remaining) };
}

export function encodeHardState(hs: HardState): Uint8Array {
  return storageWriter(24).u64(hs.term).u64(hs.vote).u64(hs.commit).bytes();
}

export function decodeHardState(payload: Uint8Array): HardState {
  const r = storageReader(payload, "a WAL hard state");
  const hs = { term: r.safeU64(), vote: r.safeU64(), commit: r.safeU64() };
  r.end();
  return hs;
}

export interface SnapshotMarker {
  readonly index: number;
  readonly term: number;
}

export function encodeSnapshotMarker(m: SnapshotMarker): Uint8Array {
  return storageWriter(16).u64(m.index).u64(m.term).bytes();
}

export function decodeSnapshotMarker(payload: Uint8Array): SnapshotMarker {
  const r = storageReader(payload, "a WAL snapshot marker");
  const m = { index: r.safeU64(), term: r.safeU64() };
  r.end();
  return m;
}

export interface SegmentHeader {
  readonly seq: number;
  readonly firstIndex: number;
}

export function encodeSegmentHeader(h: SegmentHeader): Uint8Array {
  return storageWriter(22).u32(WAL_MAGIC).u16(WAL_VERSION).u64(h.seq).u64(h.firstIndex).bytes();
}

export function decodeSegmentHeader(payload: Uint8Array): SegmentHeader {
  const r = storageReader(payload, "a WAL segment header");
  const magic = r.u32();
  if (magic !== WAL_MAGIC) throw new InvalidEncodingError(`bad magic 0x${magic.toString(16)}`);
  const version = r.u16();
  if (version !== WAL_VERSION) throw new InvalidEncodingError(`unsupported WAL version ${version}`);
  const h = { seq: r.safeU64(), firstIndex: r.safeU64() };
  r.end();
  return h;
}

export function writeConfState(w: Writer, cs: ConfState): void {
  w.u32(cs.voters.length);
  for (const v of cs.voters) w.u64(v);
  w.u32(cs.learners.length);
  for (const l of cs.learners) w.u64(l);
}

export function readConfState(r: Reader): ConfState {
  const readIds = (): number[] => {
    const n = r.u32();
    if (n * 8 > r.remaining) throw new InvalidEncodingError(`id count ${n} exceeds remaining bytes`);
    const ids: number[] = [];
    for (let i = 0; i < n; i++) ids.push(r.safeU64());
    return ids;
  };
  const voters = readIds();
  return { voters, learners: readIds() };
}
