// The load phase of bench:scale alone, for a profile of its long turns: a
// 3-node testkit cluster, then registrations (one real registration cloned
// under distinct user ids, as bench:scale does) to the leader, --inflight at
// a time, for --seconds; the nodes are stopped gracefully so that
// --cpu-prof writes their profiles. Read them with
//   npx tsx bench/cpuprofile.ts FILE --stretches
// Run: BKV_E2E_NODE_ARGS="--cpu-prof --cpu-prof-dir=DIR" npx tsx bench/load-stalls.ts [--seconds 40] [--inflight 128]
import { parseArgs } from "node:util";
import { LocalCluster } from "../testkit/cluster.js";
import { clonedRegistrations, stopCluster } from "./bkv.js";
import { load } from "./drive.js";

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
    await Promise.all(Array.from({ length: Number(args.inflight) }, worker));
    console.log(`leader ${leader}: ${next} registrations in ${args.seconds} s, load ${load()}; failed:`, errors);
  } finally {
    await stopCluster(cluster);
  }
}

await main();
