// Structured JSON logs on stdout: one object per line with time, level, msg,
// node and fields. Callers pass only non-secret fields (ids, indexes, codes).
import type { LogLevel } from "./config.js";

const RANK: Readonly<Record<LogLevel, number>> = { debug: 10, info: 20, warn: 30, error: 40 };

export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
}

/**
 * `base` fields go on every line; `context()` adds fields read at each line
 * (the Raft term). A throwing context() is ignored.
 */
export function jsonLogger(
  level: LogLevel, base: Record<string, unknown>, context: () => Record<string, unknown> = () => ({}),
  out: (line: string) => void = (l) => process.stdout.write(l),
): Logger {
  const ctx = () => {
    try {
      return context();
    } catch {
      return {};
    }
  };
  const emit = (lvl: LogLevel) => (msg: string, fields: Record<string, unknown> = {}) => {
    if (RANK[lvl] < RANK[level]) return;
    out(`${JSON.stringify({ time: new Date().toISOString(), level: lvl, msg, ...base, ...ctx(), ...fields }, replacer)}\n`);
  };
  return { debug: emit("debug"), info: emit("info"), warn: emit("warn"), error: emit("error") };
}

/** Bytes are never logged (they could be secret-adjacent); bigints as strings. */
function replacer(_key: string, v: unknown): unknown {
  if (v instanceof Uint8Array) return `<${v.length} bytes>`;
  if (typeof v === "bigint") return v.toString();
  if (v instanceof Error) return { name: v.name, message: v.message };
  return v;
}
