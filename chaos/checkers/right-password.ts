// A right password never yields WRONG_PASSWORD (issue 9): a recover,
// change-password or delete that used the record's password is never
// answered "wrong password", whatever node served the record it read.
//
// Sound: an operation's password is certainly the record's only when the
// registration or password change S that set it was acknowledged before the
// operation was invoked, and no other registration, password change or
// deletion (of any outcome but a certain failure) may have taken effect
// between S and the operation's end. That the operation used S's password is
// known from the recorded password sequence numbers (passwordSeq,
// setsPasswordSeq); histories recorded before them say only passwordCorrect,
// which the workload set for the last acknowledged password (so, with no
// change since S, S's).
import type { HistoryEvent, Operation } from "../history.js";
import { fmtOp, mayReplace, opsByUser } from "./common.js";
import { result, type CheckResult, type Violation } from "./types.js";

const NAME = "right-password";

export function checkRightPassword(events: readonly HistoryEvent[]): CheckResult {
  const violations: Violation[] = [];
  for (const [user, ops] of opsByUser(events)) {
    for (const op of ops.filter(answeredWrongPassword)) {
      const setter = certainSetter(op, ops);
      if (setter === undefined || !usedPasswordOf(op, setter)) continue;
      violations.push({
        checker: NAME,
        subject: user,
        description: `record ${user}: the record's password was answered WRONG_PASSWORD: ${fmtOp(op)}; its password was set by ${fmtOp(setter)} with no change since`,
        ops: [setter.index, op.index],
      });
    }
  }
  return result(NAME, violations);
}

function answeredWrongPassword(op: Operation): boolean {
  return (op.op === "recover" || op.op === "change-password" || op.op === "delete") && op.outcome === "fail" && op.output.error === "WRONG_PASSWORD";
}

/** The acknowledged registration or password change whose password the record certainly had throughout `op`, if any. */
function certainSetter(op: Operation, ops: readonly Operation[]): Operation | undefined {
  const setters = ops.filter((s) => (s.op === "register" || s.op === "change-password") && s.outcome === "ok" && s.completeTime < op.invokeTime);
  const last = setters.reduce<Operation | undefined>((a, s) => (a === undefined || s.completeTime > a.completeTime ? s : a), undefined);
  if (last === undefined) return undefined;
  const changedSince = ops.some((r) => r !== last && r !== op && mayReplace(r) && r.completeTime > last.invokeTime && r.invokeTime < op.completeTime);
  return changedSince ? undefined : last;
}

function usedPasswordOf(op: Operation, setter: Operation): boolean {
  const used = op.input.passwordSeq;
  const set = setter.input.setsPasswordSeq;
  if (used !== undefined || set !== undefined) return used !== undefined && used === set;
  return op.input.passwordCorrect === true;
}
