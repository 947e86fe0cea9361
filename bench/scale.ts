// The vault at scale (issue 12): a real 3-node cluster (SoftHSM, TLS,
// fsync) is loaded with N records through the replicated log (one real
// registration cloned under distinct user ids, proposed as ordinary
// Register calls to the leader: no record is written into a store
// directly), while full recoveries of real users run at a steady rate. The
// nodes run the compiled build that ships (dist/, built first). It then
// measures a snapshot, the restart of a follower, and the catch-up of a
// new node with an empty data dir (join: true), and ends with
//   records: N, rss-max MiB: R, stall-max ms: S, restart s: T, catch-up s: C
// R is the largest anonymous resident set of a node process (RssAnon: the
// heap, stacks and native allocations; what the node itself holds); the
// file-backed part (RssFile: the store's mapped pages, page cache the kernel
// reclaims) and VmRSS are printed beside it. S is the largest event-loop
// delay a node reported (nodejs_eventloop_lag_max_seconds, reset at each 1 s
// scrape) from the start of the load to the end: the first scrape of the
// three first nodes, which covers their simultaneous start-up (before any
// load), is printed as "start-up" and not counted; a node restarted
// later counts with its whole start (its first scrape). Node's delay monitor
// ticks every 10 ms, so a stall of B ms reads as B to B + 10. Each node's
// line also gives its main thread's time on a core and runnable but waiting
// for one during the load (/proc/PID/schedstat), ms per second.
//
// By default the load is a closed loop of --inflight registrations, which
// holds the cluster at its limit for the whole load. With --rate R,
// registrations start R per second instead (at most --inflight at once),
// and the load's line says whether the cluster kept that pace
// (docs/benchmarks.md, "bench:scale with a paced load").
//
// Run: npm run bench:scale -- --records 100000 [--inflight 128] [--rate 0] [--recovery-rate 4]
import { parseArgs } from "node:util";
import { LocalCluster, builtNodeEntry } from "../testkit/cluster.js";
import { type NodeScrape, NodeScraper, killClusterNow, registerClones, secondsToApply, stopCluster } from "./bkv.js";
import { CpuMeter, cleanupOnExit, load } from "./drive.js";
import { ProbeRecoveries } from "./probes.js";
import { type ProcMemory, type SchedTimes, describeHostCpu, hostCpu, metricOf, procMemory } from "./sample.js";

const { values: args } = parseArgs({
  options: {
    records: { type: "string", default: "100000" },
    inflight: { type: "string", default: "128" },
    rate: { type: "string", default: "0" },
    "recovery-rate": { type: "string", default: "4" },
  },
});
const RECORDS = Number(args.records);
const IN_FLIGHT = Number(args.inflight);
const RATE = Number(args.rate);
const RECOVERY_RATE = Number(args["recovery-rate"]);
if (!Number.isSafeInteger(RECORDS) || RECORDS < 1 || !Number.isSafeInteger(IN_FLIGHT) || IN_FLIGHT < 1 || !(RATE >= 0) || !(RECOVERY_RATE >= 0)) {
  throw new Error("bench:scale: --records and --inflight take positive integers, --rate and --recovery-rate numbers ≥ 0");
}
/** S's goal: scrapes over it are listed at the end. */
const LONG_STALL_MS = 100;

/** What the sampler keeps of one node: its memory maxima, its longest stall by phase, its main thread's times by phase. */
interface NodeRecord {
  readonly mem: ProcMemory;
  readonly stall: Map<string, number>;
  /** Summed over the phase's scrapes (ms), with how many seconds they cover. */
  readonly sched: Map<string, SchedTimes & { seconds: number }>;
}

/** Per-node maxima and sums from a 1 s sampler of /proc and the nodes' metrics (NodeScraper). */
class Sampler {
  readonly nodes = new Map<number, NodeRecord>();
  /** Every scrape over LONG_STALL_MS, when it came (s since the sampler was made), for reading beside the nodes' logs. */
  readonly longStalls: { s: number; at: string; id: number; phase: string; ms: number }[] = [];
  private readonly t0 = performance.now();
  private readonly scraper: NodeScraper;
  constructor(private readonly cluster: LocalCluster, private readonly phase: () => string) {
    this.scraper = new NodeScraper(cluster, (s) => this.take(s));
  }

  start(): void {
    this.scraper.start();
  }

  stop(): Promise<void> {
    return this.scraper.stop();
  }

  /** One scrape of every node now (called once before start() to close the start-up window). */
  sample(): Promise<void> {
    return this.scraper.round();
  }

  /** A scrape, under the phase of the moment it came. */
  private take(s: NodeScrape): void {
    const mem = this.now(s.id);
    const r = this.nodes.get(s.id) ?? { mem: { rss: 0, anon: 0, file: 0 }, stall: new Map(), sched: new Map() };
    this.nodes.set(s.id, { ...r, mem: { rss: Math.max(r.mem.rss, mem.rss), anon: Math.max(r.mem.anon, mem.anon), file: Math.max(r.mem.file, mem.file) } });
    const phase = this.phase();
    if (s.sched !== undefined) {
      const t = r.sched.get(phase) ?? { ranMs: 0, waitedMs: 0, seconds: 0 };
      r.sched.set(phase, { ranMs: t.ranMs + s.sched.ranMs, waitedMs: t.waitedMs + s.sched.waitedMs, seconds: t.seconds + 1 });
    }
    if (s.stallMs === undefined) return;
    r.stall.set(phase, Math.max(r.stall.get(phase) ?? 0, s.stallMs));
    if (s.stallMs > LONG_STALL_MS) this.longStalls.push({ s: (performance.now() - this.t0) / 1000, at: new Date().toISOString().slice(11, 19), id: s.id, phase, ms: s.stallMs });
  }

  /** Node `id`'s longest stall (all nodes' when undefined) in every phase but the start. */
  stallMax(id?: number): number {
    const counted = [...this.nodes].filter(([n]) => id === undefined || n === id).flatMap(([, r]) => [...r.stall].filter(([phase]) => phase !== "start"));
    return Math.max(0, ...counted.map(([, ms]) => ms));
  }

  /** Node `id`'s line: memory maxima, stalls by phase, and its main thread's time on a core and waiting for one in the load. */
  describe(id: number): string {
    const r = this.nodes.get(id)!;
    const phases = ["load", "snapshot", "restart", "catch-up"].map((p) => `${p} ${(r.stall.get(p) ?? 0).toFixed(0)}`);
    const start = r.stall.get("start");
    if (start !== undefined) phases.push(`start-up ${start.toFixed(0)}, not counted`);
    const load = r.sched.get("load");
    const sched = load === undefined ? "" : `; main thread in the load, ms/s: on a core ${(load.ranMs / load.seconds).toFixed(0)}, waiting for one ${(load.waitedMs / load.seconds).toFixed(0)}`;
    return `node ${id}: rss-max ${r.mem.anon.toFixed(0)} MiB anon (file-backed ${r.mem.file.toFixed(0)}, VmRSS ${r.mem.rss.toFixed(0)}), stall-max ${this.stallMax(id).toFixed(0)} ms (by phase: ${phases.join(", ")})${sched}`;
  }

  now(id: number): ProcMemory {
    const pid = this.cluster.node(id).proc?.pid;
    return pid === undefined ? { rss: 0, anon: 0, file: 0 } : procMemory(pid);
  }
}

/**
 * Proposes RECORDS clones of one registration, RATE per second and at most
 * IN_FLIGHT at a time (registerClones); progress every 5 s, with the rate of
 * those 5 s and the host's busy, iowait and steal shares (a slow stretch of
 * the load reads beside what the machine did meanwhile). Returns the
 * seconds it took and the CPU this process (the loader, the probes'
 * recoveries, the sampler) used meanwhile, ms per second.
 */
async function loadRecords(cluster: LocalCluster, sampler: Sampler): Promise<{ seconds: number; loaderCpuMsPerS: number }> {
  let done = 0;
  const t0 = performance.now();
  const cpu = new CpuMeter([]);
  let last = { done: 0, s: 0, host: hostCpu() };
  const progress = setInterval(() => {
    const now = { done, s: (performance.now() - t0) / 1000, host: hostCpu() };
    const mem = cluster.nodes.map((n) => { const m = sampler.now(n.id); return `${m.anon.toFixed(0)}+${m.file.toFixed(0)}`; }).join(" / ");
    const recent = (now.done - last.done) / (now.s - last.s);
    console.log(`  ${done.toLocaleString("en")} records in ${now.s.toFixed(0)} s (${(done / now.s).toFixed(0)}/s; ${recent.toFixed(0)}/s in the last ${(now.s - last.s).toFixed(0)} s, ${describeHostCpu(last.host, now.host)}), RSS MiB anon+file ${mem}, load ${load()}`);
    last = now;
  }, 5000);
  try {
    await registerClones(cluster, { count: RECORDS, inFlight: IN_FLIGHT, rate: RATE, onRegistered: () => done++ });
  } finally {
    clearInterval(progress);
  }
  const seconds = (performance.now() - t0) / 1000;
  return { seconds, loaderCpuMsPerS: cpu.perCall(seconds).client };
}

/** Whether the load kept its pace (within 2% and a second: the start, the last calls' round trips). */
function paceKept(loadS: number): string {
  if (RATE <= 0) return ", closed loop";
  return loadS <= (RECORDS / RATE) * 1.02 + 1 ? `, the pace of ${RATE}/s kept` : `; the cluster could not keep the pace of ${RATE}/s: it ran at its limit`;
}

async function main(): Promise<void> {
  let cluster: LocalCluster | undefined;
  const finish = cleanupOnExit(() => stopCluster(cluster), () => killClusterNow(cluster));
  try {
    const pace = RATE > 0 ? `${RATE} registrations/s, at most ${IN_FLIGHT} in flight` : `closed loop, ${IN_FLIGHT} in flight`;
    console.log(`bench:scale, ${RECORDS.toLocaleString("en")} records, ${pace}, ${RECOVERY_RATE} recoveries/s, load ${load()}`);
    const nodeEntry = builtNodeEntry();
    console.log(`nodes run the compiled build (npm run build): ${nodeEntry}`);
    cluster = await LocalCluster.start({ clusterId: "scale", nodeEntry });
    const rec = await ProbeRecoveries.register(cluster);
    const sampler = new Sampler(cluster, () => rec.phase);
    await sampler.sample();
    rec.phase = "load";
    sampler.start();
    rec.start(RECOVERY_RATE);
    const { seconds: loadS, loaderCpuMsPerS } = await loadRecords(cluster, sampler);
    console.log(`loaded ${RECORDS.toLocaleString("en")} records in ${loadS.toFixed(0)} s (${(RECORDS / loadS).toFixed(0)}/s${paceKept(loadS)}); recovery p99 meanwhile ${rec.p99("load")}; this process (loader, probes, sampler) used ${loaderCpuMsPerS.toFixed(0)} ms/s of CPU`);

    rec.phase = "snapshot";
    const leader = await cluster.leaderId();
    const s0 = performance.now();
    const snap = await cluster.admin(leader).takeSnapshot({}, { deadline: new Date(Date.now() + 10 * 60_000) });
    const storeMiB = metricOf(await cluster.metricsOf(leader), "bkv_store_file_bytes") / 2 ** 20;
    console.log(`snapshot on the leader: ${((performance.now() - s0) / 1000).toFixed(1)} s at index ${snap.index} (a view of the store, ${storeMiB.toFixed(0)} MiB on disk, streamed to followers that need it)`);

    const [f1] = cluster.nodes.map((n) => n.id).filter((id) => id !== leader) as [number];
    rec.phase = "restart";
    await cluster.stop(f1);
    const commit = Number((await cluster.status(leader)).commitIndex);
    const r0 = performance.now();
    cluster.restart(f1);
    const restartS = await secondsToApply(cluster, f1, commit, r0);
    console.log(`restart of node ${f1}: ${restartS.toFixed(1)} s to answer with index ${commit} applied; recovery p99 ${rec.p99("restart")}`);

    // A new member with an empty data dir (join: true, as scaling the StatefulSet up): it is added as a
    // learner and catches up from a streamed snapshot of the leader's store, then the log.
    rec.phase = "catch-up";
    const target = Number((await cluster.status(leader)).commitIndex);
    const newId = Math.max(...cluster.nodes.map((n) => n.id)) + 1;
    await cluster.prepareNode(newId, { autoJoin: true }); // its certificate and HSM token: provisioning, not catch-up
    const c0 = performance.now();
    cluster.restart(newId);
    const catchUpS = await secondsToApply(cluster, newId, target, c0);
    console.log(`catch-up of a new node ${newId} from an empty data dir: ${catchUpS.toFixed(1)} s to apply ${target}; recovery p99 during it ${rec.p99("catch-up")}`);
    rec.stop();
    await sampler.stop();

    for (const id of [...sampler.nodes.keys()].sort((a, b) => a - b)) console.log(sampler.describe(id));
    const long = sampler.longStalls.map((x) => `node ${x.id} ${x.ms.toFixed(0)} ms at ${x.s.toFixed(0)} s, ${x.at} UTC (${x.phase})`);
    console.log(`scrapes over ${LONG_STALL_MS} ms: ${long.length === 0 ? "none" : long.join("; ")}`);
    if (rec.failures > 0) console.log(`recoveries that failed: ${rec.failures}`);
    const mems = [...sampler.nodes.values()].map((r) => r.mem);
    const rssMax = Math.max(...mems.map((m) => m.anon));
    const fileMax = Math.max(...mems.map((m) => m.file));
    console.log(`rss-max is the largest anonymous resident set; the largest file-backed part (the store's mapped pages) was ${fileMax.toFixed(0)} MiB`);
    const stallMax = sampler.stallMax();
    console.log(`records: ${RECORDS}, rss-max MiB: ${rssMax.toFixed(0)}, stall-max ms: ${stallMax.toFixed(0)}, restart s: ${restartS.toFixed(1)}, catch-up s: ${catchUpS.toFixed(1)}`);
  } finally {
    await finish();
  }
}

await main();
