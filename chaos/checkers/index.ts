// Runs every checker over a history and the final state.
import type { HistoryEvent } from "../history.js";
import { checkCounters, type CounterCheckOptions } from "./counters.js";
import { checkDigests } from "./digests.js";
import { checkDurability } from "./durability.js";
import { checkGuessBound } from "./guess-bound.js";
import { checkLeaders, type LeaderLogOptions } from "./leaders.js";
import { checkNodeExits } from "./node-exits.js";
import { checkNoRelease } from "./no-release.js";
import { checkRightPassword } from "./right-password.js";
import { result, type CheckResult, type FinalState } from "./types.js";

export type { CheckResult, FinalState, FinalRecord, Violation } from "./types.js";
export { checkCounters, checkDigests, checkDurability, checkGuessBound, checkLeaders, checkNodeExits, checkNoRelease, checkRightPassword };

export interface CheckAllInput {
  events: readonly HistoryEvent[];
  final: FinalState;
  logs: ReadonlyMap<number, string>;
  guessLimit?: number;
  counters?: CounterCheckOptions;
  leaderLog?: LeaderLogOptions;
}

export function checkAll(i: CheckAllInput): CheckResult[] {
  return [
    checkGuessBound(i.events, i.guessLimit),
    checkNoRelease(i.events),
    checkRightPassword(i.events),
    checkDurability(i.events, i.final),
    checkCounters(i.events, i.counters),
    checkLeaders(i.events, i.logs, i.leaderLog),
    checkDigests(i.final),
    checkNodeExits(i.final),
  ];
}

/** Liveness after healing: `failure` says how the cluster failed to become ready again (a violation). */
export function checkRecovered(failure: string): CheckResult {
  return result("recovery", [{ checker: "recovery", description: failure }]);
}

/** The checkers that need the state after healing; a run interrupted before it has none. */
export const FINAL_STATE_CHECKERS: readonly string[] = ["durability", "digests", "node-exits"];

/**
 * The checkers that judge the history (and logs) alone, for a run interrupted before healing: every
 * operation without a completion counts as of unknown outcome, so what they report is a violation in
 * any continuation of the run.
 */
export function checkHistoryOnly(i: Omit<CheckAllInput, "final">): CheckResult[] {
  return [
    checkGuessBound(i.events, i.guessLimit),
    checkNoRelease(i.events),
    checkRightPassword(i.events),
    checkCounters(i.events, i.counters),
    checkLeaders(i.events, i.logs, i.leaderLog),
  ];
}
