// The nemesis: seeded fault schedules (a pure function of the seed) and their
// execution against an executor that drives real processes and proxies.
//
// Faults run one at a time, each followed by its healing step, so that a
// majority is up between faults and the workload makes progress. A schedule
// is replayed exactly by passing the same seed, node count and duration; what
// it hits at run time (which node leads) depends on the run.
import type { HistoryWriter } from "./history.js";
import { describePartition, type PartitionSpec } from "./partitions.js";

/** Which node a fault hits: a fixed id, or chosen at run time. */
export type Target = { node: number } | { role: "leader" } | { role: "follower" };

/** Recovery phases a kill can be timed into (see docs/chaos.md for how each is detected). */
export type RecoveryPhase = "after-begin" | "between-evaluations" | "before-confirm";

export type Fault =
  | { kind: "kill"; target: Target; downMs: number }
  | { kind: "kill-minority"; downMs: number }
  | { kind: "pause"; target: Target; downMs: number }
  | { kind: "partition"; spec: PartitionSpec; downMs: number }
  | { kind: "latency"; ms: number; downMs: number }
  | { kind: "reset-links" }
  | { kind: "recovery-kill"; phase: RecoveryPhase; target: Target; downMs: number }
  | { kind: "snapshot-kill"; laggingMs: number; downMs: number };

export type FaultKind = Fault["kind"];

export interface ScheduledFault {
  /** Start, ms after the run started. */
  atMs: number;
  fault: Fault;
}

export interface ScheduleOptions {
  seed: string;
  nodes: readonly number[];
  durationMs: number;
  /** Mean quiet gap between the end of one fault and the next (default 1500 ms). */
  meanGapMs?: number;
  /**
   * The kinds the target can inject (default: every kind). The schedule contains only these; without this
   * option the schedule is exactly the one of earlier versions for the same seed.
   */
  kinds?: readonly FaultKind[];
}

/** A small deterministic PRNG (mulberry32) seeded by an FNV-1a hash of the seed text. */
export function seededRandom(seed: string): () => number {
  let h = 0x811c9dc5;
  for (let i = 0; i < seed.length; i++) h = Math.imul(h ^ seed.charCodeAt(i), 0x01000193);
  let a = h >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const pick = <T>(rnd: () => number, xs: readonly T[]): T => {
  if (xs.length === 0) throw new Error("pick from an empty list");
  return xs[Math.floor(rnd() * xs.length)]!;
};
const between = (rnd: () => number, lo: number, hi: number): number => Math.round(lo + rnd() * (hi - lo));

function shuffle<T>(rnd: () => number, xs: readonly T[]): T[] {
  const out = [...xs];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(rnd() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

function randomTarget(rnd: () => number, nodes: readonly number[]): Target {
  const r = rnd();
  return r < 0.4 ? { role: "leader" } : r < 0.6 ? { role: "follower" } : { node: pick(rnd, nodes) };
}

function randomPartition(rnd: () => number, nodes: readonly number[]): PartitionSpec {
  const s = shuffle(rnd, nodes);
  const minority = Math.floor((nodes.length - 1) / 2);
  switch (pick(rnd, ["isolate", "halves", "one-way", "bridge"] as const)) {
    case "isolate":
      return { kind: "isolate", node: s[0]! };
    case "halves":
      return { kind: "full", groups: [s.slice(0, minority), s.slice(minority)] };
    case "one-way":
      return { kind: "one-way", from: s.slice(0, 1), to: s.slice(1) };
    case "bridge": {
      const half = Math.floor((s.length - 1) / 2);
      return { kind: "bridge", bridge: s[0]!, left: s.slice(1, 1 + half), right: s.slice(1 + half) };
    }
  }
}

/** Kinds and their weights. Recovery-timed kills are frequent on purpose: they attack the weakest point. */
const KINDS: readonly [FaultKind, number][] = [
  ["kill", 3], ["kill-minority", 1], ["pause", 2], ["partition", 3], ["latency", 1], ["reset-links", 1], ["recovery-kill", 3], ["snapshot-kill", 1],
];

/** Every fault kind the nemesis knows. */
export const FAULT_KINDS: readonly FaultKind[] = KINDS.map(([k]) => k);

/** The weight table restricted to `kinds` (all of it when undefined). Throws on an unknown kind or an empty set. */
function kindTable(kinds: readonly FaultKind[] | undefined): readonly [FaultKind, number][] {
  if (kinds === undefined) return KINDS;
  for (const k of kinds) if (!FAULT_KINDS.includes(k)) throw new RangeError(`unknown fault kind ${JSON.stringify(k)}`);
  const table = KINDS.filter(([k]) => kinds.includes(k));
  if (table.length === 0) throw new RangeError("the nemesis needs at least one fault kind");
  return table;
}

function randomFault(rnd: () => number, nodes: readonly number[], table: readonly [FaultKind, number][]): Fault {
  const total = table.reduce((n, [, w]) => n + w, 0);
  let r = rnd() * total;
  let kind: FaultKind = table[0]![0];
  for (const [k, w] of table) if ((r -= w) < 0) { kind = k; break; }
  const downMs = between(rnd, 500, 3000);
  switch (kind) {
    case "kill": return { kind, target: randomTarget(rnd, nodes), downMs };
    case "kill-minority": return { kind, downMs };
    case "pause": return { kind, target: randomTarget(rnd, nodes), downMs };
    case "partition": return { kind, spec: randomPartition(rnd, nodes), downMs };
    case "latency": return { kind, ms: between(rnd, 20, 300), downMs };
    case "reset-links": return { kind };
    case "recovery-kill": return { kind, phase: pick(rnd, ["after-begin", "between-evaluations", "before-confirm"] as const), target: randomTarget(rnd, nodes), downMs };
    case "snapshot-kill": return { kind, laggingMs: between(rnd, 1000, 3000), downMs };
  }
}

/** The time a fault occupies before the next may start (its own healing included). */
export function faultSpanMs(f: Fault): number {
  switch (f.kind) {
    case "reset-links": return 0;
    case "snapshot-kill": return f.laggingMs + f.downMs;
    default: return f.downMs;
  }
}

/** A pure function of its options: the same seed gives the same schedule. */
export function generateSchedule(o: ScheduleOptions): ScheduledFault[] {
  if (o.nodes.length < 3) throw new RangeError("the nemesis needs at least 3 nodes");
  const table = kindTable(o.kinds);
  const rnd = seededRandom(`${o.seed}/${o.nodes.join(",")}/${o.durationMs}`);
  const gap = o.meanGapMs ?? 1500;
  const out: ScheduledFault[] = [];
  let t = between(rnd, 500, 1500);
  while (true) {
    const fault = randomFault(rnd, o.nodes, table);
    if (t + faultSpanMs(fault) > o.durationMs) break;
    out.push({ atMs: t, fault });
    t += faultSpanMs(fault) + between(rnd, gap / 2, gap * 1.5);
  }
  return out;
}

export function describeFault(f: Fault): string {
  const tgt = (t: Target): string => ("node" in t ? `node ${t.node}` : t.role);
  switch (f.kind) {
    case "kill": return `kill ${tgt(f.target)} for ${f.downMs} ms`;
    case "kill-minority": return `kill a minority for ${f.downMs} ms`;
    case "pause": return `pause ${tgt(f.target)} for ${f.downMs} ms`;
    case "partition": return `${describePartition(f.spec)} for ${f.downMs} ms`;
    case "latency": return `latency ${f.ms} ms on every link for ${f.downMs} ms`;
    case "reset-links": return "reset every peer connection";
    case "recovery-kill": return `kill ${tgt(f.target)} ${f.phase} of a recovery, down ${f.downMs} ms`;
    case "snapshot-kill": return `kill a follower, let it lag ${f.laggingMs} ms, kill it again during its snapshot install`;
  }
}

/** What the nemesis needs from the runner; implemented against real processes and proxies. */
export interface NemesisExecutor {
  readonly nodes: readonly number[];
  killNode(id: number): Promise<void>;
  restartNode(id: number): Promise<void>;
  pause(id: number): Promise<void>;
  resume(id: number): Promise<void>;
  partition(spec: PartitionSpec): Promise<void>;
  setLatency(ms: number): Promise<void>;
  resetLinks(): Promise<void>;
  /** Clears every network fault. */
  heal(): Promise<void>;
  /** The current leader, if one is known. */
  leader(): Promise<number | undefined>;
  /** Resolves when a workload recovery reaches `phase` (or undefined after timeoutMs). */
  waitRecoveryPhase(phase: RecoveryPhase, timeoutMs: number): Promise<string | undefined>;
  sleep(ms: number): Promise<void>;
}

async function resolveTarget(ex: NemesisExecutor, t: Target, rnd: () => number): Promise<number> {
  if ("node" in t) return t.node;
  const lead = await ex.leader();
  if (t.role === "leader" && lead !== undefined) return lead;
  const others = ex.nodes.filter((n) => n !== lead);
  return pick(rnd, others.length > 0 ? others : ex.nodes);
}

/** Executes one fault and its healing; records nemesis events. */
export async function runFault(ex: NemesisExecutor, f: Fault, h: HistoryWriter, rnd: () => number): Promise<void> {
  const desc = describeFault(f);
  switch (f.kind) {
    case "kill":
    case "recovery-kill": {
      if (f.kind === "recovery-kill") {
        const user = await ex.waitRecoveryPhase(f.phase, 5000);
        if (user === undefined) h.nemesis("recovery-kill-missed", f.phase);
      }
      const id = await resolveTarget(ex, f.target, rnd);
      h.nemesis(f.kind, `node-${id}`, "start");
      await ex.killNode(id);
      await ex.sleep(f.downMs);
      await ex.restartNode(id);
      h.nemesis(f.kind, `node-${id}`, "end");
      return;
    }
    case "kill-minority": {
      const ids = shuffle(rnd, ex.nodes).slice(0, Math.floor((ex.nodes.length - 1) / 2));
      h.nemesis(f.kind, ids.map((i) => `node-${i}`).join(","), "start");
      for (const id of ids) await ex.killNode(id);
      await ex.sleep(f.downMs);
      for (const id of ids) await ex.restartNode(id);
      h.nemesis(f.kind, undefined, "end");
      return;
    }
    case "pause": {
      const id = await resolveTarget(ex, f.target, rnd);
      h.nemesis("pause", `node-${id}`, "start");
      await ex.pause(id);
      await ex.sleep(f.downMs);
      await ex.resume(id);
      h.nemesis("pause", `node-${id}`, "end");
      return;
    }
    case "partition":
    case "latency": {
      h.nemesis(f.kind, desc, "start");
      if (f.kind === "partition") await ex.partition(f.spec);
      else await ex.setLatency(f.ms);
      await ex.sleep(f.downMs);
      await ex.heal();
      h.nemesis(f.kind, undefined, "end");
      return;
    }
    case "reset-links":
      h.nemesis("reset-links");
      await ex.resetLinks();
      return;
    case "snapshot-kill": {
      const id = await resolveTarget(ex, { role: "follower" }, rnd);
      h.nemesis("snapshot-kill", `node-${id}`, "start");
      await ex.killNode(id);
      await ex.sleep(f.laggingMs);
      await ex.restartNode(id);
      await ex.sleep(between(rnd, 50, 400));
      await ex.killNode(id);
      await ex.sleep(f.downMs);
      await ex.restartNode(id);
      h.nemesis("snapshot-kill", `node-${id}`, "end");
      return;
    }
  }
}

/** Runs a schedule until its end or until `stop()` is true; always heals at the end. */
export async function runSchedule(ex: NemesisExecutor, schedule: readonly ScheduledFault[], h: HistoryWriter, seed: string, stop: () => boolean): Promise<number> {
  const rnd = seededRandom(`${seed}/runtime`);
  let done = 0;
  for (const s of schedule) {
    if (stop()) break;
    const wait = s.atMs - h.now();
    if (wait > 0) await ex.sleep(wait);
    try {
      await runFault(ex, s.fault, h, rnd);
      done++;
    } catch (err) {
      // A fault that could not be injected is recorded, not fatal: the run goes on after healing.
      h.nemesis("nemesis-error", err instanceof Error ? err.message : String(err));
      for (const id of ex.nodes) {
        await ex.resume(id).catch(() => {});
        await ex.restartNode(id).catch(() => {});
      }
      await ex.heal();
    }
  }
  await ex.heal();
  h.nemesis("heal");
  return done;
}
