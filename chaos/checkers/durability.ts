// Nothing acknowledged is lost (DESIGN §6.3): after healing, each record is in a
// state that the last acknowledged write, or a write that may have taken effect
// after it, explains. An acknowledged registration (register / change-password)
// at version v leaves the record present at version v (or a later possible
// write's); an acknowledged deletion leaves it absent (or a later possible
// register's). When the runner ran a final recovery with the last acknowledged
// password, an unlocked record must recover.
import type { HistoryEvent, Operation } from "../history.js";
import { fmtOp, opsByUser } from "./common.js";
import { result, type CheckResult, type FinalRecord, type FinalState, type Violation } from "./types.js";

const NAME = "durability";

type Effect = { present: false } | { present: true; version?: number };

function effectOf(op: Operation): Effect | null {
  if (op.op === "delete") return { present: false };
  if (op.op === "register" || op.op === "change-password") {
    const v = op.outcome === "ok" ? (op.output.version ?? op.input.version) : undefined;
    return v === undefined ? { present: true } : { present: true, version: v };
  }
  return null;
}

function explains(e: Effect, rec: FinalRecord | null): boolean {
  if (!e.present) return rec === null;
  return rec !== null && (e.version === undefined || e.version === rec.version);
}

export function checkDurability(events: readonly HistoryEvent[], final: FinalState): CheckResult {
  const violations: Violation[] = [];
  const notes: string[] = [];
  for (const [user, ops] of opsByUser(events)) {
    const writes = ops.filter((o) => effectOf(o) !== null && o.outcome !== "fail");
    const acked = writes.filter((o) => o.outcome === "ok");
    if (acked.length === 0) continue;
    const last = acked.reduce((a, b) => (b.completeTime > a.completeTime ? b : a));
    if (!(user in final.records)) {
      violations.push({ checker: NAME, subject: user, description: `record ${user}: no final read after healing, cannot check acknowledged ${fmtOp(last)}`, ops: [last.index] });
      continue;
    }
    const rec = final.records[user] ?? null;
    // Writes that may have been applied after `last`: anything not finished before it started.
    const candidates = [last, ...writes.filter((w) => w !== last && w.completeTime > last.invokeTime)];
    if (!candidates.some((w) => explains(effectOf(w)!, rec))) {
      const seen = rec === null ? "absent" : `present at version ${rec.version}`;
      violations.push({ checker: NAME, subject: user, description: `record ${user}: acknowledged ${fmtOp(last)} lost: after healing the record is ${seen}`, ops: candidates.map((c) => c.index) });
      continue;
    }
    const fr = final.finalRecoveries?.[user];
    if (fr === "inconclusive") notes.push(`${user}: final recovery inconclusive (more possible passwords than spare attempts)`);
    else if (fr !== undefined && rec !== null && !rec.locked && fr !== "ok")
      violations.push({ checker: NAME, subject: user, description: `record ${user}: present and unlocked at version ${rec.version} but the final recovery with the last acknowledged password answered ${fr}`, ops: [last.index] });
    if (fr === undefined && rec !== null && !rec.locked) notes.push(`${user}: no final recovery run`);
  }
  return result(NAME, violations, notes);
}
