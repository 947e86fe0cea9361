// Counters never go back (DESIGN §6.4), checked two ways:
// 1. linearizability of each record's history (begin, confirm, overwrite,
//    delete, linearizable reads) against the sequential counter model;
// 2. per node, reads of one record's attempts never show more attempts left
//    than before unless a reset (confirmation, overwrite, delete) may have been
//    applied in between.
import type { HistoryEvent, Operation } from "../history.js";
import { fmtOp, mayReset, opsByUser } from "./common.js";
import { counterModel, linOpsOf } from "./counter-model.js";
import { checkLinearizable } from "./linearizable.js";
import { result, type CheckResult, type Violation } from "./types.js";

const NAME = "counters";

export interface CounterCheckOptions {
  /** Search nodes explored per record before giving up (reported as inconclusive, not a violation). */
  budget?: number;
}

export function checkCounters(events: readonly HistoryEvent[], opts: CounterCheckOptions = {}): CheckResult {
  const violations: Violation[] = [];
  const notes: string[] = [];
  for (const [user, ops] of opsByUser(events)) {
    const v = checkRecordLinearizable(user, ops, opts.budget ?? 500_000, notes);
    if (v) violations.push(v);
    violations.push(...nodeReadsGoBack(user, ops));
  }
  return result(NAME, violations, notes);
}

function checkRecordLinearizable(user: string, ops: readonly Operation[], budget: number, notes: string[]): Violation | null {
  const { linOps, origin } = linOpsOf(ops);
  const r = checkLinearizable(counterModel, linOps, budget);
  if (r.status === "ok") return null;
  if (r.status === "unknown") {
    notes.push(`${user}: linearizability search gave up after ${r.explored} states (inconclusive)`);
    return null;
  }
  const label = new Map(linOps.map((o) => [o.id, o.label]));
  const prefix = r.longestPrefix.map((id) => label.get(id)).join(" → ");
  const stuck = r.stuckAt.map((id) => fmtOp(origin.get(id)!) + ` (${label.get(id)})`).join("; ");
  return {
    checker: NAME,
    subject: user,
    description: `record ${user}: attempt-counter history is not linearizable. Longest valid order: ${prefix || "(empty)"}; cannot then place: ${stuck}`,
    ops: [...new Set(r.stuckAt.map((id) => origin.get(id)!.index))],
  };
}

/** Node-local reads (value.node set) must not show the counter going back without a possible reset. */
function nodeReadsGoBack(user: string, ops: readonly Operation[]): Violation[] {
  const reads = ops.filter((o) => o.op === "read-attempts" && o.outcome === "ok" && o.output.node !== undefined && o.output.attemptsRemaining !== undefined);
  const byNode = new Map<number, Operation[]>();
  for (const r of reads) byNode.set(r.output.node!, [...(byNode.get(r.output.node!) ?? []), r]);
  const resets = ops.filter(mayReset);
  const out: Violation[] = [];
  for (const [node, list] of byNode) {
    list.sort((a, b) => a.completeTime - b.completeTime);
    for (let i = 1; i < list.length; i++) {
      const [a, b] = [list[i - 1]!, list[i]!];
      if (b.invokeTime <= a.completeTime) continue; // concurrent reads: no order
      if (b.output.attemptsRemaining! <= a.output.attemptsRemaining!) continue;
      // A follower may apply a reset long after the client saw it acknowledged: any reset invoked before b completed explains b,
      // except a registration when both reads saw the same version and no deletion was possible (it would have changed the version).
      const sameVersion = a.output.version !== undefined && a.output.version === b.output.version && !ops.some((o) => o.op === "delete" && o.outcome !== "fail");
      if (resets.some((r) => r.invokeTime < b.completeTime && !(sameVersion && r.op === "register"))) continue;
      out.push({ checker: NAME, subject: user, description: `record ${user}: node ${node}'s attempts remaining went from ${a.output.attemptsRemaining} up to ${b.output.attemptsRemaining} with no confirmation or overwrite: ${fmtOp(a)}, then ${fmtOp(b)}`, ops: [a.index, b.index] });
    }
  }
  return out;
}
