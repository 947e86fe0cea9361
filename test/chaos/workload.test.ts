import test from "ava";
import { RecordLockedError, RecordNotFoundError, RpcError, UnavailableError, WrongPasswordError } from "../../client/sdk/index.js";
import { HistoryWriter } from "../../chaos/history.js";
import { Workload, classifyError, ownConfirmationCommitted } from "../../chaos/workload.js";

test("errors that prove no hidden effect are fail; the rest are info (unknown outcome)", (t) => {
  t.deepEqual(classifyError(new WrongPasswordError(3, true)), { type: "fail", value: { error: "WRONG_PASSWORD", attemptsRemaining: 3 } });
  const locked = classifyError(new RecordLockedError("confirmRecovery", "127.0.0.1:1"));
  t.is(locked.type, "fail");
  t.is(locked.value.error, "RECORD_LOCKED");
  t.is(locked.value.reason, "confirmRecovery:RECORD_LOCKED");
  t.like(classifyError(new UnavailableError("beginRecovery", 4, new Error("down"))), { type: "info", value: { error: "UNAVAILABLE" } });
  const gone = classifyError(new RecordNotFoundError({ method: "ConfirmRecovery", address: "127.0.0.1:1", grpcCode: 5, serverMessage: "x", reason: "RECORD_NOT_FOUND", attemptsRemaining: undefined, leaderAddress: undefined }));
  t.deepEqual(gone, { type: "fail", value: { error: "RECORD_NOT_FOUND", reason: "ConfirmRecovery:RECORD_NOT_FOUND" } }, "the method tells where the record was found absent");
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

test("a BeginRecovery refused because the record changed is fail (no attempt counted), kept with its reason", (t) => {
  const changed = new RpcError({ method: "beginRecovery", address: "127.0.0.1:1", grpcCode: 9, serverMessage: "x", reason: "RECORD_CHANGED", attemptsRemaining: undefined, leaderAddress: undefined });
  t.deepEqual(classifyError(changed), { type: "fail", value: { error: "RECORD_CHANGED", reason: "beginRecovery:RECORD_CHANGED" } });
});

test("every completion records the codes of the SDK warnings raised during its operation, and only those", async (t) => {
  const history = new HistoryWriter(null, () => 0);
  const w = new Workload({ history, users: [], clients: 1, guessLimit: 5, seed: "s", nodes: [], descriptor: undefined as never, readNode: () => Promise.resolve(null) });
  const sink = w.warningSink(1);
  await w.record(1, "recover", "u", {}, () => {
    sink({ code: "CONFIRM_SUPERSEDED", message: "a concurrent recovery confirmed first" });
    return Promise.resolve({ keyReleased: true });
  });
  await w.record(1, "delete", "u", {}, () => {
    sink({ code: "CONFIRM_UNAVAILABLE", message: "" });
    return Promise.reject(new WrongPasswordError(2, true));
  });
  await w.record(1, "recover", "u", {}, () => Promise.resolve({}));
  const completions = history.events.filter((e) => e.type !== "invoke").map((e) => (e.type === "ok" || e.type === "fail" ? e.value?.warnings : "?"));
  t.deepEqual(completions, [["CONFIRM_SUPERSEDED"], ["CONFIRM_UNAVAILABLE"], []]);
});
