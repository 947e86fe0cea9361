// The chaos history: one JSON object per line (JSONL).
//
// A client operation is an `invoke` line followed (at most once) by its
// completion from the same process: `ok`, `fail` (it certainly did not take
// effect) or `info` (unknown outcome: it may or may not have taken effect, at
// any time after its invocation). A process runs one operation at a time.
// `time` is milliseconds since the run started, from a monotonic clock.
import fs from "node:fs";

export type OpName = "register" | "begin" | "evaluate" | "confirm" | "recover" | "change-password" | "delete" | "read-attempts";
export type Outcome = "ok" | "fail" | "info";

/** Op-specific values; every field optional. Never a password or key. */
export interface OpValue {
  attemptId?: number;
  attemptsRemaining?: number;
  /** Whether the workload used the record's current password. */
  passwordCorrect?: boolean;
  /** A recover that returned key material. */
  keyReleased?: boolean;
  /** A released key equals the key the workload registered. */
  keyMatches?: boolean;
  /** False when the SDK reported that the confirmation of a successful recovery failed (the attempt still counts). */
  confirmed?: boolean;
  /** The record version the operation saw or produced. */
  version?: number;
  guessLimit?: number;
  /** Error code (client/sdk ClientError.code or gRPC code name). */
  error?: string;
  /** The server's ErrorReason name, when the error came from a server status. */
  reason?: string;
  /** Sub-steps of a recover, known from the client: whether BeginRecovery answered. */
  beginCommitted?: boolean;
  node?: number;
  /** The workload's sequence number of the password the operation used (recover, change-password, delete); never the password. */
  passwordSeq?: number;
  /** The sequence number of the password a register or change-password sets. */
  setsPasswordSeq?: number;
  /**
   * Completion only: the code of every SDK warning (onWarning) raised during the
   * operation, in order (e.g. CONFIRM_SUPERSEDED, NEW_ATTEMPT). Absent in
   * histories recorded before warnings were.
   */
  warnings?: string[];
}

export interface OpEvent {
  type: "invoke" | Outcome;
  process: number;
  op: OpName;
  user: string;
  value?: OpValue;
  time: number;
}

export interface NemesisEvent {
  type: "nemesis";
  fault: string;
  target?: string;
  /** "start" or "end" of a fault window; a one-shot fault (kill) has only "start". */
  phase?: "start" | "end";
  time: number;
}

/** A node's final state after healing. */
export interface NodeStateEvent {
  type: "node-state";
  node: number;
  appliedIndex: number;
  digest: string;
  records?: Record<string, { version: number; attemptsRemaining: number; locked: boolean }>;
  time: number;
}

/** A leader observed (from node logs or the admin API). */
export interface LeaderEvent {
  type: "leader";
  node: number;
  term: number;
  time: number;
}

export type HistoryEvent = OpEvent | NemesisEvent | NodeStateEvent | LeaderEvent;

export class HistoryFormatError extends Error {
  constructor(readonly line: number, message: string) {
    super(`history line ${line}: ${message}`);
    this.name = "HistoryFormatError";
  }
}

const OP_NAMES = new Set<string>(["register", "begin", "evaluate", "confirm", "recover", "change-password", "delete", "read-attempts"]);
const TYPES = new Set<string>(["invoke", "ok", "fail", "info", "nemesis", "node-state", "leader"]);

/** Validates one parsed line; throws HistoryFormatError. */
export function validateEvent(v: unknown, line: number): HistoryEvent {
  if (typeof v !== "object" || v === null) throw new HistoryFormatError(line, "not an object");
  const e = v as Record<string, unknown>;
  if (typeof e.type !== "string" || !TYPES.has(e.type)) throw new HistoryFormatError(line, `unknown type ${JSON.stringify(e.type)}`);
  if (typeof e.time !== "number" || !Number.isFinite(e.time)) throw new HistoryFormatError(line, "time must be a number");
  if (e.type === "nemesis" && typeof e.fault !== "string") throw new HistoryFormatError(line, "nemesis without fault");
  if (e.type === "node-state" && (typeof e.node !== "number" || typeof e.digest !== "string" || typeof e.appliedIndex !== "number"))
    throw new HistoryFormatError(line, "node-state needs node, appliedIndex, digest");
  if (e.type === "leader" && (typeof e.node !== "number" || typeof e.term !== "number")) throw new HistoryFormatError(line, "leader needs node and term");
  if (["invoke", "ok", "fail", "info"].includes(e.type)) {
    if (typeof e.process !== "number") throw new HistoryFormatError(line, "process must be a number");
    if (typeof e.op !== "string" || !OP_NAMES.has(e.op)) throw new HistoryFormatError(line, `unknown op ${JSON.stringify(e.op)}`);
    if (typeof e.user !== "string") throw new HistoryFormatError(line, "user must be a string");
  }
  return e as unknown as HistoryEvent;
}

export function parseHistory(text: string): HistoryEvent[] {
  const out: HistoryEvent[] = [];
  text.split("\n").forEach((raw, i) => {
    if (raw.trim() === "") return;
    let v: unknown;
    try {
      v = JSON.parse(raw);
    } catch {
      throw new HistoryFormatError(i + 1, "not JSON");
    }
    out.push(validateEvent(v, i + 1));
  });
  return out;
}

export function readHistory(path: string): HistoryEvent[] {
  return parseHistory(fs.readFileSync(path, "utf8"));
}

/** A monotonic clock in ms since its creation. */
export function monotonicClock(): () => number {
  const start = process.hrtime.bigint();
  return () => Number(process.hrtime.bigint() - start) / 1e6;
}

/**
 * Appends events to a JSONL file, one synchronous write per event so that a
 * crash of the runner loses nothing already recorded. Also keeps them in memory.
 */
export class HistoryWriter {
  readonly events: HistoryEvent[] = [];
  private fd: number | null;

  constructor(path: string | null, readonly now: () => number = monotonicClock()) {
    this.fd = path === null ? null : fs.openSync(path, "a");
  }

  append(e: HistoryEvent): void {
    this.events.push(e);
    if (this.fd !== null) fs.writeSync(this.fd, JSON.stringify(e) + "\n");
  }

  invoke(process: number, op: OpName, user: string, value?: OpValue): void {
    this.append({ type: "invoke", process, op, user, ...(value ? { value } : {}), time: this.now() });
  }

  complete(type: Outcome, process: number, op: OpName, user: string, value?: OpValue): void {
    this.append({ type, process, op, user, ...(value ? { value } : {}), time: this.now() });
  }

  nemesis(fault: string, target?: string, phase?: "start" | "end"): void {
    this.append({ type: "nemesis", fault, ...(target !== undefined ? { target } : {}), ...(phase ? { phase } : {}), time: this.now() });
  }

  close(): void {
    if (this.fd !== null) fs.closeSync(this.fd);
    this.fd = null;
  }
}

/** A client operation with its invocation and completion paired. */
export interface Operation {
  process: number;
  op: OpName;
  user: string;
  invokeTime: number;
  /** Infinity when the outcome is unknown (`info` or no completion). */
  completeTime: number;
  outcome: Outcome;
  input: OpValue;
  output: OpValue;
  /** Position in the history, for stable reporting. */
  index: number;
}

/**
 * Pairs invoke and completion lines per process. An invocation never completed
 * is `info`. Throws on a completion without an invocation or a process that
 * invokes twice without completing (a broken recorder, not a cluster bug).
 */
export function pairOperations(events: readonly HistoryEvent[]): Operation[] {
  const open = new Map<number, Operation>();
  const ops: Operation[] = [];
  events.forEach((e, i) => {
    if (e.type !== "invoke" && e.type !== "ok" && e.type !== "fail" && e.type !== "info") return;
    if (e.type === "invoke") {
      if (open.has(e.process)) throw new HistoryFormatError(i + 1, `process ${e.process} invoked twice without completing`);
      const op: Operation = { process: e.process, op: e.op, user: e.user, invokeTime: e.time, completeTime: Infinity, outcome: "info", input: e.value ?? {}, output: {}, index: ops.length };
      open.set(e.process, op);
      ops.push(op);
      return;
    }
    const op = open.get(e.process);
    if (op === undefined || op.op !== e.op) throw new HistoryFormatError(i + 1, `completion of ${e.op} by process ${e.process} without an invocation`);
    open.delete(e.process);
    op.outcome = e.type;
    op.output = e.value ?? {};
    op.completeTime = e.type === "info" ? Infinity : e.time;
  });
  return ops;
}
