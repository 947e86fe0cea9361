// proto/strict.ts reads varints of up to 7 bytes without BigInt and longer
// ones with it. These tests state the rules as the original BigInt reader
// applied them and check both paths against them at their edges: values at
// 2^31, 2^32, 2^49 (the switch), 2^53, 2^63, 2^64; overlong encodings
// (valid protobuf: trailing 0x80 groups) up to and past 10 bytes; in a
// uint64, a uint32 and an int32 field, a length prefix and a tag (at most 5
// bytes: protobuf-es reads it as a uint32).
import test from "ava";
import fc from "fast-check";
import type { DescMessage } from "@bufbuild/protobuf";
import { DecodeError, decodeStrict } from "../../proto/strict.js";
import { EvaluateRequestSchema, GetRecordInfoRequestSchema, RegisterRequestSchema } from "../../proto/gen/bkv/v1/vault_pb.js";
import { StatusSchema } from "../../proto/gen/bkv/v1/status_pb.js";

const TWO_64 = 1n << 64n;
const EDGES = [
  0n, 1n, 127n, 128n, 2n ** 31n - 1n, 2n ** 31n, 2n ** 32n - 1n, 2n ** 32n, 2n ** 49n - 1n, 2n ** 49n, 2n ** 53n - 1n,
  2n ** 53n, 2n ** 53n + 1n, 2n ** 63n - 1n, 2n ** 63n, TWO_64 - 2n ** 31n - 1n, TWO_64 - 2n ** 31n, TWO_64 - 1n,
];
const value = fc.oneof(fc.constantFrom(...EDGES), fc.bigInt({ min: 0n, max: TWO_64 - 1n }));
const padding = fc.integer({ min: 0, max: 10 });

/** The varint encoding of `v` followed by `pad` redundant zero groups (an overlong encoding when pad > 0). */
function varint(v: bigint, pad = 0): number[] {
  const out: number[] = [];
  do {
    out.push(Number(v & 0x7fn));
    v >>= 7n;
  } while (v > 0n);
  for (let i = 0; i < pad; i++) out.push(0);
  return out.map((b, i) => (i < out.length - 1 ? b | 0x80 : b));
}

function decodeOrWhy<D extends DescMessage>(schema: D, bytes: number[]): ReturnType<typeof decodeStrict<D>> | string {
  try {
    return decodeStrict(schema, Uint8Array.from(bytes));
  } catch (err) {
    if (!(err instanceof DecodeError)) throw err;
    return err.message;
  }
}

test("uint64: every value and every encoding of at most 10 bytes reads exactly; 11 bytes are refused", (t) => {
  fc.assert(fc.property(value, padding, (v, pad) => {
    const enc = varint(v, pad);
    const got = decodeOrWhy(EvaluateRequestSchema, [0x10, ...enc]);
    if (enc.length > 10) return typeof got === "string" && /varint longer than 10 bytes/.test(got);
    return typeof got !== "string" && got.attemptId === v;
  }), { numRuns: 3000 });
  t.regex(decodeOrWhy(EvaluateRequestSchema, [0x10, ...varint(TWO_64)]) as string, /varint larger than 64 bits/);
  t.regex(decodeOrWhy(EvaluateRequestSchema, [0x10, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80]) as string, /truncated varint at byte 9/);
  t.regex(decodeOrWhy(EvaluateRequestSchema, [0x10, 0x80, 0x80, 0x80]) as string, /truncated varint at byte 4/);
});

test("uint32: below 2^32 in any encoding, refused from 2^32 on", (t) => {
  fc.assert(fc.property(value, padding, (v, pad) => {
    const enc = varint(v, pad);
    fc.pre(enc.length <= 10);
    const got = decodeOrWhy(RegisterRequestSchema, [0x18, ...enc]);
    if (v >= 2n ** 32n) return typeof got === "string" && /field 3 \(version\): value out of 32-bit range/.test(got);
    return typeof got !== "string" && got.version === Number(v);
  }), { numRuns: 3000 });
  t.pass();
});

test("int32: 0..2^31-1 and the sign-extended negatives, in any encoding; the values between refused", (t) => {
  fc.assert(fc.property(value, padding, (v, pad) => {
    const enc = varint(v, pad);
    fc.pre(enc.length <= 10);
    const got = decodeOrWhy(StatusSchema, [0x08, ...enc]);
    if (v >= 2n ** 31n && v < TWO_64 - 2n ** 31n) return typeof got === "string" && /field 1 \(code\): value out of int32 range/.test(got);
    return typeof got !== "string" && got.code === Number(BigInt.asIntN(64, v));
  }), { numRuns: 3000 });
  t.pass();
});

test("lengths: an overlong length prefix reads; any length past the buffer is refused and named exactly", (t) => {
  for (let pad = 0; pad <= 8; pad++) {
    const got = decodeOrWhy(GetRecordInfoRequestSchema, [0x0a, ...varint(2n, pad), 0x61, 0x62]);
    t.is(typeof got === "string" ? got : got.userId, "ab", `pad ${pad}`);
  }
  for (const len of [3n, 2n ** 49n - 1n, 2n ** 49n, 2n ** 53n, 2n ** 53n + 1n, 2n ** 63n, TWO_64 - 1n]) {
    t.regex(decodeOrWhy(GetRecordInfoRequestSchema, [0x0a, ...varint(len), 0x61, 0x62]) as string, new RegExp(`length ${len} runs past the end`));
  }
});

test("tags: an overlong tag of up to 5 bytes reads; longer ones and field numbers from 2^29 on are refused", (t) => {
  for (let pad = 0; pad <= 4; pad++) {
    const got = decodeOrWhy(EvaluateRequestSchema, [...varint(0x10n, pad), 0x05]);
    t.is(typeof got === "string" ? got : got.attemptId, 5n, `pad ${pad}`);
  }
  // protobuf-es reads a tag as a uint32 varint and throws a plain Error past 5 bytes: refused before it, as a DecodeError.
  for (let pad = 5; pad <= 9; pad++) {
    t.regex(decodeOrWhy(EvaluateRequestSchema, [...varint(0x10n, pad), 0x05]) as string, /EvaluateRequest: tag longer than 5 bytes at byte 0/, `pad ${pad}`);
  }
  t.regex(decodeOrWhy(EvaluateRequestSchema, [0x10, 0x05, ...varint(0x10n, 6), 0x05]) as string, /tag longer than 5 bytes at byte 2/);
  t.regex(decodeOrWhy(EvaluateRequestSchema, [...varint(0x10n, 10), 0x05]) as string, /varint longer than 10 bytes/);
  t.regex(decodeOrWhy(EvaluateRequestSchema, [...varint(BigInt(2 ** 29 - 1) << 3n), 0x00]) as string, /unknown field 536870911/);
  for (const field of [2n ** 29n, 2n ** 32n, 2n ** 46n, 2n ** 50n, (TWO_64 - 1n) >> 3n]) {
    t.regex(decodeOrWhy(EvaluateRequestSchema, [...varint(field << 3n), 0x00]) as string, new RegExp(`field number ${field} out of range`));
  }
  t.regex(decodeOrWhy(EvaluateRequestSchema, varint(0n, 3)) as string, /field number 0 out of range/);
});
