// Binary encodings of WAL records and their payloads. All integers are
// little-endian; u64 values are JavaScript safe integers (< 2^53), anything
// larger is refused on decode. Decoders check every bound and throw
// DecodeError; callers turn that into an error naming file and offset.
//
// Record frame:  len u32 | crc u32 | type u8 | payload (len - 1 bytes)
//   len = 1 + payload length; crc = CRC-32C over type byte + payload.

import { type Entry, EntryType, type HardState, type ConfState } from "../raft/types.js";
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

/** Thrown by decoders; carries the offset within the payload. */
export class DecodeError extends Error {
  override name = "DecodeError";
}

export class ByteWriter {
  private buf: Buffer;
  private pos = 0;
  constructor(capacity: number) {
    this.buf = Buffer.allocUnsafe(capacity);
  }
  u8(v: number): this {
    this.ensure(1);
    this.buf.writeUInt8(v, this.pos);
    this.pos += 1;
    return this;
  }
  u16(v: number): this {
    this.ensure(2);
    this.buf.writeUInt16LE(v, this.pos);
    this.pos += 2;
    return this;
  }
  u32(v: number): this {
    this.ensure(4);
    this.buf.writeUInt32LE(v, this.pos);
    this.pos += 4;
    return this;
  }
  u64(v: number): this {
    if (!Number.isSafeInteger(v) || v < 0) throw new EncodeError(`u64 out of range: ${v}`);
    this.u32(v % 0x1_0000_0000);
    return this.u32(Math.floor(v / 0x1_0000_0000));
  }
  bytes(b: Uint8Array): this {
    this.ensure(b.length);
    this.buf.set(b, this.pos);
    this.pos += b.length;
    return this;
  }
  finish(): Buffer {
    return this.buf.subarray(0, this.pos);
  }
  private ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.pos + n));
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }
}

export class ByteReader {
  private pos = 0;
  constructor(private readonly buf: Uint8Array) {}
  get offset(): number {
    return this.pos;
  }
  get remaining(): number {
    return this.buf.length - this.pos;
  }
  u8(): number {
    this.need(1);
    return this.buf[this.pos++]!;
  }
  u16(): number {
    this.need(2);
    const v = this.buf[this.pos]! | (this.buf[this.pos + 1]! << 8);
    this.pos += 2;
    return v;
  }
  u32(): number {
    this.need(4);
    const b = this.buf;
    const p = this.pos;
    this.pos += 4;
    return (b[p]! | (b[p + 1]! << 8) | (b[p + 2]! << 16) | (b[p + 3]! << 24)) >>> 0;
  }
  u64(): number {
    const lo = this.u32();
    const hi = this.u32();
    if (hi >= 0x20_0000) throw new DecodeError(`u64 at ${this.pos - 8} exceeds 2^53`);
    return hi * 0x1_0000_0000 + lo;
  }
  bytes(n: number): Uint8Array {
    this.need(n);
    // A plain Uint8Array copy: independent of the (possibly large) source buffer.
    const out = new Uint8Array(this.buf.subarray(this.pos, this.pos + n));
    this.pos += n;
    return out;
  }
  rest(): Uint8Array {
    return this.bytes(this.remaining);
  }
  /** Asserts that the whole buffer was consumed. */
  end(): void {
    if (this.remaining !== 0) throw new DecodeError(`${this.remaining} trailing bytes at ${this.pos}`);
  }
  private need(n: number): void {
    if (n < 0 || this.pos + n > this.buf.length) {
      throw new DecodeError(`need ${n} bytes at ${this.pos}, have ${this.buf.length - this.pos}`);
    }
  }
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
  return new ByteWriter(17 + e.data.length).u64(e.term).u64(e.index).u8(e.type).bytes(e.data).finish();
}

export function decodeEntry(payload: Uint8Array): Entry {
  const r = new ByteReader(payload);
  const term = r.u64();
  const index = r.u64();
  const type = r.u8();
  if (type !== EntryType.Normal && type !== EntryType.ConfChange) throw new DecodeError(`bad entry type ${type}`);
  return { term, index, type, data: r.rest() };
}

export function encodeHardState(hs: HardState): Uint8Array {
  return new ByteWriter(24).u64(hs.term).u64(hs.vote).u64(hs.commit).finish();
}

export function decodeHardState(payload: Uint8Array): HardState {
  const r = new ByteReader(payload);
  const hs = { term: r.u64(), vote: r.u64(), commit: r.u64() };
  r.end();
  return hs;
}

export interface SnapshotMarker {
  readonly index: number;
  readonly term: number;
}

export function encodeSnapshotMarker(m: SnapshotMarker): Uint8Array {
  return new ByteWriter(16).u64(m.index).u64(m.term).finish();
}

export function decodeSnapshotMarker(payload: Uint8Array): SnapshotMarker {
  const r = new ByteReader(payload);
  const m = { index: r.u64(), term: r.u64() };
  r.end();
  return m;
}

export interface SegmentHeader {
  readonly seq: number;
  readonly firstIndex: number;
}

export function encodeSegmentHeader(h: SegmentHeader): Uint8Array {
  return new ByteWriter(22).u32(WAL_MAGIC).u16(WAL_VERSION).u64(h.seq).u64(h.firstIndex).finish();
}

export function decodeSegmentHeader(payload: Uint8Array): SegmentHeader {
  const r = new ByteReader(payload);
  const magic = r.u32();
  if (magic !== WAL_MAGIC) throw new DecodeError(`bad magic 0x${magic.toString(16)}`);
  const version = r.u16();
  if (version !== WAL_VERSION) throw new DecodeError(`unsupported WAL version ${version}`);
  const h = { seq: r.u64(), firstIndex: r.u64() };
  r.end();
  return h;
}

export function writeConfState(w: ByteWriter, cs: ConfState): void {
  w.u32(cs.voters.length);
  for (const v of cs.voters) w.u64(v);
  w.u32(cs.learners.length);
  for (const l of cs.learners) w.u64(l);
}

export function readConfState(r: ByteReader): ConfState {
  const readIds = (): number[] => {
    const n = r.u32();
    if (n * 8 > r.remaining) throw new DecodeError(`id count ${n} exceeds remaining bytes`);
    const ids: number[] = [];
    for (let i = 0; i < n; i++) ids.push(r.u64());
    return ids;
  };
  const voters = readIds();
  return { voters, learners: readIds() };
}
