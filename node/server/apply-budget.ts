// How many bytes of committed entries one Ready hands the loop to apply
// (RawNode.setMaxCommittedSizePerReady): as many as apply in about
// `targetMs`, by the apply cost per byte measured on recent Readies. Apply
// is synchronous on the event loop and its cost per byte differs by entry
// kind (a registration checks a token and decodes points; a begin does less)
// and with the CPU the machine gives the process, so a byte cap alone lets
// one Ready's apply stall the loop for tens of milliseconds.
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
