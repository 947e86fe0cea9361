// The one way a service handler runs: time the call, record its outcome
// (status name) for metrics, and map every failure to a status with
// ErrorDetail (errors.ts toServiceError).
import { type Metadata, status, type handleUnaryCall } from "@grpc/grpc-js";
import { type LeaderHint, toServiceError } from "./errors.js";
import type { Logger } from "./log.js";

export interface HandlerContext {
  readonly leaderHint: () => LeaderHint;
  readonly log: Logger;
  /** Records one call: its method, status name ("OK", "UNAVAILABLE", ...) and duration. */
  record(method: string, code: string, ms: number): void;
  /** Runs before the handler; a rejection is the call's failure (authentication, admission). */
  admit?(call: { getPeer(): string; metadata: Metadata; request: unknown }): Promise<void>;
}

/** The grpc-js status name of a failure, as toServiceError maps it. */
export function failureOf(ctx: HandlerContext, method: string, err: unknown) {
  const e = toServiceError(err, ctx.leaderHint, (x) => ctx.log.error("internal error", { method, error: x }));
  return { error: e, code: status[e.code ?? status.UNKNOWN] ?? "UNKNOWN" };
}

/** A unary handler from an async function of the request. */
export function unaryHandler(ctx: HandlerContext) {
  return <Req, Res>(method: string, f: (req: Req) => Promise<Res>): handleUnaryCall<Req, Res> => (call, callback) => {
    const t0 = performance.now();
    (ctx.admit === undefined ? f(call.request) : ctx.admit(call).then(() => f(call.request))).then(
      (res) => { ctx.record(method, "OK", performance.now() - t0); callback(null, res); },
      (err: unknown) => {
        const { error, code } = failureOf(ctx, method, err);
        ctx.record(method, code, performance.now() - t0);
        callback(error);
      },
    );
  };
}
