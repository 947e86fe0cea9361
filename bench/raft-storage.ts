// Benchmark: proposal throughput and latency of an in-process 3-node Raft
// cluster (node/raft RawNode) where every node persists to its own DiskStorage
// (real WAL, real fdatasync) in its own temp directory. Messages are passed
// in process (no network). Latency = propose on the leader -> the leader
// applies the committed entry.
//
//   npx tsx bench/raft-storage.ts [--seconds 8] [--size 256] [--inflight 1,64]

import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { availableParallelism, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { type Message, type NodeId, RawNode, type Ready, ReadyDriver, StateType, bootstrapSnapshot } from "../node/raft/index.js";
import { DiskStorage } from "../node/storage/index.js";

const { values: args } = parseArgs({
  options: {
    seconds: { type: "string", default: "8" },
    size: { type: "string", default: "256" },
    inflight: { type: "string", default: "1,64" },
  },
});
const SECONDS = Number(args.seconds);
const SIZE = Number(args.size);
const WARMUP_MS = 1000;
const TICK_MS = 100;

interface BenchNode {
  id: NodeId;
  raw: RawNode;
  storage: DiskStorage;
  driver: ReadyDriver;
  /** The write the driver started last. */
  saving: Promise<void>;
  inbox: Message[];
  wake: (() => void) | null;
}

function mulberry32(seed: number): (n: number) => number {
  let a = seed >>> 0;
  return (n) => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) % n;
  };
}

class Cluster {
  readonly nodes = new Map<NodeId, BenchNode>();
  /** Proposal id -> propose time (ns), resolved when the leader applies it. */
  private readonly waiting = new Map<number, { start: bigint; done: (latencyNs: bigint) => void }>();
  private running = true;
  private loops: Promise<void>[] = [];
  private ticker: NodeJS.Timeout | undefined;

  static async create(ids: NodeId[], root: string): Promise<Cluster> {
    const c = new Cluster();
    for (const id of ids) {
      const storage = await DiskStorage.open(join(root, `n${id}`));
      await storage.saveSnapshot(bootstrapSnapshot(ids));
      const raw = new RawNode({ id, storage, electionTick: 10, heartbeatTick: 1, randomInt: mulberry32(id) });
      const n: Omit<BenchNode, "driver"> = { id, raw, storage, saving: Promise.resolve(), inbox: [], wake: null };
      c.nodes.set(id, Object.assign(n, { driver: c.driverOf(n) }));
    }
    for (const n of c.nodes.values()) c.loops.push(c.run(n));
    c.ticker = setInterval(() => c.forEach((n) => n.raw.tick()), TICK_MS);
    return c;
  }

  forEach(f: (n: BenchNode) => void): void {
    for (const n of this.nodes.values()) {
      f(n);
      this.poke(n);
    }
  }

  propose(leader: BenchNode, id: number): Promise<bigint> {
    const data = new Uint8Array(SIZE);
    new DataView(data.buffer).setFloat64(0, id);
    return new Promise((done) => {
      this.waiting.set(id, { start: process.hrtime.bigint(), done });
      leader.raw.propose(data);
      this.poke(leader);
    });
  }

  async stop(): Promise<void> {
    this.running = false;
    clearInterval(this.ticker);
    this.forEach(() => {});
    await Promise.all(this.loops);
    for (const n of this.nodes.values()) await n.storage.close();
  }

  private poke(n: BenchNode): void {
    const w = n.wake;
    n.wake = null;
    w?.();
  }

  /** A node's Ready loop (node/raft's ReadyDriver, as the server's): DiskStorage writes, in-process sends. */
  private driverOf(n: Omit<BenchNode, "driver">): ReadyDriver {
    return new ReadyDriver(n.raw, n.storage, {
      write: (rd) => { n.saving = n.storage.save({ hardState: rd.hardState, entries: rd.entries, snapshot: rd.snapshot, mustSync: rd.mustSync }); },
      send: (msgs) => this.send(msgs),
      apply: (rd) => this.apply(n.raw, rd),
    });
  }

  /** Steps the inbox, then handles one Ready at a time: start its write, await it, finish it. */
  private async run(n: BenchNode): Promise<void> {
    while (this.running) {
      for (const m of n.inbox.splice(0)) n.raw.step(m);
      if (!n.driver.next()) {
        await new Promise<void>((r) => (n.wake = r));
        continue;
      }
      await n.saving;
      n.driver.writeDone();
    }
  }

  private send(msgs: readonly Message[]): void {
    for (const m of msgs) {
      const to = this.nodes.get(m.to);
      if (!to) continue;
      to.inbox.push(m);
      this.poke(to);
    }
  }

  private apply(raw: RawNode, rd: Ready): void {
    if (raw.status().softState.state !== StateType.Leader) return; // only the leader measures
    for (const e of rd.committedEntries) {
      if (e.data.length !== SIZE) continue;
      const id = new DataView(e.data.buffer, e.data.byteOffset).getFloat64(0);
      const w = this.waiting.get(id);
      if (!w) continue;
      this.waiting.delete(id);
      w.done(process.hrtime.bigint() - w.start);
    }
  }
}

async function electLeader(c: Cluster): Promise<BenchNode> {
  const first = c.nodes.get(1)!;
  first.raw.campaign();
  c.forEach(() => {});
  for (let i = 0; i < 200; i++) {
    await new Promise((r) => setTimeout(r, 10));
    for (const n of c.nodes.values()) if (n.raw.status().softState.state === StateType.Leader) return n;
  }
  throw new Error("no leader elected");
}

interface Result {
  inflight: number;
  proposals: number;
  seconds: number;
  p50: number;
  p99: number;
  fsyncsPerNode: number;
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
}

async function runConfig(inflight: number): Promise<Result> {
  const root = mkdtempSync(join(tmpdir(), "bkv-bench-"));
  const c = await Cluster.create([1, 2, 3], root);
  try {
    const leader = await electLeader(c);
    let nextId = 1;
    let measuring = false;
    const latencies: number[] = [];
    const start = Date.now();
    let measureStart = 0n;
    let fsyncsAtStart = 0;
    const worker = async () => {
      while (Date.now() - start < WARMUP_MS + SECONDS * 1000) {
        const ns = await c.propose(leader, nextId++);
        if (measuring) latencies.push(Number(ns) / 1e6);
      }
    };
    setTimeout(() => {
      measuring = true;
      measureStart = process.hrtime.bigint();
      fsyncsAtStart = leader.storage.stats.fsyncs;
    }, WARMUP_MS);
    await Promise.all(Array.from({ length: inflight }, worker));
    const seconds = Number(process.hrtime.bigint() - measureStart) / 1e9;
    latencies.sort((a, b) => a - b);
    return {
      inflight, proposals: latencies.length, seconds, p50: percentile(latencies, 50), p99: percentile(latencies, 99),
      fsyncsPerNode: leader.storage.stats.fsyncs - fsyncsAtStart,
    };
  } finally {
    await c.stop();
    rmSync(root, { recursive: true, force: true });
  }
}

function machine(): string[] {
  const cpu = /model name\s*:\s*(.*)/.exec(readFileSync("/proc/cpuinfo", "utf8"))?.[1] ?? "unknown";
  let fs = "unknown";
  try {
    const df = execFileSync("df", ["-T", tmpdir()], { encoding: "utf8" }).trim().split("\n").at(-1)!.split(/\s+/);
    fs = `${df[1]} (${df[0]}, mounted on ${df[6]})`;
  } catch {
    // df missing: leave unknown
  }
  return [
    `- CPUs (nproc): ${availableParallelism()}`, `- CPU: ${cpu}`, `- Node: ${process.version}`, `- Filesystem of ${tmpdir()}: ${fs}`,
    `- Load average at the end (1/5/15 min): ${loadavg().map((l) => l.toFixed(1)).join(" / ")}`,
  ];
}

const results: Result[] = [];
for (const k of args.inflight.split(",").map(Number)) results.push(await runConfig(k));
console.log(`## Raft + DiskStorage: 3 nodes in one process, ${SIZE}-byte proposals, real fdatasync\n`);
console.log(machine().join("\n"));
console.log(`\n| in flight | proposals/s | p50 ms | p99 ms | leader fsyncs/s | proposals per leader fsync |`);
console.log(`|---:|---:|---:|---:|---:|---:|`);
for (const r of results) {
  const rate = r.proposals / r.seconds;
  console.log(
    `| ${r.inflight} | ${rate.toFixed(0)} | ${r.p50.toFixed(2)} | ${r.p99.toFixed(2)} | ` +
      `${(r.fsyncsPerNode / r.seconds).toFixed(0)} | ${(r.proposals / Math.max(1, r.fsyncsPerNode)).toFixed(1)} |`,
  );
}
console.log(`\n(${SECONDS} s measured per row after ${WARMUP_MS} ms warm-up; latency = propose -> applied on the leader)`);
