// A soak at steady load (issue 12, item 5): a real 3-node cluster (SoftHSM,
// TLS, fsync; the compiled build that ships, dist/, built first) serves full recoveries of real users at a fixed rate (right
// passwords, and a share of wrong ones that count and are then reset by a
// right one) plus a trickle of new registrations, for `--minutes`. Every
// `--sample-s` it records each node's resident memory: VmRSS, its anonymous
// part (heap, buffers: what must stay flat) and its file-backed part (the
// store's mapped pages, which the kernel reclaims), and what the anonymous
// part holds, told apart (the node's metrics): the main thread's V8 heap
// (used/total), external memory and array buffers, the HSM worker threads'
// isolates, the Raft log kept in memory, the HSM module restarts, and the
// store's size. `--snapshot-interval` and `--hsm-recycle-after` shorten the
// nodes' intervals so that many pass in a short run. The nodes run with the
// container image's MALLOC_ARENA_MAX=2 unless the environment sets it
// (chaos/node-env.ts; BKV_E2E_NODE_ENV_<id> for one node's own variables,
// e.g. a heap profiler: docs/benchmarks.md). It prints the curve and ends with
//   soak: M min, R recoveries (W wrong), G registrations, anon growth after warm-up MiB/h: X, rss-max MiB: Y, anon-max MiB: Z
// where X is the largest least-squares slope of RssAnon over the samples
// after the warm-up (the first third), across the nodes.
//
// Run: npm run bench:soak -- --minutes 30 [--rate 16] [--wrong-every 7] [--register-rate 4]
//      [--snapshot-interval 10000] [--hsm-recycle-after 20000] [--sample-s 30]
import { parseArgs } from "node:util";
import { VaultClient, WrongPasswordError } from "../client/sdk/index.js";
import { LocalCluster, builtNodeEntry } from "../testkit/cluster.js";
import { NODE_V8_FLAGS, nodeEnv } from "../chaos/node-env.js";
import { CHEAP_SCRYPT, killClusterNow, stopCluster } from "./bkv.js";
import { cleanupOnExit, load } from "./drive.js";
import { metricOf, procMemory, type ProcMemory } from "./sample.js";

const { values: args } = parseArgs({
  options: {
    minutes: { type: "string", default: "30" },
    rate: { type: "string", default: "16" },
    "wrong-every": { type: "string", default: "7" },
    "register-rate": { type: "string", default: "4" },
    users: { type: "string", default: "32" },
    "sample-s": { type: "string", default: "30" },
    "snapshot-interval": { type: "string", default: "10000" },
    "hsm-recycle-after": { type: "string", default: "20000" },
  },
});
const MINUTES = Number(args.minutes);
const RATE = Number(args.rate);
const WRONG_EVERY = Number(args["wrong-every"]);
const REGISTER_RATE = Number(args["register-rate"]);
const USERS = Number(args.users);
const SAMPLE_S = Number(args["sample-s"]);
const SNAPSHOT_INTERVAL = Number(args["snapshot-interval"]);
// The nodes read it from their environment (node/server/config.ts), which the cluster's children inherit.
process.env.BKV_HSM_RECYCLE_AFTER = args["hsm-recycle-after"];

/** MiB of the node's own metrics, by column. */
const METRICS = {
  heapUsed: "nodejs_heap_size_used_bytes", heapTotal: "nodejs_heap_size_total_bytes", external: "nodejs_external_memory_bytes",
  arrayBuffers: "bkv_process_array_buffers_bytes", workerHeap: "bkv_hsm_worker_heap_used_bytes", workerHeapTotal: "bkv_hsm_worker_heap_total_bytes",
  workerExternal: "bkv_hsm_worker_external_bytes", logMiB: "bkv_raft_log_bytes", storeMiB: "bkv_store_file_bytes",
} as const;

type Point = ProcMemory & Record<keyof typeof METRICS, number> & { min: number; newSpace: number; logEntries: number; restarts: number; restartS: number };

/** Counts of the work done; in-flight calls are bounded so a slow cluster is not buried. */
class Traffic {
  right = 0;
  wrong = 0;
  registered = 0;
  errors = 0;
  firstError = "";
  private inFlight = 0;
  private n = 0;
  private timers: NodeJS.Timeout[] = [];
  constructor(private readonly client: VaultClient) {}

  start(): void {
    this.timers.push(setInterval(() => this.launch(() => this.recovery(this.n++)), 1000 / RATE));
    if (REGISTER_RATE > 0) this.timers.push(setInterval(() => this.launch(() => this.register()), 1000 / REGISTER_RATE));
  }

  stop(): void {
    for (const t of this.timers) clearInterval(t);
  }

  private launch(call: () => Promise<void>): void {
    if (this.inFlight >= 64) return;
    this.inFlight++;
    call().catch((err: unknown) => {
      this.errors++;
      this.firstError ||= String(err).slice(0, 160);
    }).finally(() => this.inFlight--);
  }

  /** Every WRONG_EVERY-th attempt of a user is wrong (it counts); the user's next right one resets it. */
  private async recovery(i: number): Promise<void> {
    const user = `soak-${i % USERS}`;
    if (Math.floor(i / USERS) % WRONG_EVERY === WRONG_EVERY - 1) {
      await this.client.recover(user, "wrong password").then(
        () => { throw new Error(`a wrong password recovered ${user}`); },
        (err: unknown) => { if (!(err instanceof WrongPasswordError)) throw err; },
      );
      this.wrong++;
      return;
    }
    await this.client.recover(user, "right password");
    this.right++;
  }

  private async register(): Promise<void> {
    await this.client.register(`new-${this.registered + this.errors}-${Date.now()}`, "right password", { guessLimit: 10 });
    this.registered++;
  }
}

/** The least-squares slope of y over x (NaN for fewer than 2 points). */
function slope(xs: readonly number[], ys: readonly number[]): number {
  const n = xs.length;
  const mx = xs.reduce((a, b) => a + b, 0) / n;
  const my = ys.reduce((a, b) => a + b, 0) / n;
  let num = 0;
  let den = 0;
  for (let i = 0; i < n; i++) {
    num += (xs[i]! - mx) * (ys[i]! - my);
    den += (xs[i]! - mx) ** 2;
  }
  return n < 2 || den === 0 ? NaN : num / den;
}

async function samplePoint(cluster: LocalCluster, id: number, min: number): Promise<Point> {
  const pid = cluster.node(id).proc?.pid;
  const mem = pid === undefined ? { rss: 0, anon: 0, file: 0 } : procMemory(pid);
  const text = await cluster.metricsOf(id).catch(() => "");
  const mib = Object.fromEntries(Object.entries(METRICS).map(([k, name]) => [k, metricOf(text, name) / 2 ** 20])) as Record<keyof typeof METRICS, number>;
  return {
    ...mem, ...mib, min, newSpace: metricOf(text, "nodejs_heap_space_size_total_bytes", 'space="new"') / 2 ** 20, logEntries: metricOf(text, "bkv_raft_log_entries"),
    restarts: metricOf(text, "bkv_hsm_module_restarts"), restartS: metricOf(text, "bkv_hsm_last_restart_seconds"),
  };
}

/** RssAnon not accounted for by the isolates (heaps reserved, external memory): native allocations, malloc's free lists, stacks. */
function rest(p: Point): number {
  return p.anon - p.heapTotal - p.external - p.workerHeapTotal - p.workerExternal;
}

/** One sample of one node: resident memory, then what the anonymous part holds (MiB). */
function sampleLine(id: number, p: Point): string {
  const f = (x: number) => x.toFixed(0);
  return `${p.min.toFixed(1).padStart(5)} n${id} rss/anon/file ${f(p.rss)}/${f(p.anon)}/${f(p.file)}`
    + ` | heap ${f(p.heapUsed)}/${f(p.heapTotal)} (new ${f(p.newSpace)}) ext ${p.external.toFixed(1)} ab ${p.arrayBuffers.toFixed(1)}`
    + ` | workers heap ${f(p.workerHeap)}/${f(p.workerHeapTotal)} ext ${p.workerExternal.toFixed(1)} | rest ${f(rest(p))}`
    + ` | log ${p.logEntries} ${p.logMiB.toFixed(1)} | hsm restarts ${p.restarts} (${p.restartS.toFixed(2)} s) | store ${p.storeMiB.toFixed(1)}`;
}

async function main(): Promise<void> {
  let cluster: LocalCluster | undefined;
  const finish = cleanupOnExit(() => stopCluster(cluster), () => killClusterNow(cluster));
  try {
    console.log(`bench:soak, ${MINUTES} min, ${RATE} recoveries/s (1 in ${WRONG_EVERY} wrong), ${REGISTER_RATE} registrations/s, load ${load()}`);
    const nodeEntry = builtNodeEntry();
    console.log(`nodes run the compiled build (npm run build): ${nodeEntry}`);
    cluster = await LocalCluster.start({ clusterId: "soak", snapshotInterval: SNAPSHOT_INTERVAL, nodeEntry });
    const arenas = cluster.nodes.map((n) => nodeEnv(n.id).MALLOC_ARENA_MAX).join("/");
    const options = cluster.nodes.map((n) => nodeEnv(n.id).NODE_OPTIONS).join(" / ");
    console.log(`snapshot interval ${SNAPSHOT_INTERVAL}, HSM module restarted after at most ${process.env.BKV_HSM_RECYCLE_AFTER} operations (each interval drawn in its second half), the nodes' MALLOC_ARENA_MAX ${arenas}, NODE_OPTIONS ${options}, V8 flags ${NODE_V8_FLAGS.join(" ")}`);
    const client = new VaultClient(await cluster.descriptor(), { token: cluster.token, scrypt: CHEAP_SCRYPT });
    for (let u = 0; u < USERS; u++) await client.register(`soak-${u}`, "right password", { guessLimit: 10 });
    const ids = cluster.nodes.map((n) => n.id);
    const curves = new Map<number, Point[]>(ids.map((id) => [id, []]));
    const traffic = new Traffic(client);
    const t0 = performance.now();
    traffic.start();
    console.log("MiB; heap used/total (new: the young generation's part of total), ext(ernal), ab (array buffers): main thread; workers: the HSM threads; rest: anon minus those; log: Raft entries in memory, MiB");
    while (performance.now() - t0 < MINUTES * 60_000) {
      await new Promise((r) => setTimeout(r, SAMPLE_S * 1000));
      const min = (performance.now() - t0) / 60_000;
      const points = await Promise.all(ids.map((id) => samplePoint(cluster!, id, min)));
      points.forEach((p, i) => curves.get(ids[i]!)!.push(p));
      for (const [i, p] of points.entries()) console.log(sampleLine(ids[i]!, p));
      console.log(`      done (right/wrong/registered/errors) ${traffic.right}/${traffic.wrong}/${traffic.registered}/${traffic.errors}, load ${load()}`);
    }
    traffic.stop();
    report(curves, traffic);
  } finally {
    await finish();
  }
}

function report(curves: Map<number, Point[]>, traffic: Traffic): void {
  let growth = -Infinity;
  for (const [id, pts] of curves) {
    const after = pts.slice(Math.floor(pts.length / 3));
    const perH = (y: (p: Point) => number) => slope(after.map((p) => p.min), after.map(y)) * 60;
    growth = Math.max(growth, perH((p) => p.anon));
    const parts = `heap used ${perH((p) => p.heapUsed).toFixed(1)}, heap total ${perH((p) => p.heapTotal).toFixed(1)} (new space ${perH((p) => p.newSpace).toFixed(1)}), external ${perH((p) => p.external).toFixed(1)}, workers ${perH((p) => p.workerHeapTotal + p.workerExternal).toFixed(1)}, rest ${perH(rest).toFixed(1)}`;
    console.log(`node ${id}: anon ${after[0]?.anon.toFixed(0)} → ${after.at(-1)?.anon.toFixed(0)} MiB after warm-up (slope ${perH((p) => p.anon).toFixed(1)} MiB/h; ${parts}); rss-max ${Math.max(...pts.map((p) => p.rss)).toFixed(0)} MiB`);
  }
  if (traffic.errors > 0) console.log(`errors: ${traffic.errors}, the first: ${traffic.firstError}`);
  const all = [...curves.values()].flat();
  const minutes = Math.max(...all.map((p) => p.min));
  console.log(`soak: ${minutes.toFixed(0)} min, ${traffic.right + traffic.wrong} recoveries (${traffic.wrong} wrong), ${traffic.registered} registrations, anon growth after warm-up MiB/h: ${growth.toFixed(1)}, rss-max MiB: ${Math.max(...all.map((p) => p.rss)).toFixed(0)}, anon-max MiB: ${Math.max(...all.map((p) => p.anon)).toFixed(0)}`);
}

await main();
