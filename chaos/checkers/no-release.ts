// No release without the password (DESIGN §6.2): a recover (or evaluate) with a
// password that was never this user's never completes with key material, and a
// released key is the registered key. `passwordCorrect: false` is recorded by the
// workload only for passwords never used by any register/change-password of the user.
import type { HistoryEvent } from "../history.js";
import { pairOperations } from "../history.js";
import { fmtOp } from "./common.js";
import { result, type CheckResult, type Violation } from "./types.js";

const NAME = "no-release";

export function checkNoRelease(events: readonly HistoryEvent[]): CheckResult {
  const violations: Violation[] = [];
  for (const op of pairOperations(events)) {
    if ((op.op !== "recover" && op.op !== "evaluate") || op.outcome !== "ok") continue;
    const released = op.output.keyReleased !== false;
    if (released && op.input.passwordCorrect === false)
      violations.push({ checker: NAME, subject: op.user, description: `record ${op.user}: key released to a wrong password: ${fmtOp(op)}`, ops: [op.index] });
    if (released && op.output.keyMatches === false)
      violations.push({ checker: NAME, subject: op.user, description: `record ${op.user}: recovery returned a key other than the registered one: ${fmtOp(op)}`, ops: [op.index] });
  }
  return result(NAME, violations);
}
