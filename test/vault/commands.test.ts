import test from "ava";
import {
  G,
  InvalidArgumentError,
  InvalidEncodingError,
  ProtocolError,
  UnsupportedVersionError,
  Writer,
  encodePoint,
  encodeRecord,
} from "../../proto/crypto/index.js";
import { type Command, COMMAND_MAGIC, type VaultReason, VaultStateMachine, decodeCommand, encodeCommand, parseEnvelope } from "../../node/vault/index.js";
import {
  CLUSTER,
  Harness,
  NODES,
  announcement,
  beginCmd,
  blindedPoint,
  confirmCmd,
  deleteCmd,
  expectError,
  hex,
  newRequestId,
  register,
  registerCmd,
  contentDigest,
} from "../../testkit/vault.js";

const alice = register("alice", { guessLimit: 3 });
const overwrite = register("alice", { version: 2, previous: alice });

const samples: Command[] = [
  registerCmd(alice),
  registerCmd(overwrite),
  beginCmd("alice"),
  confirmCmd(alice, 42),
  deleteCmd(alice),
  { kind: "announce", node: announcement(NODES[0] as (typeof NODES)[number]) },
  beginCmd("ünïcødé 😀"),
];

/** A raw command frame: header, then the given parts verbatim (to forge what encodeCommand refuses). */
function frame(kind: number, ...parts: Uint8Array[]): Uint8Array {
  const w = new Writer().fixed(COMMAND_MAGIC).u8(1).u8(kind);
  for (const p of parts) w.fixed(p);
  return w.bytes();
}

function lp16(b: Uint8Array): Uint8Array {
  return new Writer().lp16(b).bytes();
}

function str(s: string): Uint8Array {
  return new Writer().str(s).bytes();
}

/** A register frame around raw record bytes. */
function rawRegister(recordBytes: Uint8Array, signature = new Uint8Array(0)): Uint8Array {
  return frame(1, newRequestId(), lp16(recordBytes), lp16(signature));
}

/** The record encoding of alice with one byte patched (offsets per record.ts encoding v1, user "alice"). */
function patchedRecord(offset: number, ...bytes: number[]): Uint8Array {
  const b = encodeRecord(alice.record);
  b.set(bytes, offset);
  return b;
}
const T_OFFSET = 4 + 1 + 2 + 5 + 4; // magic, format, lp16("alice"), version
const LIMIT_OFFSET = T_OFFSET + 2;
const FIRST_K_OFFSET = LIMIT_OFFSET + 1 + 2 + 8; // limit, share count, node id

/** 0x02 || x for the smallest x >= 1 that is not the x-coordinate of a P-256 point. */
function offCurvePoint(): Uint8Array {
  for (let x = 1; ; x++) {
    const b = new Uint8Array(33);
    b[0] = 0x02;
    b[32] = x;
    try {
      decodeCommand(encodeCommand(beginCmd("alice", b)));
    } catch (err) {
      if (err instanceof ProtocolError && err.code === "INVALID_POINT") return b;
    }
  }
}

test("every command round-trips through its canonical encoding", (t) => {
  for (const c of samples) {
    const bytes = encodeCommand(c);
    const back = decodeCommand(bytes);
    t.deepEqual(back, c, c.kind);
    t.is(hex(encodeCommand(back)), hex(bytes));
  }
});

test("parseEnvelope exposes the request id of a command whose body is refused", (t) => {
  const id = newRequestId();
  const env = parseEnvelope(frame(2, id, str("alice"), offCurvePoint()));
  t.is(hex(env.requestId ?? new Uint8Array()), hex(id));
  t.is(env.command, null);
  t.is(env.error?.code, "INVALID_POINT");
  const ann = parseEnvelope(encodeCommand(samples[5] as Command));
  t.is(ann.requestId, null);
  t.is(ann.command?.kind, "announce");
});

test("encodeCommand refuses invalid commands with typed errors", (t) => {
  const begin = beginCmd("alice");
  const confirm = confirmCmd(alice, 5);
  const bad: [string, Command][] = [
    ["short request id", { ...begin, requestId: new Uint8Array(15) }],
    ["empty user", { ...begin, user: "" }],
    ["long user", { ...begin, user: "x".repeat(257) }],
    ["B uncompressed", { ...begin, blinded: encodePoint(G.multiply(5n), false) }],
    ["B = -G", { ...begin, blinded: encodePoint(G.negate()) }],
    ["attempt id 0", { ...confirm, attemptId: 0 }],
    ["attempt id fractional", { ...confirm, attemptId: 1.5 }],
    ["version 0", { ...confirm, version: 0 }],
    ["short signature", { ...confirm, signature: new Uint8Array(63) }],
    ["guess limit 256", { ...registerCmd(alice), record: { ...alice.record, guessLimit: 256 } }],
    ["guess limit 0", { ...registerCmd(alice), record: { ...alice.record, guessLimit: 0 } }],
    ["t > n", { ...registerCmd(alice), record: { ...alice.record, threshold: 4 } }],
    ["new record with signature", { ...registerCmd(alice), ownerSignature: new Uint8Array(64) }],
    ["overwrite without signature", { ...registerCmd(overwrite), ownerSignature: new Uint8Array(0) }],
    ["unknown kind", { kind: "explode" } as unknown as Command],
  ];
  for (const [what, c] of bad) t.throws(() => encodeCommand(c), { instanceOf: ProtocolError }, what);
});

test("decodeCommand refuses every truncation, trailing bytes, bad magic, unknown version and kind", (t) => {
  for (const c of samples) {
    const bytes = encodeCommand(c);
    for (let len = 0; len < bytes.length; len++) {
      t.throws(() => decodeCommand(bytes.subarray(0, len)), { instanceOf: ProtocolError }, `${c.kind} cut at ${len}`);
    }
    t.throws(() => decodeCommand(Uint8Array.of(...bytes, 0)), { instanceOf: InvalidEncodingError });
  }
  const bytes = encodeCommand(beginCmd("alice"));
  const badMagic = bytes.slice();
  badMagic[0] = 0;
  t.throws(() => decodeCommand(badMagic), { instanceOf: InvalidEncodingError });
  const v2 = bytes.slice();
  v2[4] = 2;
  t.throws(() => decodeCommand(v2), { instanceOf: UnsupportedVersionError });
  for (const kind of [0, 6, 255]) {
    const k = bytes.slice();
    k[5] = kind;
    t.throws(() => decodeCommand(k), { instanceOf: InvalidEncodingError }, `kind ${kind}`);
  }
});

/** Applies raw bytes and checks: INVALID_ARGUMENT (with `reason`), and no change beyond the request-id table. */
function assertRefused(t: import("ava").ExecutionContext, h: Harness, bytes: Uint8Array, what: string, voters?: readonly number[], why?: RegExp, reason: VaultReason = "INVALID_ARGUMENT") {
  const before = hex(contentDigest(h.sm));
  const twin = VaultStateMachine.restore({ clusterId: CLUSTER }, h.sm.snapshot());
  const out = h.apply(bytes, voters);
  expectError(t, out.result, "INVALID_ARGUMENT", reason);
  if (why !== undefined) t.regex(out.result.ok ? "" : out.result.message, why, what);
  t.is(hex(contentDigest(h.sm)), before, `${what}: content unchanged`);
  if (out.requestId === null) {
    twin.skip(h.index);
    t.is(hex(h.sm.digest()), hex(twin.digest()), `${what}: nothing but the index moved`);
  }
}

test("every invalid field is refused on apply with INVALID_ARGUMENT and changes nothing", (t) => {
  const h = new Harness();
  h.result(registerCmd(alice));
  h.result(beginCmd("alice"));
  const offCurve = offCurvePoint();
  assertRefused(t, h, encodeCommand(registerCmd(register("bob"))), "share holder not a voter", [1, 2], /share holder 3 is not a voter/);
  assertRefused(t, h, rawRegister(patchedRecord(T_OFFSET, 0, 4)), "t > n", undefined, /threshold 4/);
  assertRefused(t, h, rawRegister(patchedRecord(T_OFFSET, 0, 0)), "t = 0", undefined, /threshold 0/);
  assertRefused(t, h, rawRegister(patchedRecord(LIMIT_OFFSET, 0)), "guess limit 0", undefined, /guess limit 0/);
  assertRefused(t, h, rawRegister(patchedRecord(FIRST_K_OFFSET, ...offCurve)), "K_i off the curve", undefined, /K_1 is not a valid P-256 point/);
  assertRefused(t, h, rawRegister(encodeRecord(alice.record), new Uint8Array(64)), "version 1 with a signature", undefined, /no owner signature/);
  assertRefused(t, h, frame(2, newRequestId(), str("alice"), offCurve), "B off the curve", undefined, /blinded element B is not a valid/);
  assertRefused(t, h, frame(2, newRequestId(), str("alice"), encodePoint(G.negate())), "B = -G", undefined, /B \+ G is the identity/);
  assertRefused(t, h, frame(2, newRequestId(), str("alice"), blindedPoint(3).subarray(0, 32)), "B of 32 bytes");
  assertRefused(t, h, frame(2, newRequestId(), str("alice"), Uint8Array.of(...blindedPoint(3), 1)), "B of 34 bytes");
  assertRefused(t, h, frame(2, newRequestId(), str(""), blindedPoint(3)), "empty user");
  const conf = confirmCmd(alice, 3);
  assertRefused(t, h, frame(3, newRequestId(), str("alice"), new Writer().u32(1).u64(0).bytes(), conf.signature), "attempt id 0");
  assertRefused(t, h, frame(3, newRequestId(), str("alice"), new Writer().u32(0).u64(3).bytes(), conf.signature), "version 0");
  assertRefused(t, h, frame(3, newRequestId(), str("alice"), new Writer().u32(1).u64(2n ** 60n).bytes(), conf.signature), "attempt id beyond 2^53");
  assertRefused(t, h, frame(4, newRequestId(), str("alice"), new Writer().u32(1).bytes(), conf.signature.subarray(0, 63)), "short signature");
  assertRefused(t, h, frame(0xfe, newRequestId()), "unknown command kind", undefined, /unknown vault command kind 254/);
  const good = encodeCommand(beginCmd("alice"));
  // From 22 bytes on the truncations carry the same request id: the first is remembered, the others reuse it.
  for (const len of [1, 4, 5, 6, 10, 22, 30, good.length - 1]) {
    assertRefused(t, h, good.subarray(0, len), `truncated to ${len}`, undefined, undefined, len > 22 ? "REQUEST_ID_REUSED" : "INVALID_ARGUMENT");
  }
  let seed = 7;
  for (let i = 0; i < 20; i++) {
    const junk = new Uint8Array(1 + (i * 37) % 200).map(() => (seed = (seed * 1103515245 + 12345) % 2147483648) & 0xff);
    assertRefused(t, h, junk, `garbage ${i}`);
    assertRefused(t, h, Uint8Array.of(...COMMAND_MAGIC, 1, 1 + (i % 5), ...junk), `garbage body ${i}`);
  }
  t.is(h.sm.getRecord("alice")?.attempts, 1);
});

test("validation errors name the field and are InvalidArgument-family ProtocolErrors", (t) => {
  const e1 = t.throws(() => encodeCommand({ ...beginCmd("alice"), requestId: new Uint8Array(3) }));
  t.regex(e1?.message ?? "", /request id/);
  const e2 = t.throws(() => encodeCommand({ ...registerCmd(alice), ownerSignature: new Uint8Array(64) }), { instanceOf: InvalidArgumentError });
  t.regex(e2?.message ?? "", /owner signature/);
});

test("golden encoding of a begin command (format v1 is frozen)", (t) => {
  const requestId = Uint8Array.from({ length: 16 }, (_, i) => i);
  const bytes = encodeCommand({ kind: "begin", requestId, user: "alice", blinded: encodePoint(G) });
  t.is(
    hex(bytes),
    "626b7643" + "01" + "02" + "000102030405060708090a0b0c0d0e0f" + "0005" + "616c696365" +
      "036b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c296",
  );
});

test("a retried begin that hit the limit answers RESOURCE_EXHAUSTED again and changes nothing", (t) => {
  const h = new Harness();
  const one = register("olga", { guessLimit: 1 });
  h.result(registerCmd(one));
  h.result(beginCmd("olga"));
  const over = beginCmd("olga");
  expectError(t, h.result(over), "RESOURCE_EXHAUSTED", "GUESS_LIMIT_REACHED");
  const locked = hex(contentDigest(h.sm));
  expectError(t, h.result(over), "RESOURCE_EXHAUSTED", "GUESS_LIMIT_REACHED");
  t.is(hex(contentDigest(h.sm)), locked);
  t.true(h.sm.getRecord("olga")?.locked);
});
