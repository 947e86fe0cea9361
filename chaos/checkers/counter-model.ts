// The sequential model of one record's attempt counter (DESIGN §5,
// docs/chaos.md "Attempt accounting") and the translation of client
// operations into its steps.
//
// The rule the state machine, the SDK and this model agree on:
// - every BeginRecovery that is answered with an attempt counts one attempt and
//   leaves that attempt pending; a BeginRecovery refused because the record
//   changed since the client read it (RECORD_CHANGED) counts nothing;
// - an applied confirmation of a pending attempt resets the counter to 0 and
//   supersedes every other pending attempt of the record; a confirmation of
//   an attempt that is no longer pending changes nothing (the SDK still
//   returns the key, with warning CONFIRM_SUPERSEDED);
// - a recovery superseded before it had its evaluations begins ONE fresh
//   attempt, after warning NEW_ATTEMPT: such an operation spent two attempts;
// - a delete removes the record with its pending attempts; a registration
//   after it is a new incarnation (version 1 again, nothing pending).
//
// Composite client operations are split into chained steps: recover =
// begin → confirm; change-password = begin → confirm → overwrite;
// delete = begin → confirm → delete; with NEW_ATTEMPT each starts
// begin → superseded → begin.
import type { Operation } from "../history.js";
import type { LinModel, LinOp } from "./linearizable.js";

export const DEFAULT_GUESS_LIMIT = 10;

export interface CounterState {
  present: boolean;
  version: number;
  attempts: number;
  locked: boolean;
  limit: number;
  /** Keys (attemptKey) of the attempts pending in this incarnation of the record, in begin order. */
  pending: readonly number[];
}

export const ABSENT: CounterState = { present: false, version: 0, attempts: 0, locked: false, limit: DEFAULT_GUESS_LIMIT, pending: [] };

export const counterModel: LinModel<CounterState> = {
  init: ABSENT,
  key: (s) => (s.present ? `${s.version}:${s.attempts}:${s.locked ? 1 : 0}:${s.limit}:${s.pending.join(",")}` : "-"),
};

export function remaining(s: CounterState): number {
  return s.locked ? 0 : s.limit - s.attempts;
}

/** The model's name of the `nth` (0 or 1) attempt an operation began. */
export function attemptKey(op: Operation, nth: number): number {
  return op.index * 2 + nth;
}

/** What a begin step observed; "any" for an unknown outcome. */
export type BeginSeen = { kind: "attempt"; remaining?: number } | { kind: "locked" } | { kind: "exhausted" } | { kind: "locked-or-exhausted" } | { kind: "not-found" } | { kind: "any" };

export function stepBegin(s: CounterState, seen: BeginSeen, key: number): CounterState | null {
  let next: CounterState;
  let got: "attempt" | "locked" | "exhausted" | "not-found";
  if (!s.present) [next, got] = [s, "not-found"];
  else if (s.locked) [next, got] = [s, "locked"];
  else if (s.attempts >= s.limit) [next, got] = [{ ...s, locked: true, pending: [] }, "exhausted"];
  else [next, got] = [{ ...s, attempts: s.attempts + 1, pending: [...s.pending, key] }, "attempt"];
  switch (seen.kind) {
    case "any":
      return next;
    case "attempt":
      return got === "attempt" && (seen.remaining === undefined || seen.remaining === remaining(next)) ? next : null;
    case "locked-or-exhausted":
      return got === "locked" || got === "exhausted" ? next : null;
    default:
      return got === seen.kind ? next : null;
  }
}

/**
 * What the client learned of its ConfirmRecovery: it committed, it was refused
 * as superseded, or either (the SDK did not say which: the state decides).
 */
export type ConfirmSeen = "committed" | "superseded" | "either";

/** A confirmation of attempt `key`: resets the counter and supersedes every pending attempt iff `key` is pending. */
export function stepConfirm(s: CounterState, key: number, seen: ConfirmSeen): CounterState | null {
  if (!s.present) return null;
  const pending = s.pending.includes(key);
  if (seen === "committed" && !pending) return null;
  if (seen === "superseded" && pending) return null;
  return pending ? { ...s, attempts: 0, pending: [] } : s;
}

/** The client learned that attempt `key` is no longer pending (its evaluations were refused as superseded). */
export function stepSuperseded(s: CounterState, key: number): CounterState | null {
  return s.pending.includes(key) ? null : s;
}

/**
 * A committed register/overwrite producing `version` ("next" = current + 1, unknown).
 * `limit` undefined keeps the current record's guess limit (a password change).
 */
export function stepRegister(s: CounterState, version: number | "next", limit: number | undefined): CounterState | null {
  const v = version === "next" ? (s.present ? s.version + 1 : 1) : version;
  const fits = v === 1 ? !s.present : s.present && s.version === v - 1;
  return fits ? { present: true, version: v, attempts: 0, locked: false, limit: limit ?? (s.present ? s.limit : DEFAULT_GUESS_LIMIT), pending: [] } : null;
}

export function stepDelete(s: CounterState): CounterState | null {
  return s.present ? ABSENT : null;
}

export interface ReadSeen {
  present: boolean;
  remaining?: number;
  version?: number;
  locked?: boolean;
}

export function stepRead(s: CounterState, seen: ReadSeen): CounterState | null {
  if (!seen.present) return s.present ? null : s;
  if (!s.present) return null;
  if (seen.remaining !== undefined && seen.remaining !== remaining(s)) return null;
  if (seen.version !== undefined && seen.version !== s.version) return null;
  if (seen.locked !== undefined && seen.locked !== s.locked) return null;
  return s;
}

/**
 * One model step of a client operation. `optional`: it may not have taken
 * effect even though the operation completed. `after`: the index of the step
 * it follows (default: the previous one).
 */
export type Step = { label: string; apply: (s: CounterState) => CounterState | null; optional?: boolean; after?: number };

/** The SDK warning codes of an operation, or undefined for a history recorded before they were. */
function warningsOf(op: Operation): readonly string[] | undefined {
  return op.output.warnings;
}

/** A BeginRecovery refused because the record changed since the client read it: no attempt was counted. */
export function refusedRecordChanged(op: Operation): boolean {
  return op.output.error === "RECORD_CHANGED" || (op.output.reason?.endsWith(":RECORD_CHANGED") ?? false);
}

/** Whether the operation began a second attempt (the SDK warned NEW_ATTEMPT before beginning it). */
export function beganNewAttempt(op: Operation): boolean {
  return warningsOf(op)?.includes("NEW_ATTEMPT") ?? false;
}

/** How the confirmation of an operation that opened the key is modelled, from its warnings (or, in older histories, `confirmed`). */
function confirmStep(op: Operation, key: number): Step {
  const label = (seen: ConfirmSeen, optional: boolean): Step => ({ label: `confirm(${seen}${optional ? "?" : ""})`, apply: (s) => stepConfirm(s, key, seen), ...(optional ? { optional } : {}) });
  if (op.outcome === "info") return label("either", true);
  const w = warningsOf(op);
  if (w === undefined) {
    // Recorded before warnings were: a recover says whether its own confirmation committed; delete and change-password do not.
    if (op.op !== "recover") return label("either", false);
    return op.output.confirmed === false ? label("either", true) : label("committed", false);
  }
  if (w.includes("CONFIRM_UNAVAILABLE")) return label("either", true);
  return label(w.includes("CONFIRM_SUPERSEDED") ? "superseded" : "committed", false);
}

/** The model steps of one client operation, or [] when it carries no information about the counter. */
export function stepsOf(op: Operation): Step[] {
  const b = new OpSteps(op);
  if (refusedRecordChanged(op)) return b.first();
  switch (op.op) {
    case "register":
      return b.register();
    case "begin":
      return b.ok ? [b.begin({ kind: "attempt", remaining: op.output.attemptsRemaining })] : b.info ? [b.begin({ kind: "any" })] : b.refused();
    case "evaluate":
      return [];
    case "confirm":
      // A bare ConfirmRecovery names no operation's attempt here: it confirms some pending one.
      return b.ok || b.info ? [{ label: "confirm", apply: (s) => (s.pending.length > 0 ? stepConfirm(s, s.pending[0]!, "committed") : null) }] : [];
    case "recover":
      if (b.info && op.input.passwordCorrect === false) return [...b.first(), b.begin({ kind: "any" })];
      return b.ok || b.info ? b.recovered([]) : b.failed();
    case "change-password":
      return b.ok || b.info ? b.recovered([b.reg(b.ok ? op.output.version ?? "next" : "next")]) : b.failed();
    case "delete":
      return b.ok || b.info ? b.recovered([{ label: "delete", apply: stepDelete }]) : b.failed();
    case "read-attempts":
      return readSteps(op);
  }
}

/** The step builders of one operation. */
class OpSteps {
  readonly ok: boolean;
  readonly info: boolean;
  /** The key of the attempt the outcome reports (the second one after NEW_ATTEMPT). */
  private readonly key: number;
  /** The RPC that failed, when recorded (value.reason "Method:REASON"): it places an observation precisely. */
  private readonly method: string | undefined;

  constructor(private readonly op: Operation) {
    this.ok = op.outcome === "ok";
    this.info = op.outcome === "info";
    this.key = attemptKey(op, beganNewAttempt(op) ? 1 : 0);
    this.method = op.output.reason?.split(":")[0];
  }

  begin(seen: BeginSeen, key = this.key): Step {
    return { label: `begin(${describeSeen(seen)})`, apply: (s) => stepBegin(s, seen, key) };
  }

  reg(v: number | "next"): Step {
    return { label: `register(v${v})`, apply: (s) => stepRegister(s, v, this.op.input.guessLimit) };
  }

  register(): Step[] {
    const { op } = this;
    if (this.ok) return [this.reg(op.output.version ?? op.input.version ?? 1)];
    if (this.info) return [this.reg(op.input.version ?? 1)];
    return op.output.error === "RECORD_EXISTS" ? [{ label: "register-exists", apply: (s) => (s.present ? s : null) }] : [];
  }

  /** With NEW_ATTEMPT: a first attempt, superseded before its evaluations, precedes the one the outcome reports. */
  first(): Step[] {
    if (!beganNewAttempt(this.op)) return [];
    const k0 = attemptKey(this.op, 0);
    return [this.begin(this.info ? { kind: "any" } : { kind: "attempt" }, k0), { label: "superseded", apply: (s) => stepSuperseded(s, k0) }];
  }

  /** An operation that opened the key (or may have): begin, confirm, then `tail`. */
  recovered(tail: Step[]): Step[] {
    const remaining = this.op.op === "recover" && this.ok ? this.op.output.attemptsRemaining : undefined;
    const steps = [...this.first(), this.begin(this.ok ? { kind: "attempt", remaining } : { kind: "any" }), confirmStep(this.op, this.key)];
    // A confirmation that may not have committed does not hold up what follows it.
    if (steps.at(-1)!.optional === true) return [...steps, ...tail.map((t, i) => (i === 0 ? { ...t, after: steps.length - 2 } : t))];
    return [...steps, ...tail];
  }

  /** A recover, change-password or delete that certainly failed. */
  failed(): Step[] {
    if (this.op.output.error !== "WRONG_PASSWORD") return this.refused();
    return [...this.first(), this.begin({ kind: "attempt", remaining: this.op.output.attemptsRemaining })];
  }

  /** Refused as not found or locked (anything else says nothing about the counter). */
  refused(): Step[] {
    const err = this.op.output.error;
    if (err === "RECORD_NOT_FOUND") return this.notFound();
    if (err !== "RECORD_LOCKED" && err !== "RESOURCE_EXHAUSTED" && err !== "FAILED_PRECONDITION") return this.first();
    const seenLocked: Step = { label: "read(locked)", apply: (s) => (s.present && s.locked ? s : null) };
    if (this.method === "GetRecordInfo") return [...this.first(), seenLocked];
    if (this.method === "ConfirmRecovery" || this.method === "Evaluate") return [...this.first(), this.begin({ kind: "attempt" }), seenLocked];
    return [...this.first(), this.begin({ kind: "locked-or-exhausted" })];
  }

  private notFound(): Step[] {
    const absent: Step = { label: "read(absent)", apply: (s) => stepRead(s, { present: false }) };
    switch (this.method) {
      case "Evaluate":
      case "ConfirmRecovery":
        return [...this.first(), this.begin({ kind: "attempt" }), absent];
      case "Delete":
      case "Register": // change-password's overwrite, after its recovery and confirmation
        return [...this.first(), this.begin({ kind: "attempt" }), confirmStep(this.op, this.key), absent];
      default:
        // GetRecordInfo or BeginRecovery; histories before 2026-12-04 do not say, and are read so.
        return [...this.first(), this.begin({ kind: "not-found" })];
    }
  }
}

/** A linearizable read (node-less read-attempts); node-local reads are checked apart (counters.ts). */
function readSteps(op: Operation): Step[] {
  if (op.outcome !== "ok" || op.output.node !== undefined) return [];
  if (op.output.error === "RECORD_NOT_FOUND") return [{ label: "read(absent)", apply: (s) => stepRead(s, { present: false }) }];
  return [{ label: `read(${op.output.attemptsRemaining})`, apply: (s) => stepRead(s, { present: true, remaining: op.output.attemptsRemaining, version: op.output.version }) }];
}

function describeSeen(seen: BeginSeen): string {
  return seen.kind === "attempt" && seen.remaining !== undefined ? `remaining=${seen.remaining}` : seen.kind;
}

/** Steps per operation at most (ids: op.index * STEP_SLOTS + step). */
const STEP_SLOTS = 8;

/** Translates one record's operations into chained linearizability ops. */
export function linOpsOf(ops: readonly Operation[]): { linOps: LinOp<CounterState>[]; origin: Map<number, Operation> } {
  const linOps: LinOp<CounterState>[] = [];
  const origin = new Map<number, Operation>();
  for (const op of ops) {
    const steps = stepsOf(op);
    if (steps.length > STEP_SLOTS) throw new Error(`counter model: ${steps.length} steps for one operation (at most ${STEP_SLOTS})`);
    const base = op.index * STEP_SLOTS;
    steps.forEach((step, i) => {
      const required = op.outcome !== "info" && step.optional !== true;
      const id = base + i;
      origin.set(id, op);
      const after = step.after ?? i - 1;
      linOps.push({
        id,
        invoke: op.invokeTime,
        complete: required ? op.completeTime : Infinity,
        required,
        ...(after >= 0 ? { after: base + after } : {}),
        apply: step.apply,
        label: `p${op.process} ${op.op}#${op.index}.${step.label}`,
      });
    });
  }
  return { linOps, origin };
}
