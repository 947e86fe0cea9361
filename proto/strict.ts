// The strict protobuf decoder used at the gRPC boundary (proto/rpc.ts
// serviceDefinition decodes every request with it). It checks the wire
// format against the message's schema (the protoc-gen-es descriptors, so a
// field added to a .proto is known without touching this file) before
// @bufbuild/protobuf builds the message:
//
// - every varint is at most 10 bytes and fits in 64 bits; a 32-bit field's
//   varint fits its type (int32/enum: sign-extended 32-bit, uint32: < 2^32);
// - every length fits in what is left of its buffer;
// - every tag is at most 5 bytes (a uint32 varint, as protobuf-es reads it),
//   every field number is in 1..2^29-1, every wire type is 0, 1, 2 or 5
//   (groups, 3 and 4, are refused: bkv's schema has none);
// - every field is one the schema knows, with the wire type its type uses
//   (a packed repeated scalar also as wire type 2);
// - every string field is valid UTF-8 (no replacement characters).
//
// Unknown fields are refused rather than skipped (docs/decisions.md: a field
// this node does not know may be a precondition a newer client relies on).
// Errors name the message, field and offset, never the payload's bytes.

import { fromBinary, ScalarType, type DescField, type DescMessage, type MessageShape } from "@bufbuild/protobuf";

/** Nesting deeper than this is refused (bkv's messages nest at most 4 deep). */
export const MAX_DEPTH = 32;

/** A body that is not a valid encoding of the expected message. */
export class DecodeError extends Error {
  override readonly name = "DecodeError";
}

/** Decodes `bytes` as `schema` after checking them strictly; throws DecodeError. */
export function decodeStrict<Desc extends DescMessage>(schema: Desc, bytes: Uint8Array): MessageShape<Desc> {
  checkMessage(schema, bytes, 0, bytes.length, 0);
  return fromBinary(schema, bytes);
}

const WIRE_VARINT = 0;
const WIRE_I64 = 1;
const WIRE_LEN = 2;
const WIRE_I32 = 5;
const MAX_FIELD_NUMBER = 2 ** 29 - 1;
/** A tag is a uint32 varint: protobuf-es refuses a longer encoding, even of a small value. */
const MAX_TAG_BYTES = 5;
/** Varints of at most this many bytes (values below 2^49) are read without BigInt. */
const FAST_VARINT_BYTES = 7;
const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
const fieldIndex = new WeakMap<DescMessage, Map<number, DescField>>();

function fieldsOf(schema: DescMessage): Map<number, DescField> {
  let m = fieldIndex.get(schema);
  if (m === undefined) {
    m = new Map(schema.fields.map((f) => [f.number, f]));
    fieldIndex.set(schema, m);
  }
  return m;
}

/** A cursor over bytes[pos, end). */
class Reader {
  constructor(readonly bytes: Uint8Array, public pos: number, readonly end: number, readonly where: string) {}

  fail(what: string): never {
    throw new DecodeError(`${this.where}: ${what} at byte ${this.pos}`);
  }

  /**
   * An unsigned varint of at most 10 bytes that fits in 64 bits: a number
   * when it ends within FAST_VARINT_BYTES bytes (below 2^49, exact in a
   * double), else a bigint from bigVarint, which makes the 64-bit checks.
   * Callers compare either with number constants (mixed comparisons are
   * exact): an overlong encoding of a small value (trailing 0x80 groups,
   * valid protobuf) is a bigint, not a refusal.
   */
  varint(): number | bigint {
    const start = this.pos;
    let v = 0;
    for (let i = 0, scale = 1; i < FAST_VARINT_BYTES; i++, scale *= 128) {
      if (this.pos >= this.end) this.fail("truncated varint");
      const b = this.bytes[this.pos++] as number;
      v += (b & 0x7f) * scale;
      if (b < 0x80) return v;
    }
    this.pos = start;
    return this.bigVarint();
  }

  private bigVarint(): bigint {
    let v = 0n;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.end) this.fail("truncated varint");
      const b = this.bytes[this.pos++] as number;
      if (i === 9 && b > 0x7f) this.fail("varint longer than 10 bytes");
      if (i === 9 && b > 1) this.fail("varint larger than 64 bits");
      v |= BigInt(b & 0x7f) << BigInt(7 * i);
      if ((b & 0x80) === 0) return v;
    }
    throw new Error("unreachable: the 10th byte ends every varint");
  }

  skip(n: number, what: string): number {
    if (n > this.end - this.pos) this.fail(`${what} runs past the end of the buffer`);
    const start = this.pos;
    this.pos += n;
    return start;
  }

  /** A length prefix that fits in what is left; returns the payload's start. */
  lengthDelimited(): { start: number; end: number } {
    const len = this.varint();
    if (len > this.end - this.pos) this.fail(`length ${len} runs past the end of the buffer`);
    const start = this.skip(Number(len), "length-delimited field");
    return { start, end: this.pos };
  }
}

function checkMessage(schema: DescMessage, bytes: Uint8Array, pos: number, end: number, depth: number): void {
  if (depth > MAX_DEPTH) throw new DecodeError(`${schema.typeName}: nested deeper than ${MAX_DEPTH}`);
  const r: Reader = new Reader(bytes, pos, end, schema.typeName);
  const fields = fieldsOf(schema);
  while (r.pos < r.end) {
    const { number, wireType } = readTag(r);
    const field = fields.get(number);
    if (field === undefined) r.fail(`unknown field ${number}`);
    if (field.fieldKind === "map") {
      if (wireType !== WIRE_LEN) r.fail(`field ${number} (${field.name}) is a map: wire type ${wireType}, want 2`);
      checkMapEntry(field, r, depth);
    } else {
      checkValue(expectOf(field), `field ${number} (${field.name})`, wireType, r, depth);
    }
  }
}

/** A tag of at most 5 bytes with a field number in 1..2^29-1 and a wire type of 0, 1, 2 or 5. */
function readTag(r: Reader): { number: number; wireType: number } {
  const start = r.pos;
  const raw = r.varint();
  // A tag of 2^32 or more has a field number of 2^29 or more: out of range (named exactly).
  if (raw > 0xffffffff) r.fail(`field number ${BigInt(raw) >> 3n} out of range 1..${MAX_FIELD_NUMBER}`);
  if (r.pos - start > MAX_TAG_BYTES) {
    r.pos = start;
    r.fail(`tag longer than ${MAX_TAG_BYTES} bytes`);
  }
  const tag = Number(raw);
  const number = tag >>> 3;
  const wireType = tag & 7;
  if (number < 1 || number > MAX_FIELD_NUMBER) r.fail(`field number ${number} out of range 1..${MAX_FIELD_NUMBER}`);
  if (wireType === 3 || wireType === 4) r.fail(`group (wire type ${wireType}) in field ${number}`);
  if (wireType !== WIRE_VARINT && wireType !== WIRE_I64 && wireType !== WIRE_LEN && wireType !== WIRE_I32) {
    r.fail(`invalid wire type ${wireType} in field ${number}`);
  }
  return { number, wireType };
}

/** What one field's wire value must look like. */
type Expect = { kind: "scalar"; scalar: ScalarType; packable: boolean } | { kind: "message"; message: DescMessage };

function expectOf(field: Exclude<DescField, { fieldKind: "map" }>): Expect {
  switch (field.fieldKind) {
    case "scalar":
      return { kind: "scalar", scalar: field.scalar, packable: false };
    case "enum":
      return { kind: "scalar", scalar: ScalarType.INT32, packable: false };
    case "message":
      return { kind: "message", message: field.message };
    case "list":
      if (field.listKind === "message") return { kind: "message", message: field.message };
      return { kind: "scalar", scalar: field.listKind === "enum" ? ScalarType.INT32 : field.scalar, packable: true };
  }
}

function checkValue(want: Expect, name: string, wireType: number, r: Reader, depth: number): void {
  if (want.kind === "message") {
    if (wireType !== WIRE_LEN) r.fail(`${name} is a message: wire type ${wireType}, want 2`);
    const { start, end } = r.lengthDelimited();
    checkMessage(want.message, r.bytes, start, end, depth + 1);
    return;
  }
  const natural = wireTypeOf(want.scalar);
  if (wireType === natural) {
    checkScalar(want.scalar, r, name);
  } else if (wireType === WIRE_LEN && want.packable) {
    const { start, end } = r.lengthDelimited();
    const packed: Reader = new Reader(r.bytes, start, end, r.where);
    while (packed.pos < packed.end) checkScalar(want.scalar, packed, name);
  } else {
    r.fail(`${name} has wire type ${wireType}, want ${natural}`);
  }
}

function wireTypeOf(t: ScalarType): number {
  switch (t) {
    case ScalarType.STRING:
    case ScalarType.BYTES:
      return WIRE_LEN;
    case ScalarType.DOUBLE:
    case ScalarType.FIXED64:
    case ScalarType.SFIXED64:
      return WIRE_I64;
    case ScalarType.FLOAT:
    case ScalarType.FIXED32:
    case ScalarType.SFIXED32:
      return WIRE_I32;
    default:
      return WIRE_VARINT;
  }
}

const TWO_32 = 2 ** 32;
const INT32_MAX = 2 ** 31 - 1;
const SIGN_EXTENDED_INT32_MIN = (1n << 64n) - (1n << 31n);

function checkScalar(t: ScalarType, r: Reader, name: string): void {
  switch (wireTypeOf(t)) {
    case WIRE_I64:
      r.skip(8, name);
      return;
    case WIRE_I32:
      r.skip(4, name);
      return;
    case WIRE_LEN: {
      const { start, end } = r.lengthDelimited();
      if (t === ScalarType.STRING) checkUtf8(r, start, end, name);
      return;
    }
  }
  const v = r.varint();
  if ((t === ScalarType.UINT32 || t === ScalarType.SINT32) && v >= TWO_32) r.fail(`${name}: value out of 32-bit range`);
  if (t === ScalarType.INT32 && v > INT32_MAX && v < SIGN_EXTENDED_INT32_MIN) r.fail(`${name}: value out of int32 range`);
}

function checkUtf8(r: Reader, start: number, end: number, name: string): void {
  try {
    utf8.decode(r.bytes.subarray(start, end));
  } catch {
    r.pos = start;
    r.fail(`${name} is not valid UTF-8`);
  }
}

/** A map field's entry: key (1) a scalar, value (2) a scalar, enum or message. */
function checkMapEntry(field: DescField & { fieldKind: "map" }, r: Reader, depth: number): void {
  const { start, end } = r.lengthDelimited();
  const entry: Reader = new Reader(r.bytes, start, end, `${r.where}.${field.name}`);
  const value: Expect = field.mapKind === "message" ? { kind: "message", message: field.message }
    : { kind: "scalar", scalar: field.mapKind === "enum" ? ScalarType.INT32 : field.scalar, packable: false };
  const parts = new Map<number, [string, Expect]>([
    [1, ["key", { kind: "scalar", scalar: field.mapKey, packable: false }]], [2, ["value", value]],
  ]);
  while (entry.pos < entry.end) {
    const { number, wireType } = readTag(entry);
    const part = parts.get(number);
    if (part === undefined) entry.fail(`unknown field ${number} in a map entry`);
    checkValue(part[1], part[0], wireType, entry, depth + 1);
  }
}
