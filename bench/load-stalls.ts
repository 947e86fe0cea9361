// The load phase of bench:scale alone, for a profile of its long turns: a
// 3-node testkit cluster, then registrations (one real registration cloned
// under distinct user ids, as bench:scale does) to the leader, --inflight at
// a time, for --seconds; the nodes are stopped gracefully so that
// --cpu-prof writes their profiles. Read them with
//   npx tsx bench/cpuprofile.ts FILE --stretches
// It prints, per node, the longest event-loop stall of the run and the
// median and 90th percentile of the per-second longest stalls, as the node's
// metrics report them (nodejs_eventloop_lag_max_seconds, read every second).
// Run: BKV_E2E_NODE_ARGS="--cpu-prof --cpu-prof-dir=DIR" npx tsx bench/load-stalls.ts [--seconds 40] [--inflight 128] [--rate 0 (registrations/s; 0: closed loop)]
import { parseArgs } from "node:util";
import { LocalCluster } from "../testkit/cluster.js";
import { registerClones, sampleStalls, stopCluster } from "./bkv.js";
import { load } from "./drive.js";
import { quantile } from "./sample.js";

const { values: args } = parseArgs({ options: { seconds: { type: "string", default: "40" }, inflight: { type: "string", default: "128" }, rate: { type: "string", default: "0" } } });

async function main(): Promise<void> {
  const cluster = await LocalCluster.start();
  try {
    const stalls = sampleStalls(cluster, cluster.nodes.map((n) => n.id));
    const done = await registerClones(cluster, { stopAt: performance.now() + Number(args.seconds) * 1000, inFlight: Number(args.inflight), rate: Number(args.rate) });
    console.log(`leader ${await cluster.leaderId()}: ${done} registrations in ${args.seconds} s, load ${load()}`);
    for (const [id, xs] of await stalls.stop()) {
      xs.sort((a, b) => a - b);
      console.log(`node ${id}: stall-max ${xs.at(-1)?.toFixed(0)} ms, per-second max p50 ${quantile(xs, 0.5).toFixed(0)} / p90 ${quantile(xs, 0.9).toFixed(0)} ms (${xs.length} s)`);
    }
  } finally {
    await stopCluster(cluster);
  }
}

await main();
