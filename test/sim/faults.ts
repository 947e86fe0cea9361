// The fault schedule of a run: a per-seed fault profile (how lossy the
// network is, how often nodes crash, how often partitions happen) and the
// partition schedule that cuts and heals links over virtual time.

import type { NodeId } from "../../node/raft/types.js";
import type { Network, NetworkParams } from "./network.js";
import type { Prng } from "./prng.js";

export interface FaultProfile {
  /** An election storm (see stormProfile): also makes replication send one entry per message. */
  readonly storm: boolean;
  readonly net: NetworkParams;
  /** Per-tick probability that some node crashes. */
  readonly crashRate: number;
  /** Probability that a crash hits the current leader (when it can be lost). */
  readonly leaderCrashBias: number;
  /**
   * Probability that a newly elected leader crashes within a few ticks, before
   * its no-op is replicated: the schedule of the Raft paper's Figure 8.
   */
  readonly freshLeaderCrashRate: number;
  /** A crashed node stays down for [min, max] ticks. */
  readonly downtime: readonly [number, number];
  /** Per-tick probability that a partition starts (when none is active). */
  readonly partitionRate: number;
  /** A partition lasts [min, max] ticks. */
  readonly partitionLength: readonly [number, number];
  /** Per-tick probabilities of client actions. */
  readonly proposeRate: number;
  readonly readRate: number;
  readonly confChangeRate: number;
  readonly transferRate: number;
  /** A Ready's write completes 0..maxWriteDelay ticks after it started (0: within the tick, after the early sends). */
  readonly maxWriteDelay: number;
}

/**
 * Draws the profile of one seed: some seeds are calm, some hostile, one in
 * eight an election storm. `forceStorm` makes every seed a storm; it consumes
 * the same draws, so it changes nothing else about a seed.
 */
export function chooseProfile(rng: Prng, forceStorm = false): FaultProfile {
  const base = drawProfile(rng);
  const storm = rng.chance(1 / 8);
  return storm || forceStorm ? stormProfile(base, rng) : base;
}

/**
 * An election storm: fresh leaders crash within a few ticks, crashes aim at
 * the leader, nodes come back fast and replication sends one entry per
 * message. This leaves divergent uncommitted suffixes of several terms on
 * different nodes, the precondition of the Raft paper's Figure 8.
 */
function stormProfile(base: FaultProfile, rng: Prng): FaultProfile {
  return {
    ...base,
    storm: true,
    freshLeaderCrashRate: rng.pick([0.4, 0.6]),
    crashRate: 0.03,
    leaderCrashBias: 0.9,
    downtime: [1, 30],
    proposeRate: 0.6,
    partitionRate: 0.01,
  };
}

function drawProfile(rng: Prng): FaultProfile {
  const maxDelay = rng.pick([1, 2, 3, 5]);
  return {
    storm: false,
    net: {
      dropRate: rng.pick([0, 0.01, 0.05, 0.1, 0.2]),
      dupRate: rng.pick([0, 0.02, 0.1]),
      minDelay: 1,
      maxDelay,
      longDelayRate: rng.pick([0, 0.01, 0.05]),
      longDelay: maxDelay + rng.range(5, 30),
    },
    crashRate: rng.pick([0, 0.003, 0.01, 0.03, 0.06]),
    leaderCrashBias: rng.pick([0, 0.5, 0.9]),
    freshLeaderCrashRate: rng.pick([0, 0, 0.2, 0.5]),
    downtime: [rng.range(1, 10), rng.range(20, 120)],
    partitionRate: rng.pick([0, 0.005, 0.02]),
    partitionLength: [10, rng.range(30, 150)],
    proposeRate: rng.pick([0.1, 0.3, 0.6]),
    readRate: rng.pick([0, 0.05]),
    confChangeRate: rng.pick([0, 0.01, 0.03]),
    transferRate: rng.pick([0, 0.005, 0.02]),
    maxWriteDelay: rng.pick([0, 1, 2, 4]),
  };
}

export type PartitionKind = "isolate" | "split" | "one-way" | "bridge";

export interface ActivePartition {
  readonly kind: PartitionKind;
  readonly healAt: number;
  readonly description: string;
}

/**
 * Starts at most one partition at a time and heals it when it expires.
 *  - isolate: one node cut off both ways;
 *  - split: the nodes split into two random non-empty groups;
 *  - one-way: a random set of directed links cut (asymmetric);
 *  - bridge: two groups that only talk through one node in the middle.
 */
export class PartitionSchedule {
  active: ActivePartition | null = null;

  constructor(private readonly rng: Prng, private readonly profile: FaultProfile) {}

  /** Advances to time `now`; returns a line for the trace when something changed. */
  step(now: number, net: Network, nodes: readonly NodeId[]): string | null {
    if (this.active !== null) {
      if (now < this.active.healAt) return null;
      net.healAll();
      const was = this.active.description;
      this.active = null;
      return `heal (${was})`;
    }
    if (nodes.length < 2 || !this.rng.chance(this.profile.partitionRate)) return null;
    const kind = this.rng.pick<PartitionKind>(["isolate", "split", "one-way", "bridge"]);
    const description = this.cut(kind, net, nodes);
    const [lo, hi] = this.profile.partitionLength;
    this.active = { kind, healAt: now + this.rng.range(lo, hi), description };
    return `partition ${description}`;
  }

  /** Heals everything now. */
  healAll(net: Network): void {
    net.healAll();
    this.active = null;
  }

  private cut(kind: PartitionKind, net: Network, nodes: readonly NodeId[]): string {
    const shuffled = this.rng.shuffle([...nodes]);
    switch (kind) {
      case "isolate": {
        const x = shuffled[0]!;
        net.partition([x], shuffled.slice(1));
        return `isolate ${x}`;
      }
      case "split": {
        const k = this.rng.range(1, shuffled.length - 1);
        const a = shuffled.slice(0, k);
        const b = shuffled.slice(k);
        net.partition(a, b);
        return `split [${a.join(",")}] | [${b.join(",")}]`;
      }
      case "one-way": {
        const links: string[] = [];
        const n = this.rng.range(1, shuffled.length);
        for (let i = 0; i < n; i++) {
          const from = this.rng.pick(shuffled);
          const to = this.rng.pick(shuffled.filter((x) => x !== from));
          net.cutLink(from, to);
          links.push(`${from}->${to}`);
        }
        return `one-way ${links.join(" ")}`;
      }
      case "bridge": {
        if (shuffled.length < 3) return this.cut("isolate", net, nodes);
        const mid = shuffled[0]!;
        const rest = shuffled.slice(1);
        const k = this.rng.range(1, rest.length - 1);
        net.partition(rest.slice(0, k), rest.slice(k));
        return `bridge via ${mid}: [${rest.slice(0, k).join(",")}] | [${rest.slice(k).join(",")}]`;
      }
    }
  }
}
