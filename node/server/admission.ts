// Admission limits of the client port: one token bucket per authenticated
// user and one per client address, in memory (rate-limiter-flexible's
// BurstyRateLimiter: a sustained rate per second plus a burst allowance
// refilled over BURST_WINDOW_SEC). Per node: a client spreading its calls
// over n nodes gets up to n times the rate, which is the point (each node
// protects its own HSM and its own share of the Raft log).
import { BurstyRateLimiter, RateLimiterMemory, RateLimiterRes } from "rate-limiter-flexible";
import type { LimitsConfig } from "./config.js";

/** The burst allowance refills over this many seconds. */
export const BURST_WINDOW_SEC = 10;

/** A call over an admission limit: RESOURCE_EXHAUSTED, retry after `retryAfterMs`. Mapped in errors.ts. */
export class AdmissionRefused extends Error {
  override readonly name = "AdmissionRefused";
  constructor(readonly scope: "user" | "address", readonly retryAfterMs: number) {
    super(`too many calls from this ${scope === "user" ? "user" : "client address"}: retry after ${retryAfterMs} ms`);
  }
}

function bucket(prefix: string, perSec: number, burst: number): BurstyRateLimiter {
  return new BurstyRateLimiter(
    new RateLimiterMemory({ keyPrefix: prefix, points: perSec, duration: 1 }),
    new RateLimiterMemory({ keyPrefix: `${prefix}-burst`, points: burst, duration: BURST_WINDOW_SEC }),
  );
}

export class Admission {
  private readonly users: BurstyRateLimiter;
  private readonly addresses: BurstyRateLimiter;

  constructor(limits: Pick<LimitsConfig, "userPerSec" | "userBurst" | "addressPerSec" | "addressBurst">) {
    this.users = bucket("user", limits.userPerSec, limits.userBurst);
    this.addresses = bucket("address", limits.addressPerSec, limits.addressBurst);
  }

  /** Takes one token of `host`'s bucket or throws AdmissionRefused. */
  address(host: string): Promise<void> {
    return take(this.addresses, host, "address");
  }

  /** Takes one token of `user`'s bucket or throws AdmissionRefused. */
  user(user: string): Promise<void> {
    return take(this.users, user, "user");
  }
}

async function take(limiter: BurstyRateLimiter, key: string, scope: AdmissionRefused["scope"]): Promise<void> {
  try {
    await limiter.consume(key);
  } catch (err) {
    if (err instanceof RateLimiterRes) throw new AdmissionRefused(scope, Math.max(1, Math.ceil(err.msBeforeNext)));
    throw err;
  }
}

/**
 * grpc-js server options of the client port: the message size cap, the
 * HTTP/2 concurrent stream cap, and keepalive: the server pings an idle
 * connection every 60 s and drops it when no answer comes within 20 s (a
 * vanished client does not hold a connection and its streams for ever);
 * clients may ping every 10 s at most, also between calls.
 */
export function clientPortOptions(limits: LimitsConfig): Record<string, number> {
  return {
    "grpc.max_receive_message_length": limits.maxMessageBytes,
    "grpc.max_concurrent_streams": limits.maxConcurrentStreams,
    "grpc.keepalive_time_ms": 60_000,
    "grpc.keepalive_timeout_ms": 20_000,
    "grpc.http2.min_ping_interval_without_data_ms": 10_000,
    "grpc.keepalive_permit_without_calls": 1,
  };
}
