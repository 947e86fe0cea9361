// The strict request decoder (proto/strict.ts), one rule at a time, and a
// property: on any bytes it returns a message or throws DecodeError, for
// every request type of every service.
import test from "ava";
import fc from "fast-check";
import { create, toBinary, type DescMessage } from "@bufbuild/protobuf";
import { DecodeError, decodeStrict } from "../../proto/strict.js";
import {
  BeginRecoveryRequestSchema, EvaluateRequestSchema, GetClusterDescriptorRequestSchema, GetRecordInfoRequestSchema,
  RegisterRequestSchema, VaultService,
} from "../../proto/gen/bkv/v1/vault_pb.js";
import { AdminService } from "../../proto/gen/bkv/v1/admin_pb.js";
import { RaftConfStateSchema, RaftService, StreamRequestSchema } from "../../proto/gen/bkv/v1/raft_pb.js";

const hex = (s: string) => Uint8Array.from(Buffer.from(s.replace(/\s/g, ""), "hex"));

function refuses(t: import("ava").ExecutionContext, schema: DescMessage, body: string, why: RegExp): void {
  const err = t.throws(() => decodeStrict(schema, hex(body)), { instanceOf: DecodeError }, body);
  t.regex(err?.message ?? "", why, body);
}

test("varints: at most 10 bytes, within 64 bits, not truncated", (t) => {
  refuses(t, EvaluateRequestSchema, "10 ffffffffffffffffff ff 01", /longer than 10 bytes/); // an 11-byte varint
  refuses(t, EvaluateRequestSchema, "10 ffffffffffffffffff 02", /larger than 64 bits/);
  refuses(t, EvaluateRequestSchema, "10 ff ff", /truncated varint/);
  refuses(t, EvaluateRequestSchema, "ff ff ff ff ff ff ff ff ff ff ff", /longer than 10 bytes/); // in the tag
  t.is(decodeStrict(EvaluateRequestSchema, hex("10 ffffffffffffffffff 01")).attemptId, (1n << 64n) - 1n);
});

test("lengths: within the buffer (a length of 2^63 is not read as 0)", (t) => {
  refuses(t, GetRecordInfoRequestSchema, "0a 05 61 62", /length 5 runs past the end/);
  refuses(t, GetRecordInfoRequestSchema, "0a 80808080808080808001", /length 9223372036854775808 runs past the end/);
  refuses(t, RegisterRequestSchema, "32 04 08 01 12 05 00", /length 5 runs past the end/); // inside a nested message
  refuses(t, RaftConfStateSchema, "0a 03 01 02", /length 3 runs past the end/); // a packed list
});

test("field numbers in 1..2^29-1; wire types 0, 1, 2, 5 only; no groups", (t) => {
  refuses(t, GetRecordInfoRequestSchema, "02 00", /field number 0 out of range/);
  refuses(t, GetRecordInfoRequestSchema, "80 80 80 80 10 00", /field number 536870912 out of range/);
  refuses(t, GetRecordInfoRequestSchema, "0f", /invalid wire type 7/);
  refuses(t, GetRecordInfoRequestSchema, "0e", /invalid wire type 6/);
  refuses(t, GetRecordInfoRequestSchema, "0b 0c", /group \(wire type 3\)/);
  refuses(t, GetRecordInfoRequestSchema, "0c", /group \(wire type 4\)/);
});

test("a known field must use its type's wire type (packed lists also length-delimited)", (t) => {
  refuses(t, GetRecordInfoRequestSchema, "08 01", /field 1 \(user_id\) has wire type 0, want 2/);
  refuses(t, EvaluateRequestSchema, "15 00000000", /field 2 \(attempt_id\) has wire type 5, want 0/);
  refuses(t, RegisterRequestSchema, "30 01", /field 6 \(shares\) is a message: wire type 0/);
  t.deepEqual(decodeStrict(RaftConfStateSchema, hex("0a 02 01 02 08 03")).voters, [1n, 2n, 3n]);
  refuses(t, RaftConfStateSchema, "0a 01 ff", /truncated varint/);
});

test("32-bit fields hold 32-bit values", (t) => {
  refuses(t, RegisterRequestSchema, "18 8080808010", /field 3 \(version\): value out of 32-bit range/);
  t.is(decodeStrict(RegisterRequestSchema, hex("18 ffffffff0f")).version, 0xffffffff);
});

test("unknown fields are refused, at any depth (garbage does not parse as unknown fields)", (t) => {
  refuses(t, GetClusterDescriptorRequestSchema, "10 01", /GetClusterDescriptorRequest: unknown field 2/);
  refuses(t, GetClusterDescriptorRequestSchema, "a2 06 00", /unknown field 100/);
  refuses(t, GetRecordInfoRequestSchema, "0a 01 61 18 01", /unknown field 3/);
  refuses(t, RegisterRequestSchema, "32 02 20 01", /NodeShare: unknown field 4/);
  t.deepEqual(decodeStrict(GetClusterDescriptorRequestSchema, new Uint8Array(0)), create(GetClusterDescriptorRequestSchema));
});

test("string fields are valid UTF-8", (t) => {
  refuses(t, GetRecordInfoRequestSchema, "0a 02 ff fe", /field 1 \(user_id\) is not valid UTF-8/);
  refuses(t, BeginRecoveryRequestSchema, "12 02 c0 80", /field 2 \(user_id\) is not valid UTF-8/); // overlong NUL
  refuses(t, GetRecordInfoRequestSchema, "0a 03 ed a0 80", /not valid UTF-8/); // a surrogate
  t.is(decodeStrict(GetRecordInfoRequestSchema, hex("0a 02 c3 a9")).userId, "é");
});

test("errors carry no payload bytes", (t) => {
  const err = t.throws(() => decodeStrict(GetRecordInfoRequestSchema, hex("0a 02 ff fe 12 03 73 65 63")));
  t.notRegex(err?.message ?? "", /ff|fe|sec|\\u/i);
});

const requestSchemas = [VaultService, AdminService, RaftService].flatMap((s) => s.methods.map((m) => m.input));

test("any bytes: a message or DecodeError, for every request type", (t) => {
  fc.assert(fc.property(fc.constantFrom(...requestSchemas), fc.uint8Array({ maxLength: 64 }), (schema, bytes) => {
    try {
      decodeStrict(schema, bytes);
    } catch (err) {
      if (!(err instanceof DecodeError)) throw err;
    }
  }), { numRuns: 5000 });
  t.pass();
});

test("every valid encoding decodes to the same message", (t) => {
  const reg = create(RegisterRequestSchema, {
    requestId: new Uint8Array(16), userId: "ünïcode", version: 1, threshold: 2, guessLimit: 10,
    shares: [{ nodeId: 1n, publicShare: new Uint8Array(33), wrappedShare: new Uint8Array(60) }],
    scryptParams: { n: 1024, r: 8, p: 1 },
  });
  t.deepEqual(decodeStrict(RegisterRequestSchema, toBinary(RegisterRequestSchema, reg)), reg);
  const frame = create(StreamRequestSchema, { frame: { case: "batch", value: { messages: [{ type: 8, from: 1n, to: 2n, entries: [{ index: 1n, data: new Uint8Array(3) }] }] } } });
  t.deepEqual(decodeStrict(StreamRequestSchema, toBinary(StreamRequestSchema, frame)), frame);
});
