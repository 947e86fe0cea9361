// The outcome encoding (node/vault/result.ts): every refusal carries its
// reason through the replicated request table and snapshots (format 2), and
// refusals written before reasons were recorded (format 1) still decode.
import test from "ava";
import { encodeLegacySnapshot } from "../../testkit/vault-store.js";
import { sha256 } from "@noble/hashes/sha2.js";
import { InvalidEncodingError, Writer } from "../../proto/crypto/index.js";
import {
  REASON_CODE,
  REFUSAL_REASONS,
  type VaultCode,
  type VaultReason,
  type VaultResult,
  VaultStateMachine,
  decodeResult,
  encodeResult,
  vaultError,
} from "../../node/vault/index.js";
import { CLUSTER, Harness, beginCmd, confirmCmd, expectError, hex, register, registerCmd } from "../../testkit/vault.js";

/** Format-1 code numbering, as the encoder before format 2 wrote it. */
const FORMAT_ONE_CODES: readonly VaultCode[] = ["INVALID_ARGUMENT", "NOT_FOUND", "ALREADY_EXISTS", "FAILED_PRECONDITION", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED"];

function formatOne(code: VaultCode, message: string, attemptsRemaining?: number): Uint8Array {
  const w = new Writer().u8(0x80).u8(FORMAT_ONE_CODES.indexOf(code)).str(message);
  return (attemptsRemaining === undefined ? w.u8(0) : w.u8(1).u16(attemptsRemaining)).bytes();
}

test("every refusal reason round-trips, with and without attempts remaining; its code follows from it", (t) => {
  t.is(REFUSAL_REASONS.length, new Set(REFUSAL_REASONS).size);
  for (const reason of REFUSAL_REASONS) {
    for (const remaining of [undefined, 0, 7, 255]) {
      const r = vaultError(reason, `refused: ${reason}`, remaining);
      t.is(r.code, REASON_CODE[reason]);
      const bytes = encodeResult(r);
      t.is(bytes[0], 0x81, "format 2");
      t.deepEqual(decodeResult(bytes), r, reason);
    }
  }
});

test("successful outcomes round-trip", (t) => {
  const ok: VaultResult[] = [
    { ok: true, kind: "register", version: 3, attemptsRemaining: 10, recordDigest: new Uint8Array(32).fill(7) },
    { ok: true, kind: "begin", attemptId: 2 ** 40, attemptsRemaining: 0, version: 1 },
    { ok: true, kind: "confirm", attemptsRemaining: 10 },
    { ok: true, kind: "delete" },
    { ok: true, kind: "announce" },
  ];
  for (const r of ok) t.deepEqual(decodeResult(encodeResult(r)), r);
});

test("golden bytes of a format-2 refusal (the reason numbering is frozen)", (t) => {
  t.is(hex(encodeResult(vaultError("ATTEMPT_NOT_FOUND", "x", 2))), "81" + "07" + "0001" + "78" + "01" + "0002");
  t.is(hex(encodeResult(vaultError("INVALID_ARGUMENT", ""))), "81" + "00" + "0000" + "00");
  t.is(hex(encodeResult(vaultError("NODE_ID_TAKEN", ""))), "81" + "09" + "0000" + "00");
});

test("format-1 refusals decode: the reason where the code determines it, else UNRECORDED", (t) => {
  // Bytes written by the encoder before format 2 (captured from it).
  t.deepEqual(decodeResult(Buffer.from("80030018617474656d70742037206973206e6f742070656e64696e67010002", "hex")), {
    ok: false, code: "FAILED_PRECONDITION", reason: "UNRECORDED", message: "attempt 7 is not pending", attemptsRemaining: 2,
  });
  t.deepEqual(decodeResult(Buffer.from("800100026e6f00", "hex")), { ok: false, code: "NOT_FOUND", reason: "RECORD_NOT_FOUND", message: "no" });
  const expected: Record<VaultCode, VaultReason> = {
    INVALID_ARGUMENT: "INVALID_ARGUMENT",
    NOT_FOUND: "RECORD_NOT_FOUND",
    ALREADY_EXISTS: "RECORD_EXISTS",
    FAILED_PRECONDITION: "UNRECORDED",
    PERMISSION_DENIED: "BAD_SIGNATURE",
    RESOURCE_EXHAUSTED: "GUESS_LIMIT_REACHED",
    UNAUTHENTICATED: "TOKEN_INVALID", // came after format 1: not in FORMAT_ONE_CODES
  };
  for (const code of FORMAT_ONE_CODES) {
    const r = decodeResult(formatOne(code, "old", 4));
    t.deepEqual(r, { ok: false, code, reason: expected[code], message: "old", attemptsRemaining: 4 }, code);
  }
});

test("an UNRECORDED refusal re-encodes to its format-1 bytes; a format-1 refusal with a known reason re-encodes as format 2", (t) => {
  const old = formatOne("FAILED_PRECONDITION", "the record moved on", 3);
  t.is(hex(encodeResult(decodeResult(old))), hex(old));
  const notFound = decodeResult(formatOne("NOT_FOUND", "no record"));
  const again = encodeResult(notFound);
  t.is(again[0], 0x81);
  t.deepEqual(decodeResult(again), notFound);
});

test("malformed outcomes are refused: unknown tag, reason or code, bad flag, truncation, trailing bytes", (t) => {
  const good = encodeResult(vaultError("BAD_SIGNATURE", "sig", 1));
  const bad: Array<[string, Uint8Array]> = [
    ["unknown tag", Uint8Array.of(0x82, ...good.subarray(1))],
    ["unknown reason", Uint8Array.of(0x81, REFUSAL_REASONS.length, 0, 0, 0)],
    ["unknown format-1 code", Uint8Array.of(0x80, 6, 0, 0, 0)],
    ["bad flag", Uint8Array.of(0x81, 0, 0, 0, 2)],
    ["bad format-1 flag", Uint8Array.of(0x80, 0, 0, 0, 2)],
    ["trailing byte", Uint8Array.of(...good, 0)],
    ["empty", new Uint8Array(0)],
  ];
  for (let len = 1; len < good.length; len++) bad.push([`truncated to ${len}`, good.subarray(0, len)]);
  for (const [what, bytes] of bad) t.throws(() => decodeResult(bytes), { instanceOf: InvalidEncodingError }, what);
});

test("refusals applied by the state machine are remembered with their reason", (t) => {
  const h = new Harness();
  const alice = register("alice", { guessLimit: 3 });
  h.result(registerCmd(alice));
  const stale = confirmCmd(alice, 999); // a valid signature for an attempt that was never begun
  expectError(t, h.result(stale), "FAILED_PRECONDITION", "ATTEMPT_NOT_FOUND");
  const restored = new Harness(VaultStateMachine.restore({ clusterId: CLUSTER }, h.sm.snapshot()));
  restored.index = h.index;
  expectError(t, restored.result(stale), "FAILED_PRECONDITION", "ATTEMPT_NOT_FOUND");
});

/**
 * A snapshot whose request table holds `from` (lp16) rewritten to `to`, with
 * its checksum recomputed: what an earlier node wrote (docs/vault.md §4).
 */
function rewriteOutcome(snapshot: Uint8Array, from: Uint8Array, to: Uint8Array): Uint8Array {
  const needle = hex(new Writer().lp16(from).bytes());
  const at = hex(snapshot).indexOf(needle);
  if (at < 0 || at % 2 !== 0 || hex(snapshot).indexOf(needle, at + 1) >= 0) throw new Error("outcome not found exactly once");
  const body = Buffer.concat([snapshot.subarray(0, at / 2), new Writer().lp16(to).bytes(), snapshot.subarray(at / 2 + needle.length / 2, snapshot.length - 32)]);
  return Uint8Array.from(Buffer.concat([body, sha256(body)]));
}

test("a snapshot holding format-1 outcomes restores, answers their retries, and keeps their bytes", (t) => {
  const h = new Harness();
  const alice = register("alice", { guessLimit: 3 });
  h.result(registerCmd(alice));
  const stale = confirmCmd(alice, 999);
  const refusedConfirm = h.result(stale);
  const missing = beginCmd("bob");
  const refusedBegin = h.result(missing);
  if (refusedConfirm.ok || refusedBegin.ok) return t.fail("both are refusals");
  let snap = encodeLegacySnapshot(h.sm);
  snap = rewriteOutcome(snap, encodeResult(refusedConfirm), formatOne("FAILED_PRECONDITION", refusedConfirm.message, refusedConfirm.attemptsRemaining));
  snap = rewriteOutcome(snap, encodeResult(refusedBegin), formatOne("NOT_FOUND", refusedBegin.message));

  const old = new Harness(VaultStateMachine.restore({ clusterId: CLUSTER }, snap));
  old.index = h.index;
  t.is(hex(encodeLegacySnapshot(old.sm)), hex(snap), "the stored outcomes are kept byte for byte");
  t.deepEqual(old.result(stale), { ...refusedConfirm, reason: "UNRECORDED" }, "the reason was not recorded: not guessed from the text");
  t.deepEqual(old.result(missing), refusedBegin, "NOT_FOUND determines RECORD_NOT_FOUND");
  t.is(old.sm.getRecord("alice")?.attempts, 0, "retries changed nothing");
});
