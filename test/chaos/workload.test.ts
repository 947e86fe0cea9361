import test from "ava";
import { RecordLockedError, UnavailableError, WrongPasswordError } from "../../client/sdk/index.js";
import { classifyError } from "../../chaos/workload.js";

test("errors that prove no hidden effect are fail; the rest are info (unknown outcome)", (t) => {
  t.deepEqual(classifyError(new WrongPasswordError(3, true)), { type: "fail", value: { error: "WRONG_PASSWORD", attemptsRemaining: 3 } });
  const locked = classifyError(new RecordLockedError({ method: "confirmRecovery", address: "127.0.0.1:1", grpcCode: 9, serverMessage: "x", reason: "RECORD_LOCKED", attemptsRemaining: 0, leaderAddress: undefined }));
  t.is(locked.type, "fail");
  t.is(locked.value.error, "RECORD_LOCKED");
  t.is(locked.value.reason, "confirmRecovery:RECORD_LOCKED");
  t.like(classifyError(new UnavailableError("beginRecovery", 4, new Error("down"))), { type: "info", value: { error: "UNAVAILABLE" } });
  t.like(classifyError(new Error("boom")), { type: "info", value: { error: "Error" } });
});
