// The load phase of bench:scale alone, for a profile of its long turns: a
// 3-node testkit cluster, then registrations (one real registration cloned
// under distinct user ids, as bench:scale does) to the leader, --inflight at
// a time, for --seconds; the nodes are stopped gracefully so that
// --cpu-prof writes their profiles. Read them with
//   npx tsx bench/cpuprofile.ts FILE --stretches
// It prints, per node, the longest event-loop stall of the run and the
// median and 90th percentile of the per-second longest stalls, as the node's
// metrics report them (nodejs_eventloop_lag_max_seconds, read every second).
// Run: BKV_E2E_NODE_ARGS="--cpu-prof --cpu-prof-dir=DIR" npx tsx bench/load-stalls.ts [--seconds 40] [--inflight 128]
import { parseArgs } from "node:util";
import { LocalCluster } from "../testkit/cluster.js";
import { clonedRegistrations, stopCluster } from "./bkv.js";
import { load } from "./drive.js";
import { metricOf, quantile } from "./sample.js";

const { values: args } = parseArgs({ options: { seconds: { type: "string", default: "40" }, inflight: { type: "string", default: "128" } } });

async function main(): Promise<void> {
  const cluster = await LocalCluster.start();
  try {
    const registration = clonedRegistrations(await cluster.descriptor());
    let leader = await cluster.leaderId();
    const errors = new Map<string, number>();
    const end = performance.now() + Number(args.seconds) * 1000;
    let next = 0;
    const worker = async () => {
      while (performance.now() < end) {
        const req = registration(next++);
        try {
          await cluster.vault(leader).register(req, { deadline: new Date(Date.now() + 30_000) });
        } catch (err) { // counted, not retried: this drives load, it does not need every record
          const what = (err as Error).message.replace(/\(leader.*$/, "").slice(0, 80);
          errors.set(what, (errors.get(what) ?? 0) + 1);
          leader = await cluster.leaderId().catch(() => leader);
        }
      }
    };
    const stalls = sampleStalls(cluster);
    await Promise.all(Array.from({ length: Number(args.inflight) }, worker));
    console.log(`leader ${leader}: ${next} registrations in ${args.seconds} s, load ${load()}; failed:`, errors);
    for (const [id, xs] of await stalls.stop()) {
      xs.sort((a, b) => a - b);
      console.log(`node ${id}: stall-max ${xs.at(-1)?.toFixed(0)} ms, per-second max p50 ${quantile(xs, 0.5).toFixed(0)} / p90 ${quantile(xs, 0.9).toFixed(0)} ms (${xs.length} s)`);
    }
  } finally {
    await stopCluster(cluster);
  }
}

/** Reads every node's longest event-loop stall (reset by each scrape) once a second until stop(). */
function sampleStalls(cluster: LocalCluster): { stop(): Promise<Map<number, number[]>> } {
  const out = new Map<number, number[]>(cluster.nodes.map((n) => [n.id, []]));
  const read = () => Promise.all(cluster.nodes.map(async (n) => {
    const text = await cluster.metricsOf(n.id).catch(() => "");
    if (text !== "") out.get(n.id)!.push(metricOf(text, "nodejs_eventloop_lag_max_seconds") * 1000);
  }));
  let reading: Promise<unknown> = read().then(() => { for (const xs of out.values()) xs.length = 0; }); // the first read ends the start-up's window
  const timer = setInterval(() => { reading = reading.then(read); }, 1000);
  return { stop: async () => { clearInterval(timer); await reading; return out; } };
}

await main();
