// Shared checker vocabulary. Every checker is a pure function of the history
// (and, for some, the nodes' final state) to a CheckResult.
import type { NodeStateEvent } from "../history.js";

export interface Violation {
  checker: string;
  /** The record (user) or node concerned, when there is one. */
  subject?: string;
  description: string;
  /** History positions (Operation.index) of the operations involved. */
  ops?: number[];
}

export interface CheckResult {
  checker: string;
  valid: boolean;
  violations: Violation[];
  /** Non-violations worth reporting (inconclusive searches, possible counts). */
  notes: string[];
}

/** A record as read after healing (GetRecordInfo from a quorum), or null when absent. */
export interface FinalRecord {
  version: number;
  attemptsRemaining: number;
  locked: boolean;
}

export interface FinalState {
  /** Per node: applied index and state digest (hex), read after healing. */
  nodes: readonly Pick<NodeStateEvent, "node" | "appliedIndex" | "digest">[];
  /** Per user the workload touched: the record after healing, null when absent. */
  records: Readonly<Record<string, FinalRecord | null>>;
  /**
   * Per user: the outcome of the final recoveries with the possibly-current passwords, when the runner ran them.
   * "inconclusive": none opened but not every possible password could be tried without risking the lock.
   */
  finalRecoveries?: Readonly<Record<string, "ok" | "wrong-password" | "locked" | "not-found" | "unavailable" | "inconclusive">>;
  /** Node processes that ended by themselves during the run (absent: the target cannot tell, or a run before 2026-12-07). */
  unexpectedExits?: readonly UnexpectedExit[];
}

/** A node process that ended without the harness stopping it. */
export interface UnexpectedExit {
  node: number;
  /** "exited with code 1", "ended on SIGKILL". */
  how: string;
  /** Wall-clock time (ISO 8601). */
  at: string;
  /** The node's log file. */
  log: string;
}

export function result(checker: string, violations: Violation[], notes: string[] = []): CheckResult {
  return { checker, valid: violations.length === 0, violations, notes };
}
