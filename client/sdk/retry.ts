// Retries with exponential backoff, full jitter and an overall deadline.
// The caller's `attempt` decides where each try goes; this module only
// decides whether and when to try again. A request id is fixed by the caller
// before the first try, so every retry carries the same one.
import { status } from "@grpc/grpc-js";
import { ClientError, RateLimitedError, RpcError, TransientError, UnavailableError } from "./errors.js";

export interface RetryPolicy {
  /** Give up (UnavailableError) when the next try would start after this many ms. */
  readonly deadlineMs: number;
  /** Deadline of each single call. */
  readonly callTimeoutMs: number;
  /** First backoff ceiling; doubles per try up to maxDelayMs. */
  readonly baseDelayMs: number;
  readonly maxDelayMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = { deadlineMs: 30_000, callTimeoutMs: 5_000, baseDelayMs: 50, maxDelayMs: 2_000 };

/** Reasons that say "not now, maybe elsewhere": worth another try. */
const TRANSIENT_REASONS = new Set(["NOT_LEADER", "NO_LEADER", "OVERLOADED", "ATTEMPT_NOT_APPLIED", "HSM_UNAVAILABLE"]);

/** Whether a failed call may succeed if tried again (with the same request id). */
export function isTransient(err: unknown): boolean {
  if (err instanceof TransientError) return true;
  if (err instanceof RpcError) {
    return err.grpcCode === status.UNAVAILABLE || err.grpcCode === status.DEADLINE_EXCEEDED || TRANSIENT_REASONS.has(err.reason);
  }
  // Anything that is not a typed answer from a server (a socket or TLS error
  // raised outside grpc-js's status path) is treated as a connection failure.
  return !(err instanceof ClientError);
}

/** Immediate retry (no sleep): the error named where to go next. */
export const REDIRECT = Symbol("redirect");

export interface RetryHooks {
  /** Called after each transient failure; return REDIRECT to retry at once. */
  onTransient?(err: unknown, tryNo: number): typeof REDIRECT | void;
  /** Injected for tests; defaults to setTimeout. */
  sleep?(ms: number): Promise<void>;
}

const MAX_CONSECUTIVE_REDIRECTS = 3;

/**
 * Runs `attempt` until it resolves, a non-transient error is thrown (passed
 * through unchanged), or the deadline passes (UnavailableError with the last
 * error). A RateLimitedError waits at least its retry-after, and is thrown
 * itself when that wait would pass the deadline.
 */
export async function withRetries<T>(operation: string, policy: RetryPolicy, attempt: (tryNo: number) => Promise<T>, hooks: RetryHooks = {}): Promise<T> {
  const sleep = hooks.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  const giveUpAt = Date.now() + policy.deadlineMs;
  let backoffs = 0;
  let redirects = 0;
  for (let tryNo = 1; ; tryNo++) {
    try {
      return await attempt(tryNo);
    } catch (err) {
      const limited = err instanceof RateLimitedError;
      if (!limited && !isTransient(err)) throw err;
      const redirect = !limited && hooks.onTransient?.(err, tryNo) === REDIRECT && redirects < MAX_CONSECUTIVE_REDIRECTS;
      const delay = redirect ? 0 : Math.max(limited ? err.retryAfterMs : 0, jitteredDelay(policy, backoffs++));
      redirects = redirect ? redirects + 1 : 0;
      if (Date.now() + delay >= giveUpAt) throw limited ? err : new UnavailableError(operation, tryNo, err);
      if (delay > 0) await sleep(delay);
    }
  }
}

/** Full jitter: uniform in [0, min(max, base·2^n)] (never 0 for the ceiling). */
export function jitteredDelay(policy: RetryPolicy, n: number): number {
  const ceiling = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** Math.min(n, 20));
  return Math.max(1, Math.floor(Math.random() * ceiling));
}
