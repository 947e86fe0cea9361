// Where one committed call's CPU goes (issue 15): a 3-node testkit cluster
// (real processes, SoftHSM, TLS, fsync), first idle for --idle seconds, then
// committed BeginRecovery to the leader at each --inflight for --seconds.
// Prints, per node (leader first), CPU ms per second of each thread while
// idle and CPU ms per call of each thread under load (/proc/<pid>/task: the
// main thread, libuv's pool, V8's and the HSM workers' threads), and with
// --windows FILE writes the windows in the profiler's clock (monotonic µs)
// so that bench/cpuprofile.ts can cut a node's --cpu-prof profile to one:
//   BKV_E2E_NODE_ARGS="--cpu-prof --cpu-prof-dir=DIR" npx tsx bench/round-cost.ts --windows w.json
// Run: npx tsx bench/round-cost.ts [--seconds 8] [--idle 20] [--inflight 1,16] [--users 256] [--windows FILE]
import { readFileSync, readdirSync, writeFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { startBeginBench, stopCluster } from "./bkv.js";
import { closedLoop, load } from "./drive.js";
import { quantile } from "./sample.js";

type ThreadCpu = Map<string, number>;

/** CPU ms used so far by each thread of `pid`, by thread name (the main thread as "main"; same-named threads summed). */
function threadCpu(pid: number | undefined): ThreadCpu {
  const out: ThreadCpu = new Map();
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const name = tid === String(pid) ? "main" : readFileSync(`/proc/${pid}/task/${tid}/comm`, "utf8").trim();
      const f = readFileSync(`/proc/${pid}/task/${tid}/stat`, "utf8").split(") ")[1]!.split(" ");
      out.set(name, (out.get(name) ?? 0) + (Number(f[11]) + Number(f[12])) * 10); // USER_HZ = 100
    } catch {
      // the thread ended meanwhile
    }
  }
  return out;
}

/** "name=ms" per thread between two readings, divided by `per`, largest first. */
function perThread(before: ThreadCpu, after: ThreadCpu, per: number): string {
  const total = [...after.values()].reduce((a, b) => a + b, 0) - [...before.values()].reduce((a, b) => a + b, 0);
  const parts = [...after].map(([k, v]) => [k, (v - (before.get(k) ?? 0)) / per] as const).filter(([, v]) => v > 0).sort((a, b) => b[1] - a[1]);
  return `total ${(total / per).toFixed(2)}: ${parts.map(([k, v]) => `${k} ${v.toFixed(2)}`).join(", ")}`;
}

/** The profiler's clock (V8 timestamps: CLOCK_MONOTONIC in µs). */
const monoUs = (): number => Number(process.hrtime.bigint() / 1000n);

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      seconds: { type: "string", default: "8" }, idle: { type: "string", default: "20" }, inflight: { type: "string", default: "1,16" },
      users: { type: "string", default: "256" }, windows: { type: "string" },
    },
  });
  const b = await startBeginBench(Number(values.users), 20_000);
  const windows: Array<{ name: string; from: number; to: number; calls: number }> = [];
  try {
    const pids = b.pids;
    await closedLoop(1, 3, (i) => b.begin(i).then(() => undefined)); // warm-up
    console.log(`pids, leader first: ${pids.join(" ")}; load ${load()}`);
    const idle = Number(values.idle);
    let before = pids.map(threadCpu);
    let from = monoUs();
    await new Promise((r) => setTimeout(r, idle * 1000));
    windows.push({ name: "idle", from, to: monoUs(), calls: 0 });
    let after = pids.map(threadCpu);
    console.log(`idle ${idle} s, CPU ms per second:`);
    pids.forEach((_, i) => console.log(`  node ${i === 0 ? "(leader)" : "(follower)"} ${perThread(before[i]!, after[i]!, idle)}`));
    for (const k of values.inflight.split(",").map(Number)) {
      before = pids.map(threadCpu);
      from = monoUs();
      const r = await closedLoop(k, Number(values.seconds), (i) => b.begin(i).then(() => undefined));
      windows.push({ name: `at${k}`, from, to: monoUs(), calls: r.n });
      after = pids.map(threadCpu);
      const calls = Math.max(1, r.n);
      console.log(`${k} in flight: ${(r.n / r.seconds).toFixed(0)} calls/s, p50 ${quantile(r.lat, 0.5).toFixed(2)} ms, errors ${r.errors}, load ${load()}; CPU ms per call:`);
      pids.forEach((_, i) => console.log(`  node ${i === 0 ? "(leader)" : "(follower)"} ${perThread(before[i]!, after[i]!, calls)}`));
    }
    if (values.windows !== undefined) writeFileSync(values.windows, JSON.stringify({ pids, windows }, null, 1));
  } finally {
    await stopCluster(b.cluster);
  }
}

await main();
