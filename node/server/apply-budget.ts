// How many bytes of committed entries one Ready hands the loop to apply
// (RawNode.setMaxCommittedSizePerReady): as many as apply in about
// `targetMs`, by the apply cost per byte measured on recent Readies. Apply
// is synchronous on the event loop and its cost per byte differs by entry
// kind (a registration checks a token and decodes points; a begin does less)
// and with the CPU the machine gives the process, so a byte cap alone lets
// one Ready's apply stall the loop for tens of milliseconds.

/**
 * The Raft loop's budget: as many committed entries per Ready as apply in
 * about APPLY_MS_PER_READY, between 4 KiB and 32 KiB. Apply is synchronous:
 * a registration of ~0.7 KiB costs ~1.5 ms of CPU, a begin of ~0.4 KiB
 * ~0.5 ms, more on a busy machine; 32 KiB of registrations was one ~70 ms
 * turn (bench:scale's load-phase stall). 5 ms, not 10: with the loop's 8 ms
 * turns (raft-loop.ts DRAIN_TURN_MS), the load's per-second longest stall
 * fell by a quarter and throughput did not fall (docs/benchmarks.md,
 * "Shorter apply turns").
 */
export const APPLY_MS_PER_READY = 5;
export const APPLY_BYTES_PER_READY = { min: 4 * 1024, max: 32 * 1024 } as const;

export class ApplyBudget {
  /** Decayed sums of the apply time and bytes observed: their ratio is the recent cost per byte. */
  private ms = 0;
  private bytesSeen = 0;

  /** `minBytes` ≤ the budget ≤ `maxBytes`; the newest observation weighs 1, each older one DECAY times less. */
  constructor(private readonly targetMs: number, private readonly minBytes: number, private readonly maxBytes: number) {
    if (!(targetMs > 0) || !(minBytes >= 1) || !(maxBytes >= minBytes)) throw new Error(`ApplyBudget: bad bounds (${targetMs} ms, ${minBytes}..${maxBytes} B)`);
  }

  /** One Ready's apply: `bytes` of committed entries (as Raft counts them) in `ms`. */
  observe(bytes: number, ms: number): void {
    this.ms = this.ms * DECAY + ms;
    this.bytesSeen = this.bytesSeen * DECAY + bytes;
  }

  /** The bytes of committed entries the next Ready may hand out. */
  get bytes(): number {
    if (this.ms <= 0 || this.bytesSeen <= 0) return this.maxBytes;
    const fit = Math.floor(this.targetMs * this.bytesSeen / this.ms);
    return Math.min(this.maxBytes, Math.max(this.minBytes, fit));
  }
}

const DECAY = 0.8;
