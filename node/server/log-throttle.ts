// Warn lines an unauthenticated caller can cause (an undecodable request, a
// call that ends before its request reaches the service), throttled: a
// flood of such calls must not become a flood of log lines (disk, the log
// pipeline). Each kind of line (a message and a key, such as the method) is
// written at most once per window; the next one written says how many it
// held back. Metrics count every one.
import type { Logger } from "./log.js";

export type Warn = (msg: string, key: string, fields: Record<string, unknown>) => void;

/**
 * A warn that writes each (`msg`, `key`) at most once per `windowMs`; a
 * written line carries `suppressed`, the lines of its kind held back since
 * the last. Keys must come from a bounded set (method names): one entry
 * each is kept.
 */
export function throttledWarn(log: Logger, windowMs: number, now: () => number = Date.now): Warn {
  const last = new Map<string, { at: number; held: number }>();
  return (msg, key, fields) => {
    const t = now();
    const kind = `${msg}\u0000${key}`;
    const seen = last.get(kind);
    if (seen !== undefined && t - seen.at < windowMs) {
      seen.held++;
      return;
    }
    const held = seen?.held ?? 0;
    last.set(kind, { at: t, held: 0 });
    log.warn(msg, held > 0 ? { ...fields, suppressed: held } : fields);
  };
}
