// The one way a service handler runs: time the call, record its outcome
// (status name) for metrics, and map every failure to a status with
// ErrorDetail (errors.ts toServiceError).
import { type Deadline, type Metadata, status, type handleUnaryCall } from "@grpc/grpc-js";
import { type LeaderHint, toServiceError } from "./errors.js";
import type { Logger } from "./log.js";
import type { TurnQueue } from "./turn-queue.js";

export interface HandlerContext {
  readonly leaderHint: () => LeaderHint;
  readonly log: Logger;
  /** Records one call: its method, status name ("OK", "UNAVAILABLE", ...) and duration. */
  record(method: string, code: string, ms: number): void;
  /** Runs before the handler; a rejection is the call's failure (authentication, admission). */
  admit?(call: { getPeer(): string; metadata: Metadata; request: unknown }): Promise<void>;
  /** When given, calls are admitted and started through it: in arrival order, with a time budget per event-loop turn. */
  turns?: TurnQueue;
}

/** A call whose caller went away (cancelled, or past its deadline) before its work started. */
class CallerGone extends Error {}

/** The grpc-js status name of a failure, as toServiceError maps it. */
export function failureOf(ctx: HandlerContext, method: string, err: unknown) {
  const e = toServiceError(err, ctx.leaderHint, (x) => ctx.log.error("internal error", { method, error: x }));
  return { error: e, code: status[e.code ?? status.UNKNOWN] ?? "UNKNOWN" };
}

/**
 * A unary handler from an async function of the request. The caller's
 * deadline and cancellation are honoured before work starts: a call whose
 * caller is gone (cancelled, or its deadline passed while it waited for
 * admission) proposes and evaluates nothing, and is counted as CANCELLED.
 * Work that started runs to its end (a proposal cannot be taken back); its
 * answer is then dropped by grpc-js.
 */
export function unaryHandler(ctx: HandlerContext) {
  return <Req, Res>(method: string, f: (req: Req, metadata: Metadata) => Promise<Res>): handleUnaryCall<Req, Res> => (call, callback) => {
    const t0 = performance.now();
    const run = () => (callerGone(call) ? Promise.reject(new CallerGone()) : f(call.request, call.metadata));
    const admit = () => ctx.admit?.(call) ?? Promise.resolve();
    (ctx.turns?.run(admit, run) ?? admit().then(run)).then(
      (res) => { ctx.record(method, "OK", performance.now() - t0); callback(null, res); },
      (err: unknown) => {
        if (err instanceof CallerGone) { ctx.record(method, "CANCELLED", performance.now() - t0); return; }
        const { error, code } = failureOf(ctx, method, err);
        ctx.record(method, code, performance.now() - t0);
        callback(error);
      },
    );
  };
}

/** True once the caller cancelled or its deadline (if any) passed. */
export function callerGone(call: { cancelled: boolean; getDeadline(): Deadline }): boolean {
  if (call.cancelled) return true;
  const d = call.getDeadline();
  const ms = d instanceof Date ? d.getTime() : d;
  return Number.isFinite(ms) && ms <= Date.now();
}
