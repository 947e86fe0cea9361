// The sequential model of one record's attempt counter (DESIGN §5) and the
// translation of client operations into its steps.
//
// Composite client operations are split into chained steps: recover =
// begin → confirm; change-password = begin → confirm → overwrite;
// delete = begin → confirm → delete.
import type { Operation } from "../history.js";
import type { LinModel, LinOp } from "./linearizable.js";

export const DEFAULT_GUESS_LIMIT = 10;

export interface CounterState {
  present: boolean;
  version: number;
  attempts: number;
  locked: boolean;
  limit: number;
}

export const ABSENT: CounterState = { present: false, version: 0, attempts: 0, locked: false, limit: DEFAULT_GUESS_LIMIT };

export const counterModel: LinModel<CounterState> = {
  init: ABSENT,
  key: (s) => (s.present ? `${s.version}:${s.attempts}:${s.locked ? 1 : 0}:${s.limit}` : "-"),
};

export function remaining(s: CounterState): number {
  return s.locked ? 0 : s.limit - s.attempts;
}

/** What a begin step observed; "any" for an unknown outcome. */
export type BeginSeen = { kind: "attempt"; remaining?: number } | { kind: "locked" } | { kind: "exhausted" } | { kind: "locked-or-exhausted" } | { kind: "not-found" } | { kind: "any" };

export function stepBegin(s: CounterState, seen: BeginSeen): CounterState | null {
  let next: CounterState;
  let got: "attempt" | "locked" | "exhausted" | "not-found";
  if (!s.present) [next, got] = [s, "not-found"];
  else if (s.locked) [next, got] = [s, "locked"];
  else if (s.attempts >= s.limit) [next, got] = [{ ...s, locked: true }, "exhausted"];
  else [next, got] = [{ ...s, attempts: s.attempts + 1 }, "attempt"];
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

/** A committed confirmation: needs a pending attempt (attempts > 0) on a present record. */
export function stepConfirm(s: CounterState): CounterState | null {
  return s.present && s.attempts > 0 ? { ...s, attempts: 0 } : null;
}

/**
 * A committed register/overwrite producing `version` ("next" = current + 1, unknown).
 * `limit` undefined keeps the current record's guess limit (a password change).
 */
export function stepRegister(s: CounterState, version: number | "next", limit: number | undefined): CounterState | null {
  const v = version === "next" ? (s.present ? s.version + 1 : 1) : version;
  const fits = v === 1 ? !s.present : s.present && s.version === v - 1;
  return fits ? { present: true, version: v, attempts: 0, locked: false, limit: limit ?? (s.present ? s.limit : DEFAULT_GUESS_LIMIT) } : null;
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

/** `optional`: this step may not have taken effect even though the client operation completed ok. */
type Step = { label: string; apply: (s: CounterState) => CounterState | null; optional?: boolean };

/** The model steps of one client operation, or [] when it carries no information about the counter. */
export function stepsOf(op: Operation): Step[] {
  const ok = op.outcome === "ok";
  const info = op.outcome === "info";
  const err = op.output.error;
  const limit = op.input.guessLimit;
  const begin = (seen: BeginSeen): Step => ({ label: `begin(${describeSeen(seen)})`, apply: (s) => stepBegin(s, seen) });
  const confirm: Step = { label: "confirm", apply: stepConfirm };
  const reg = (v: number | "next"): Step => ({ label: `register(v${v})`, apply: (s) => stepRegister(s, v, limit) });
  const lockedSeen = (): Step[] => {
    if (err === "RECORD_NOT_FOUND") return [begin({ kind: "not-found" })];
    if (err !== "RECORD_LOCKED" && err !== "RESOURCE_EXHAUSTED" && err !== "FAILED_PRECONDITION") return [];
    // With the failing RPC known (value.reason "Method:REASON"), place the observation precisely.
    const method = op.output.reason?.split(":")[0];
    const seenLocked: Step = { label: "read(locked)", apply: (s) => (s.present && s.locked ? s : null) };
    if (method === "GetRecordInfo") return [seenLocked];
    if (method === "ConfirmRecovery" || method === "Evaluate") return [begin({ kind: "attempt" }), seenLocked];
    return [begin({ kind: "locked-or-exhausted" })];
  };
  switch (op.op) {
    case "register":
      if (ok) return [reg(op.output.version ?? op.input.version ?? 1)];
      if (info) return [reg(op.input.version ?? 1)];
      return err === "RECORD_EXISTS" ? [{ label: "register-exists", apply: (s) => (s.present ? s : null) }] : [];
    case "begin":
      if (ok) return [begin({ kind: "attempt", remaining: op.output.attemptsRemaining })];
      if (info) return [begin({ kind: "any" })];
      return lockedSeen();
    case "evaluate":
      return [];
    case "confirm":
      return ok || info ? [confirm] : [];
    case "recover":
      // The SDK returns the key even when the confirmation failed (a warning): then the confirm step is optional.
      if (ok) return [begin({ kind: "attempt", remaining: op.output.attemptsRemaining }), op.output.confirmed === false ? { ...confirm, optional: true } : confirm];
      if (info) return op.input.passwordCorrect === false ? [begin({ kind: "any" })] : [begin({ kind: "any" }), confirm];
      if (err === "WRONG_PASSWORD") return [begin({ kind: "attempt", remaining: op.output.attemptsRemaining })];
      return lockedSeen();
    case "change-password":
      if (ok) return [begin({ kind: "attempt" }), confirm, reg(op.output.version ?? "next")];
      if (info) return [begin({ kind: "any" }), confirm, reg("next")];
      if (err === "WRONG_PASSWORD") return [begin({ kind: "attempt", remaining: op.output.attemptsRemaining })];
      return lockedSeen();
    case "delete":
      if (ok || info) return [begin({ kind: ok ? "attempt" : "any" }), confirm, { label: "delete", apply: stepDelete }];
      if (err === "WRONG_PASSWORD") return [begin({ kind: "attempt", remaining: op.output.attemptsRemaining })];
      return lockedSeen();
    case "read-attempts":
      if (!ok || op.output.node !== undefined) return [];
      if (op.output.error === "RECORD_NOT_FOUND") return [{ label: "read(absent)", apply: (s) => stepRead(s, { present: false }) }];
      return [{ label: `read(${op.output.attemptsRemaining})`, apply: (s) => stepRead(s, { present: true, remaining: op.output.attemptsRemaining, version: op.output.version }) }];
  }
}

function describeSeen(seen: BeginSeen): string {
  return seen.kind === "attempt" && seen.remaining !== undefined ? `remaining=${seen.remaining}` : seen.kind;
}

/** Translates one record's operations into chained linearizability ops (ids: op.index*4 + step). */
export function linOpsOf(ops: readonly Operation[]): { linOps: LinOp<CounterState>[]; origin: Map<number, Operation> } {
  const linOps: LinOp<CounterState>[] = [];
  const origin = new Map<number, Operation>();
  for (const op of ops) {
    stepsOf(op).forEach((step, i) => {
      const required = op.outcome !== "info" && step.optional !== true;
      const id = op.index * 4 + i;
      origin.set(id, op);
      linOps.push({
        id,
        invoke: op.invokeTime,
        complete: required ? op.completeTime : Infinity,
        required,
        ...(i > 0 ? { after: id - 1 } : {}),
        apply: step.apply,
        label: `p${op.process} ${op.op}#${op.index}.${step.label}`,
      });
    });
  }
  return { linOps, origin };
}
