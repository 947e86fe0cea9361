import test from "ava";
import { RecordLockedError, UnavailableError, WrongPasswordError } from "../../client/sdk/index.js";
import { classifyError, ownConfirmationCommitted } from "../../chaos/workload.js";

test("errors that prove no hidden effect are fail; the rest are info (unknown outcome)", (t) => {
  t.deepEqual(classifyError(new WrongPasswordError(3, true)), { type: "fail", value: { error: "WRONG_PASSWORD", attemptsRemaining: 3 } });
  const locked = classifyError(new RecordLockedError({ method: "confirmRecovery", address: "127.0.0.1:1", grpcCode: 9, serverMessage: "x", reason: "RECORD_LOCKED", attemptsRemaining: 0, leaderAddress: undefined }));
  t.is(locked.type, "fail");
  t.is(locked.value.error, "RECORD_LOCKED");
  t.is(locked.value.reason, "confirmRecovery:RECORD_LOCKED");
  t.like(classifyError(new UnavailableError("beginRecovery", 4, new Error("down"))), { type: "info", value: { error: "UNAVAILABLE" } });
  t.like(classifyError(new Error("boom")), { type: "info", value: { error: "Error" } });
});

test("a recovery's own confirmation committed unless the SDK warned, by code, that it did not", (t) => {
  t.true(ownConfirmationCommitted([]));
  t.false(ownConfirmationCommitted([{ code: "CONFIRM_UNAVAILABLE", message: "any text" }]));
  t.false(ownConfirmationCommitted([{ code: "CONFIRM_SUPERSEDED", message: "any text" }]));
  // Re-sharing warnings come after a committed confirmation.
  t.true(ownConfirmationCommitted([{ code: "RESHARE_FAILED", message: "the recovery could not be confirmed" }, { code: "RESHARE_STALE_DESCRIPTOR", message: "" }]));
  t.false(ownConfirmationCommitted([{ code: "RESHARE_FAILED", message: "" }, { code: "CONFIRM_SUPERSEDED", message: "" }]));
});
