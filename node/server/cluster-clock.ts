// The cluster's time, as a leader stamps it on the vault entries it appends
// (the throttling clock, and the time every node checks a token against on
// apply) and as the client port checks tokens: this node's clock, corrected
// by the median of the members' clocks when this node's is off.
//
// Why: the applied state's time never goes back (docs/vault.md §3), so one
// honest leader whose clock runs a day ahead would stamp a day ahead, and
// every token would then fail on apply for that day, on every node, even
// after its clock is fixed. A majority of members with sane clocks outvotes
// it. The peers' clocks are read every CLOCK_PROBE_MS from the HTTP `date`
// header of a cheap call on their peer port (whole seconds: differences
// under CLOCK_DEADBAND_MS are left alone). A median that includes this node
// at 0 needs a strict majority of the members' readings to move, so one
// peer with a bad clock cannot drag a sane node. Until the first round of
// readings has ended there is no cluster time: a leader then drops
// proposals rather than stamp a clock no peer confirmed (a stamp moves the
// state's time forward for good).
import type { NodeId } from "../raft/index.js";
import type { PeerClockSample } from "../transport/index.js";

export const CLOCK_PROBE_MS = 10_000;
/** A peer's reading older than this does not count. */
export const SAMPLE_MAX_AGE_MS = 60_000;
/** Corrections smaller than this are the `date` header's resolution and the round trip: ignored. */
export const CLOCK_DEADBAND_MS = 2_000;

export interface ClusterClockOptions {
  /** This node's wall clock (unix ms). */
  readonly now: () => number;
  /** The peers to read (every other member). */
  readonly peers: () => readonly NodeId[];
  /** One reading of a peer's clock; throws when the peer does not answer. */
  readonly probe: (id: NodeId) => Promise<PeerClockSample>;
  /** Called when the correction changes (0: none), with the new value in ms. */
  readonly onChange?: (offsetMs: number) => void;
}

export class ClusterClock {
  /** Each peer's latest offset (its clock minus this node's) and when it was read. */
  private readonly offsets = new Map<NodeId, { offsetMs: number; atMs: number }>();
  /** The correction in force: offsetMs() as of the last round of readings (rounds come every CLOCK_PROBE_MS). */
  private current = 0;
  /** The first round of readings has ended (answered or not). */
  private read = false;

  constructor(private readonly o: ClusterClockOptions) {}

  /** Records a reading: the peer's time at the answer is taken as its `date` second plus half a second, against the call's midpoint here. */
  record(id: NodeId, s: PeerClockSample): void {
    this.offsets.set(id, { offsetMs: s.peerMs + 500 - (s.sentMs + s.receivedMs) / 2, atMs: s.receivedMs });
  }

  /** The cluster's time minus this node's clock (ms): 0 unless a strict majority of fresh readings, this node's included, puts it past the dead band. */
  offsetMs(): number {
    const now = this.o.now();
    const peers = this.o.peers();
    const values = [0];
    for (const id of peers) {
      const x = this.offsets.get(id);
      if (x !== undefined && now - x.atMs <= SAMPLE_MAX_AGE_MS) values.push(x.offsetMs);
    }
    if (values.length * 2 <= peers.length + 1) return 0;
    const m = medianTowardZero(values.sort((a, b) => a - b));
    return Math.abs(m) < CLOCK_DEADBAND_MS ? 0 : Math.round(m);
  }

  /**
   * The cluster's time (unix ms); null until the first round of readings has
   * ended. On every stamp and token check, so it adds the correction the last
   * round computed rather than recomputing the median.
   */
  now(): number | null {
    return this.read ? this.o.now() + this.current : null;
  }

  /** Reads every peer once (an unreachable one keeps its last reading until it ages out), then reports a changed correction. */
  async probeAll(): Promise<void> {
    await Promise.all(this.o.peers().map(async (id) => {
      try {
        this.record(id, await this.o.probe(id));
      } catch {
        // Unreachable or refused: its last reading ages out.
      }
    }));
    this.read = true;
    const offset = this.offsetMs();
    if (offset !== this.current && Math.abs(offset - this.current) >= CLOCK_DEADBAND_MS / 2) {
      this.current = offset;
      this.o.onChange?.(offset);
    }
  }
}

/** The median of sorted `xs`; of an even count, the middle value nearer 0 (no correction without a strict majority). */
function medianTowardZero(xs: readonly number[]): number {
  const n = xs.length;
  if (n % 2 === 1) return xs[(n - 1) / 2]!;
  const [a, b] = [xs[n / 2 - 1]!, xs[n / 2]!];
  return Math.abs(a) <= Math.abs(b) ? a : b;
}
