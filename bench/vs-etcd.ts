// bkv against etcd on the same machine, in the same run (issue 15): a 3-member
// etcd (bench/etcd/cluster.ts, TLS, fsync) and a 3-node bkv cluster (SoftHSM,
// TLS, fsync) on 127.0.0.1, both driven with grpc-js from this process at each
// number in flight, rows alternated between the two systems (the order flips
// every row) so that other load on the machine hits both alike:
//   etcd: KV.Put of a 256-byte value to the leader;
//   bkv:  committed BeginRecovery to the leader, a distinct blinded element each;
//         every user takes at most 8 begins in a row, and the bench confirms
//         each user's attempts after the row (outside its timing), so every
//         row applies begins to records holding 0..7 pending attempts,
//         whatever its position in the run (bench/bkv.ts BeginUsers).
// Prints every row, the medians over rounds, and closes with
//   ratio bkv/etcd at 1: X
//   ratio bkv/etcd at 64: Y
// Run: npm run bench:vs-etcd -- [--seconds 10] [--rounds 3] [--inflight 1,16,64,256] [--users 2048]
import { randomBytes } from "node:crypto";
import { cpus } from "node:os";
import { parseArgs } from "node:util";
import { BEGINS_PER_USER, type BeginBench, describeRowUsers, killClusterNow, startBeginBench, stopCluster } from "./bkv.js";
import { CpuMeter, cleanupOnExit, closedLoop, load } from "./drive.js";
import { EtcdCluster } from "./etcd/cluster.js";
import { median, quantile } from "./sample.js";

interface System {
  readonly name: "etcd" | "bkv";
  /** Server pids, the current leader first. */
  pids(): Array<number | undefined>;
  call(i: number): Promise<unknown>;
  /** Outside the row's timing: before it, and after it (given its rate); the latter says how the row went. */
  before?(seconds: number): Promise<void>;
  after?(rate: number): Promise<string>;
}

interface Row {
  system: string; inFlight: number; round: number; rate: number; p50: number; p99: number; cpu: number[]; errors: number; firstError?: string; load: string; users?: string;
}

async function measureRow(s: System, inFlight: number, seconds: number, round: number): Promise<Row> {
  await s.before?.(seconds);
  const before = load();
  const meter = new CpuMeter(s.pids());
  const r = await closedLoop(inFlight, seconds, (i) => s.call(i).then(() => undefined));
  const { servers, client } = meter.perCall(Math.max(1, r.n));
  const followers = servers.slice(1);
  const users = await s.after?.(r.n / r.seconds);
  return {
    system: s.name, inFlight, round, rate: r.n / r.seconds, p50: quantile(r.lat, 0.5), p99: quantile(r.lat, 0.99),
    cpu: [servers[0]!, followers.reduce((a, b) => a + b, 0) / followers.length, client],
    errors: r.errors, ...(r.firstError === undefined ? {} : { firstError: r.firstError }), load: `${before} → ${load()}`, ...(users === undefined ? {} : { users }),
  };
}

function etcdSystem(etcd: EtcdCluster, leader: number): System {
  const put = etcd.putter(leader);
  const value = new Uint8Array(randomBytes(256));
  const pids = etcd.pids;
  return { name: "etcd", pids: () => [pids[leader], ...pids.filter((_, i) => i !== leader)], call: (i) => put(`bench/${i % 1024}`, value) };
}

/**
 * Before each row, users for twice the fastest rate seen so far (at most
 * BEGINS_PER_USER begins each); after it, their attempts confirmed.
 */
function bkvSystem(b: BeginBench, firstRate: number): System {
  let peak = firstRate;
  return {
    name: "bkv", pids: () => b.pids, call: (i) => b.begin(i),
    before: (seconds) => b.prepare(2 * peak * seconds),
    after: async (rate) => {
      peak = Math.max(peak, rate);
      return describeRowUsers(await b.settle());
    },
  };
}

const fmt = (v: number, d = 1) => (Number.isFinite(v) ? v.toFixed(d) : "–");

function printRows(rows: Row[]): void {
  console.log(`\n(bkv users: users begun in the row / most begins of one user, at most ${BEGINS_PER_USER} unless the pool ran out; confirmed after the row)`);
  console.log("| system | in flight | round | calls/s | p50 ms | p99 ms | CPU ms per call: leader / follower / client | errors | load (1 min) | bkv users |");
  console.log("|---|---:|---:|---:|---:|---:|---|---:|---|---|");
  for (const r of rows) {
    console.log(`| ${r.system} | ${r.inFlight} | ${r.round} | ${fmt(r.rate, 0)} | ${fmt(r.p50)} | ${fmt(r.p99)} | ${r.cpu.map((c) => fmt(c, 2)).join(" / ")} | ${r.errors} | ${r.load} | ${r.users ?? ""} |`);
  }
}

/** Medians over rounds per system and in-flight; returns the median rate by "system|k". */
function printMedians(rows: Row[], inFlights: number[]): Map<string, number> {
  const rates = new Map<string, number>();
  console.log("\n| system | in flight | median calls/s | median p50 ms | median p99 ms | median CPU ms per call: leader / follower / client |");
  console.log("|---|---:|---:|---:|---:|---|");
  for (const k of inFlights) {
    for (const name of ["etcd", "bkv"]) {
      const xs = rows.filter((r) => r.system === name && r.inFlight === k);
      const m = (f: (r: Row) => number) => median(xs.map(f));
      rates.set(`${name}|${k}`, m((r) => r.rate));
      console.log(`| ${name} | ${k} | ${fmt(m((r) => r.rate), 0)} | ${fmt(m((r) => r.p50))} | ${fmt(m((r) => r.p99))} | ${[0, 1, 2].map((j) => fmt(m((r) => r.cpu[j]!), 2)).join(" / ")} |`);
    }
  }
  return rates;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      seconds: { type: "string", default: "10" }, rounds: { type: "string", default: "3" },
      inflight: { type: "string", default: "1,16,64,256" }, users: { type: "string", default: "2048" },
    },
  });
  const seconds = Number(values.seconds);
  const rounds = Number(values.rounds);
  const inFlights = values.inflight.split(",").map(Number);
  let etcd: EtcdCluster | undefined;
  let bkv: BeginBench | undefined;
  const cleanup = cleanupOnExit(async () => {
    await etcd?.close();
    await stopCluster(bkv?.cluster);
  }, () => { etcd?.killNow(); killClusterNow(bkv?.cluster); });
  try {
    console.error("starting etcd (3 members) and bkv (3 nodes) on 127.0.0.1 ...");
    etcd = await EtcdCluster.start();
    bkv = await startBeginBench(Number(values.users));
    const warm = (call: (i: number) => Promise<unknown>) => closedLoop(16, Math.min(2, seconds), (i) => call(i).then(() => undefined));
    const e = etcdSystem(etcd, await etcd.leaderIndex());
    await warm(e.call);
    const w = await warm(bkv.begin);
    await bkv.settle();
    const systems = [e, bkvSystem(bkv, w.n / w.seconds)];
    const rows: Row[] = [];
    let flip = 0;
    for (let round = 1; round <= rounds; round++) {
      for (const k of inFlights) {
        for (const s of flip++ % 2 === 0 ? systems : [...systems].reverse()) {
          const r = await measureRow(s, k, seconds, round);
          rows.push(r);
          console.error(`round ${round}, ${s.name} @${k}: ${fmt(r.rate, 0)}/s p50 ${fmt(r.p50)} ms p99 ${fmt(r.p99)} ms, errors ${r.errors}${r.firstError === undefined ? "" : ` (${r.firstError})`}, load ${r.load}${r.users === undefined ? "" : `, users ${r.users}`}`);
        }
      }
    }
    console.log(`machine: ${cpus().length} × ${cpus()[0]?.model ?? "?"}, node ${process.version}; ${seconds} s per row, ${rounds} round(s)`);
    printRows(rows);
    const rates = printMedians(rows, inFlights);
    console.log("");
    for (const k of [1, 64]) {
      const ratio = (rates.get(`bkv|${k}`) ?? NaN) / (rates.get(`etcd|${k}`) ?? NaN);
      console.log(`ratio bkv/etcd at ${k}: ${Number.isFinite(ratio) ? ratio.toFixed(2) : "n/a (not in --inflight)"}`);
    }
  } finally {
    await cleanup();
  }
}

await main();
