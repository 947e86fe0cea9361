// Canonical byte encoding used by every bkv v1 format: big-endian fixed-width
// integers, byte strings with a 2-byte length prefix (lp16), UTF-8 strings
// as lp16 byte strings. A Reader refuses truncation and trailing bytes.
import { InvalidArgumentError, InvalidEncodingError, InvalidLengthError } from "./errors.js";

const U64_MAX = (1n << 64n) - 1n;

/** Accumulates a canonical encoding. */
export class Writer {
  private readonly parts: Uint8Array[] = [];
  private size = 0;

  u8(v: number): this {
    return this.fixed(smallUintBytes(v, 1, "u8"));
  }
  u16(v: number): this {
    return this.fixed(smallUintBytes(v, 2, "u16"));
  }
  u32(v: number): this {
    return this.fixed(smallUintBytes(v, 4, "u32"));
  }
  u64(v: bigint | number): this {
    return this.fixed(typeof v === "number" && Number.isSafeInteger(v) && v >= 0 ? safeU64Bytes(v) : uintBytes(v, 8, "u64"));
  }
  /** Bytes written as they are (the reader must know the length). */
  fixed(b: Uint8Array): this {
    this.parts.push(b);
    this.size += b.length;
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
  bytes(): Uint8Array {
    const out = new Uint8Array(this.size);
    let off = 0;
    for (const p of this.parts) {
      out.set(p, off);
      off += p.length;
    }
    return out;
  }
}

/** Reads a canonical encoding; every read past the end throws InvalidEncodingError. */
export class Reader {
  private off = 0;
  constructor(
    private readonly buf: Uint8Array,
    private readonly what: string,
  ) {}

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
    const hi = this.uint(4);
    return (BigInt(hi) << 32n) | BigInt(this.uint(4));
  }
  /** The next len bytes, as a copy (callers may keep it: it does not alias the input). */
  fixed(len: number): Uint8Array {
    return this.buf.slice(this.off, this.advance(len));
  }
  /**
   * The next len bytes as a view of the input, without a copy: it aliases the
   * input and keeps all of it alive. Only for a caller that owns the input
   * and never changes it.
   */
  view(len: number): Uint8Array {
    return this.buf.subarray(this.off, this.advance(len));
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
  /** A big-endian unsigned integer of 1 to 4 bytes. */
  private uint(len: 1 | 2 | 4): number {
    const start = this.off;
    this.advance(len);
    let v = 0;
    for (let i = start; i < start + len; i++) v = v * 256 + (this.buf[i] as number);
    return v;
  }
}

// TextDecoder.decode without { stream: true } starts afresh on every call, so
// one decoder per semantics is shared (creating one per string was the main
// cost of decoding strings).
const STRICT_UTF8 = new TextDecoder("utf-8", { fatal: true });
const LENIENT_UTF8 = new TextDecoder();
const UTF8_ENCODER = new TextEncoder();

/** Big-endian bytes of a number that must be an integer in [0, 2^(8·len)). */
function smallUintBytes(v: number, len: 1 | 2 | 4, what: string): Uint8Array {
  if (!Number.isInteger(v) || v < 0 || v >= 2 ** (8 * len)) throw new InvalidArgumentError(`${String(v)} does not fit a ${what}`);
  const out = new Uint8Array(len);
  for (let i = len - 1; i >= 0; i--) {
    out[i] = v & 0xff;
    v = Math.floor(v / 256);
  }
  return out;
}

/** Big-endian 8 bytes of a safe non-negative integer. */
function safeU64Bytes(v: number): Uint8Array {
  const out = new Uint8Array(8);
  const view = new DataView(out.buffer);
  view.setUint32(0, Math.floor(v / 2 ** 32));
  view.setUint32(4, v >>> 0);
  return out;
}

function uintBytes(v: bigint | number, len: number, what: string): Uint8Array {
  const b = typeof v === "bigint" ? v : Number.isSafeInteger(v) ? BigInt(v) : -1n;
  if (b < 0n || b >= 1n << BigInt(8 * len)) throw new InvalidArgumentError(`${String(v)} does not fit a ${what}`);
  return bigIntToBytes(b, len);
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
