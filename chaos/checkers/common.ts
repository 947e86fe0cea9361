import type { HistoryEvent, Operation } from "../history.js";
import { pairOperations } from "../history.js";

/** Operations grouped by user, in history order. */
export function opsByUser(events: readonly HistoryEvent[]): Map<string, Operation[]> {
  const by = new Map<string, Operation[]>();
  for (const op of pairOperations(events)) {
    const list = by.get(op.user) ?? [];
    list.push(op);
    by.set(op.user, list);
  }
  return by;
}

export function fmtOp(op: Operation): string {
  const end = op.completeTime === Infinity ? "?" : op.completeTime.toFixed(0);
  const v = { ...op.input, ...op.output };
  const parts = Object.entries(v).map(([k, x]) => `${k}=${String(x)}`);
  return `#${op.index} p${op.process} ${op.op} ${op.outcome} [${op.invokeTime.toFixed(0)}..${end}]${parts.length ? " " + parts.join(" ") : ""}`;
}

/** Operations that may have reset the attempt counter (confirm, overwrite, delete). */
export function mayReset(op: Operation): boolean {
  if (op.outcome === "fail") return false;
  switch (op.op) {
    case "confirm":
    case "change-password":
    case "delete":
    case "register":
      return true;
    case "recover":
      return op.input.passwordCorrect !== false;
    default:
      return false;
  }
}

/** Operations that may have replaced or removed the record (so a lock may be lifted). */
export function mayReplace(op: Operation): boolean {
  return op.outcome !== "fail" && (op.op === "register" || op.op === "change-password" || op.op === "delete");
}

/** An attempt the cluster certainly committed and answered (the client learned a verdict). */
export function isDefiniteAttempt(op: Operation): boolean {
  const wrong = op.outcome === "fail" && op.output.error === "WRONG_PASSWORD";
  if (op.op === "begin" || op.op === "recover" || op.op === "evaluate") return op.outcome === "ok" || wrong;
  return (op.op === "change-password" || op.op === "delete") && (op.outcome === "ok" || wrong);
}

export function isPossibleAttempt(op: Operation): boolean {
  return (op.op === "begin" || op.op === "recover" || op.op === "change-password" || op.op === "delete") && op.outcome === "info";
}

/** A completed observation that the record was locked at some point during the op. */
export function observedLock(op: Operation): boolean {
  return op.outcome === "fail" && (op.output.error === "RECORD_LOCKED" || op.output.error === "RESOURCE_EXHAUSTED");
}
