// Capped exponential backoff with jitter, for reconnecting to a peer.

export interface BackoffOptions {
  /** First delay, in ms (before jitter). */
  readonly initialMs: number;
  /** Cap on the delay, in ms (before jitter). */
  readonly maxMs: number;
  /** Growth factor per consecutive failure (>= 1). */
  readonly multiplier: number;
}

export const DEFAULT_BACKOFF: BackoffOptions = { initialMs: 50, maxMs: 2000, multiplier: 2 };

export function validateBackoff(o: BackoffOptions): void {
  if (!(o.initialMs > 0 && o.maxMs >= o.initialMs && o.multiplier >= 1)) {
    throw new RangeError("backoff needs 0 < initialMs <= maxMs and multiplier >= 1");
  }
}

/**
 * Delays grow by `multiplier` per failure up to `maxMs`; each delay is drawn
 * uniformly from [d/2, d] ("equal jitter") so that nodes that lost a peer at
 * the same moment do not reconnect in lockstep. `reset()` after a success.
 */
export class Backoff {
  private failures = 0;

  constructor(
    private readonly options: BackoffOptions = DEFAULT_BACKOFF,
    private readonly random: () => number = Math.random,
  ) {
    validateBackoff(options);
  }

  /** The delay before the next attempt; counts one more failure. */
  next(): number {
    const { initialMs, maxMs, multiplier } = this.options;
    const d = Math.min(maxMs, initialMs * multiplier ** this.failures);
    this.failures = Math.min(this.failures + 1, 64);
    return d / 2 + this.random() * (d / 2);
  }

  reset(): void {
    this.failures = 0;
  }
}
