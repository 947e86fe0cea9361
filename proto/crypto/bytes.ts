// The one byte codec of bkv: fixed-width unsigned integers, byte strings
// with a 2-byte length prefix (lp16), UTF-8 strings as lp16 byte strings. A
// Reader refuses truncation and trailing bytes; a Writer refuses a value that
// does not fit its field.
//
// Byte order is a property of a format, chosen once where the format is
// defined: every bkv v1 wire, crypto and Raft format is big-endian (the
// default); the on-disk WAL and snapshot files of node/storage are
// little-endian, as they have been since their version 1 (docs/storage.md,
// docs/decisions.md).
import { InvalidArgumentError, InvalidEncodingError, InvalidLengthError } from "./errors.js";

const U64_MAX = (1n << 64n) - 1n;
const TWO_32 = 2 ** 32;

export type ByteOrder = "big-endian" | "little-endian";

/** Accumulates an encoding in one growing buffer. */
export class Writer {
  private buf: Uint8Array;
  private pos = 0;
  private readonly le: boolean;

  /**
   * initial: the expected size (an exact hint avoids a final copy), or the
   * array to write into first — a hot path passes a pooled one (Node's
   * Buffer.allocUnsafe), whose old contents are never read: bytes() returns
   * only what was written.
   */
  constructor(order: ByteOrder = "big-endian", initial: number | Uint8Array = 64) {
    this.le = order === "little-endian";
    this.buf = typeof initial === "number" ? new Uint8Array(initial) : initial;
  }

  u8(v: number): this {
    return this.uint(v, 1, "u8");
  }
  u16(v: number): this {
    return this.uint(v, 2, "u16");
  }
  u32(v: number): this {
    return this.uint(v, 4, "u32");
  }
  /** A u64 from a bigint or a safe non-negative integer. */
  u64(v: bigint | number): this {
    if (typeof v === "number" && Number.isSafeInteger(v) && v >= 0) {
      const hi = Math.floor(v / TWO_32);
      const lo = v >>> 0;
      return this.le ? this.u32(lo).u32(hi) : this.u32(hi).u32(lo);
    }
    const b = checkU64Field(v);
    const hi = Number(b >> 32n);
    const lo = Number(b & 0xffff_ffffn);
    return this.le ? this.u32(lo).u32(hi) : this.u32(hi).u32(lo);
  }
  /** Bytes written as they are (the reader must know the length). */
  fixed(b: Uint8Array): this {
    const at = this.reserve(b.length); // before this.buf is read: reserve may replace it
    this.buf.set(b, at);
    return this;
  }
  /** A byte string prefixed with its length as u16. */
  lp16(b: Uint8Array): this {
    if (b.length > 0xffff) throw new InvalidLengthError("an lp16 field", "at most 65535", b.length);
    return this.u16(b.length).fixed(b);
  }
  /** A UTF-8 string as an lp16 byte string. */
  str(s: string): this {
    return this.lp16(utf8(s));
  }
  /**
   * The encoding written so far, without a copy: a view of exactly its
   * length (its .buffer may be larger). Later writes never change it: they
   * only append, and a full buffer is replaced, not grown in place.
   */
  bytes(): Uint8Array {
    return this.buf.subarray(0, this.pos);
  }
  /** An unsigned integer of len bytes in the Writer's byte order; v must fit. */
  private uint(v: number, len: 1 | 2 | 4, what: string): this {
    if (!Number.isInteger(v) || v < 0 || v >= 2 ** (8 * len)) throw new InvalidArgumentError(`${String(v)} does not fit a ${what}`);
    const at = this.reserve(len);
    const buf = this.buf;
    for (let i = 0; i < len; i++) {
      buf[this.le ? at + i : at + len - 1 - i] = v & 0xff;
      v = v >>> 8;
    }
    return this;
  }
  /** Makes room for len more bytes; returns the offset where they go. */
  private reserve(len: number): number {
    const at = this.pos;
    if (at + len > this.buf.length) {
      const next = new Uint8Array(Math.max(this.buf.length * 2, at + len, 16));
      next.set(this.buf.subarray(0, at));
      this.buf = next;
    }
    this.pos = at + len;
    return at;
  }
}

/** Reads an encoding; every read past the end throws InvalidEncodingError naming `what`. */
export class Reader {
  private off = 0;
  private readonly le: boolean;
  constructor(
    private readonly buf: Uint8Array,
    private readonly what: string,
    order: ByteOrder = "big-endian",
  ) {
    this.le = order === "little-endian";
  }

  u8(): number {
    return this.uint(1);
  }
  u16(): number {
    return this.uint(2);
  }
  u32(): number {
    return this.uint(4);
  }
  u64(): bigint {
    const first = BigInt(this.uint(4));
    const second = BigInt(this.uint(4));
    return this.le ? (second << 32n) | first : (first << 32n) | second;
  }
  /** A u64 that must be a safe integer (below 2^53), as a number. */
  safeU64(): number {
    const at = this.off;
    const first = this.uint(4);
    const second = this.uint(4);
    const hi = this.le ? second : first;
    const lo = this.le ? first : second;
    if (hi >= 0x20_0000) throw new InvalidEncodingError(`${this.what} holds a u64 at byte ${at} that exceeds 2^53`);
    return hi * TWO_32 + lo;
  }
  /**
   * The next len bytes, as a plain Uint8Array copy (callers may keep it: it
   * does not alias the input, even when the input is a Node Buffer, whose
   * slice() would).
   */
  fixed(len: number): Uint8Array {
    return new Uint8Array(this.buf.subarray(this.off, this.advance(len)));
  }
  /**
   * The next len bytes as a view of the input, without a copy: it aliases the
   * input and keeps all of it alive. Only for a caller that owns the input
   * and never changes it.
   */
  view(len: number): Uint8Array {
    return this.buf.subarray(this.off, this.advance(len));
  }
  /** Bytes read so far. */
  get offset(): number {
    return this.off;
  }
  /** Bytes not read yet. */
  get remaining(): number {
    return this.buf.length - this.off;
  }
  lp16(): Uint8Array {
    return this.fixed(this.u16());
  }
  /** An lp16 string; strict UTF-8 (fatal decoding; a leading BOM is dropped, as TextDecoder does). */
  str(): string {
    const len = this.u16();
    const start = this.off;
    const bytes = this.buf.subarray(start, this.advance(len));
    try {
      return STRICT_UTF8.decode(bytes);
    } catch {
      throw new InvalidEncodingError(`${this.what} holds a string that is not UTF-8`);
    }
  }
  /** Asserts that every byte was consumed. */
  end(): void {
    if (this.off !== this.buf.length) throw new InvalidEncodingError(`${this.what} has ${this.buf.length - this.off} trailing bytes`);
  }
  /** Moves past len bytes and returns the new offset; throws if fewer remain. */
  private advance(len: number): number {
    const end = this.off + len;
    if (end > this.buf.length) throw new InvalidEncodingError(`${this.what} is truncated`);
    this.off = end;
    return end;
  }
  /** An unsigned integer of 1 to 4 bytes in the Reader's byte order. */
  private uint(len: 1 | 2 | 4): number {
    const start = this.off;
    this.advance(len);
    let v = 0;
    for (let i = 0; i < len; i++) v = v * 256 + (this.buf[this.le ? start + len - 1 - i : start + i] as number);
    return v;
  }
}

// TextDecoder.decode without { stream: true } starts afresh on every call, so
// one decoder per semantics is shared (creating one per string was the main
// cost of decoding strings).
const STRICT_UTF8 = new TextDecoder("utf-8", { fatal: true });
const LENIENT_UTF8 = new TextDecoder();
const UTF8_ENCODER = new TextEncoder();

/** v as a bigint in [0, 2^64); throws InvalidArgumentError otherwise (a number must be a safe integer). */
function checkU64Field(v: bigint | number): bigint {
  const b = typeof v === "bigint" ? v : Number.isSafeInteger(v) ? BigInt(v) : -1n;
  if (b < 0n || b > U64_MAX) throw new InvalidArgumentError(`${String(v)} does not fit a u64`);
  return b;
}

/** Big-endian unsigned encoding of v on exactly len bytes. */
export function bigIntToBytes(v: bigint, len: number): Uint8Array {
  if (v < 0n || v >= 1n << BigInt(8 * len)) throw new InvalidEncodingError(`integer does not fit ${len} bytes`);
  const out = new Uint8Array(len);
  for (let i = len - 1; i >= 0; i--) {
    out[i] = Number(v & 0xffn);
    v >>= 8n;
  }
  return out;
}

export function bytesToBigInt(b: Uint8Array): bigint {
  let v = 0n;
  for (const x of b) v = (v << 8n) | BigInt(x);
  return v;
}

/** Strict UTF-8 encoding; a string with lone surrogates is refused. */
export function utf8(s: string): Uint8Array {
  const b = UTF8_ENCODER.encode(s);
  if (LENIENT_UTF8.decode(b) !== s) throw new InvalidArgumentError("string is not well-formed Unicode");
  return b;
}

export function concat(...parts: Uint8Array[]): Uint8Array {
  const w = new Writer();
  for (const p of parts) w.fixed(p);
  return w.bytes();
}

/** Equality of two byte strings, constant-time in their contents. */
export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= (a[i] ?? 0) ^ (b[i] ?? 0);
  return diff === 0;
}

/** Throws InvalidLengthError unless b is a Uint8Array of one of the lengths. */
export function expectLength(b: unknown, what: string, ...lengths: number[]): Uint8Array {
  if (!(b instanceof Uint8Array)) throw new InvalidArgumentError(`${what} must be a Uint8Array`);
  if (!lengths.includes(b.length)) throw new InvalidLengthError(what, lengths.join(" or "), b.length);
  return b;
}

export function checkU64(v: bigint | number, what: string): bigint {
  const b = typeof v === "number" ? (Number.isSafeInteger(v) ? BigInt(v) : -1n) : v;
  if (typeof b !== "bigint" || b < 0n || b > U64_MAX) throw new InvalidArgumentError(`${what} must be an integer in [0, 2^64-1]`);
  return b;
}
