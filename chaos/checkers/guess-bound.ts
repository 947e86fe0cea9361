// Guess bound (DESIGN §6.1): between two confirmed recoveries a record
// authorizes at most guess_limit attempts; once locked it answers no attempt.
//
// Sound and conservative: only attempts that certainly committed are counted
// against the limit, inside time windows where no reset (confirmation,
// overwrite, delete — including ones of unknown outcome) can have taken effect.
// Attempts of unknown outcome are reported as "possibly authorized" in notes.
// The linearizability checker (counters) is the precise version of this check.
import type { HistoryEvent, Operation } from "../history.js";
import { DEFAULT_GUESS_LIMIT } from "./counter-model.js";
import { fmtOp, isDefiniteAttempt, isPossibleAttempt, mayReplace, mayReset, observedLock, opsByUser } from "./common.js";
import { result, type CheckResult, type Violation } from "./types.js";

const NAME = "guess-bound";

export function checkGuessBound(events: readonly HistoryEvent[], defaultLimit = DEFAULT_GUESS_LIMIT): CheckResult {
  const violations: Violation[] = [];
  const notes: string[] = [];
  for (const [user, ops] of opsByUser(events)) {
    const limit = guessLimitOf(ops, defaultLimit);
    violations.push(...overLimitWindows(user, ops, limit, notes));
    violations.push(...attemptsAfterLock(user, ops));
  }
  return result(NAME, violations, notes);
}

function guessLimitOf(ops: readonly Operation[], fallback: number): number {
  const reg = ops.find((o) => o.op === "register" && o.input.guessLimit !== undefined);
  return reg?.input.guessLimit ?? fallback;
}

/** Splits time at every interval where a reset may take effect; counts definite attempts wholly inside each gap. */
function overLimitWindows(user: string, ops: readonly Operation[], limit: number, notes: string[]): Violation[] {
  const resets = ops.filter(mayReset);
  const inSameEpoch = (a: Operation): number => {
    // The epoch of an attempt = the number of resets that certainly completed before it was invoked,
    // valid only if no reset interval overlaps the attempt.
    for (const r of resets) if (r !== a && r.invokeTime <= a.completeTime && a.invokeTime <= r.completeTime) return -1;
    return resets.filter((r) => r.completeTime < a.invokeTime).length;
  };
  const windows = new Map<number, Operation[]>();
  let possible = 0;
  for (const a of ops) {
    if (isPossibleAttempt(a)) possible++;
    if (!isDefiniteAttempt(a)) continue;
    const epoch = inSameEpoch(a);
    if (epoch < 0) continue;
    windows.set(epoch, [...(windows.get(epoch) ?? []), a]);
  }
  if (possible > 0) notes.push(`${user}: ${possible} attempt(s) of unknown outcome counted as possibly authorized`);
  const out: Violation[] = [];
  for (const [epoch, attempts] of windows) {
    if (attempts.length <= limit) continue;
    out.push({
      checker: NAME,
      subject: user,
      description: `record ${user}: ${attempts.length} attempts answered with no possible confirmation between them (epoch ${epoch}), guess limit ${limit}: ${attempts.map(fmtOp).join("; ")}`,
      ops: attempts.map((a) => a.index),
    });
  }
  return out;
}

/** Once a lock was observed, no attempt may be answered unless the record may have been replaced since. */
function attemptsAfterLock(user: string, ops: readonly Operation[]): Violation[] {
  const out: Violation[] = [];
  for (const lock of ops.filter(observedLock)) {
    for (const a of ops) {
      if (!isDefiniteAttempt(a) || a.invokeTime <= lock.completeTime) continue;
      const replaced = ops.some((r) => mayReplace(r) && r.invokeTime < a.completeTime && r.completeTime > lock.invokeTime);
      if (replaced) continue;
      out.push({ checker: NAME, subject: user, description: `record ${user}: attempt answered after the record was seen locked: lock ${fmtOp(lock)}, then ${fmtOp(a)}`, ops: [lock.index, a.index] });
    }
  }
  return out;
}
