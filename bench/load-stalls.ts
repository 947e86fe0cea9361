// The load phase of bench:scale alone, for a profile of its long turns: a
// 3-node testkit cluster, then registrations (one real registration cloned
// under distinct user ids, as bench:scale does) to the leader, --inflight at
// a time, for --seconds; the nodes are stopped gracefully so that
// --cpu-prof writes their profiles. Read them with
//   npx tsx bench/cpuprofile.ts FILE --stretches
// It prints, per node, the longest event-loop stall of the run and the
// median and 90th percentile of the per-second longest stalls, as the node's
// metrics report them (nodejs_eventloop_lag_max_seconds, read every second),
// and what the node's main thread did in those seconds (/proc/PID/schedstat):
// ms per second on a core, and ms per second runnable but waiting for a core
// (in all seconds, and in the seconds of the longest tenth of the stalls);
// and the CPU each node process (all its threads) and the loader used.
// Run: BKV_E2E_NODE_ARGS="--cpu-prof --cpu-prof-dir=DIR" npx tsx bench/load-stalls.ts [--seconds 40] [--inflight 128] [--rate 0 (registrations/s; 0: closed loop)]
import { parseArgs } from "node:util";
import { LocalCluster } from "../testkit/cluster.js";
import { type NodeSeconds, registerClones, sampleStalls, stopCluster } from "./bkv.js";
import { CpuMeter, load } from "./drive.js";
import { histogramOf, metricOf, quantile } from "./sample.js";

const { values: args } = parseArgs({ options: { seconds: { type: "string", default: "40" }, inflight: { type: "string", default: "128" }, rate: { type: "string", default: "0" } } });
const SECONDS = Number(args.seconds);
const IN_FLIGHT = Number(args.inflight);
const RATE = Number(args.rate);
if (!(SECONDS > 0) || !Number.isSafeInteger(IN_FLIGHT) || IN_FLIGHT < 1 || !(RATE >= 0)) {
  throw new Error("bench/load-stalls: --seconds takes a number > 0, --inflight a positive integer, --rate a number ≥ 0");
}

/** One node's line: its stalls, and its main thread's time on a core and waiting for one (ms per second). */
function describe(id: number, s: NodeSeconds): string {
  const sorted = [...s.stallMs].sort((a, b) => a - b);
  const p90 = quantile(sorted, 0.9);
  const mean = (xs: number[]) => (xs.length === 0 ? NaN : xs.reduce((a, b) => a + b, 0) / xs.length).toFixed(0);
  const seconds = s.sched.flatMap((t, i) => (t === undefined ? [] : [{ ...t, stall: s.stallMs[i]! }]));
  const worst = seconds.filter((x) => x.stall >= p90);
  return `node ${id}: stall-max ${sorted.at(-1)?.toFixed(0)} ms, per-second max p50 ${quantile(sorted, 0.5).toFixed(0)} / p90 ${p90.toFixed(0)} ms (${sorted.length} s); ` +
    `main thread ms/s on a core ${mean(seconds.map((x) => x.ranMs))}, waiting for one ${mean(seconds.map((x) => x.waitedMs))} (in the ${worst.length} s of stalls ≥ p90: ${mean(worst.map((x) => x.ranMs))} and ${mean(worst.map((x) => x.waitedMs))})`;
}

/** Node `id`'s applied entries and the Readies that applied them, since it started. */
async function readies(cluster: LocalCluster, id: number): Promise<string> {
  const text = await cluster.metricsOf(id);
  const entries = metricOf(text, "bkv_applied_entries_total");
  const { count } = histogramOf(text, "bkv_apply_seconds");
  return `${entries} entries applied by ${count} Readies (${(entries / count).toFixed(1)} each)`;
}

async function main(): Promise<void> {
  const cluster = await LocalCluster.start();
  try {
    const stalls = sampleStalls(cluster, cluster.nodes.map((n) => n.id));
    const meter = new CpuMeter(cluster.nodes.map((n) => n.proc?.pid));
    const t0 = performance.now();
    const done = await registerClones(cluster, { stopAt: t0 + SECONDS * 1000, inFlight: IN_FLIGHT, rate: RATE });
    const seconds = (performance.now() - t0) / 1000;
    const cpu = meter.perCall(seconds); // ms per second
    console.log(`leader ${await cluster.leaderId()}: ${done} registrations in ${seconds.toFixed(1)} s, load ${load()}; CPU ms/s of the nodes (all threads) ${cpu.servers.map((ms) => ms.toFixed(0)).join(" / ")}, of this loader ${cpu.client.toFixed(0)}`);
    for (const [id, s] of await stalls.stop()) console.log(`${describe(id, s)}; ${await readies(cluster, id)}`);
  } finally {
    await stopCluster(cluster);
  }
}

await main();
