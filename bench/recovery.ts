// Full recoveries per second against the HSM-bound limit (issue 15):
//   1. the HSM alone: evaluations per second one SoftHSM token sustains with
//      the node's own strategy (bench/hsm.ts's code), before the cluster
//      starts and again after it stopped (the mean is used);
//   2. a 3-node cluster (t = 2, SoftHSM, TLS, fsync) with one user per
//      recovery in flight, driven by --clients forked load generators
//      (bench/recovery-client.ts: curve work prepared ahead, no scrypt), at
//      each number in flight, then paced at half the best rate;
//   3. L = e × n ÷ (Evaluate calls a recovery makes: the SDK asks every share
//      holder, so n), and the closing line
//        recoveries/s: R, hsm-bound: L, ratio: X
// Server-side latency = the wall time of a recovery's four RPC phases, from
// timestamps in the load generator (its own signing excluded); after the
// table, each node's mean time inside its handlers per call (its latency
// histograms), which tells a phase's time in a node from the time between.
// Run: npm run bench:recovery -- [--seconds 10] [--rounds 1] [--inflight 1,8,32,64] [--clients 1] [--hsm-seconds 5]
import { type ChildProcess, fork } from "node:child_process";
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { cpus } from "node:os";
import { parseArgs } from "node:util";
import { HsmWorkerPool } from "../node/hsm/index.js";
import { createRegistration } from "../proto/crypto/index.js";
import { registerRequest } from "../client/sdk/records.js";
import { LocalCluster } from "../testkit/cluster.js";
import { CHEAP_SCRYPT, killClusterNow, pidsLeaderFirst, stopCluster } from "./bkv.js";
import { CpuMeter, cleanupOnExit, load, stopChild } from "./drive.js";
import { makeJobs, run, withBenchToken } from "./hsm.js";
import type { Init, Job, JobResult } from "./recovery-client.js";
import { histogramOf, quantile } from "./sample.js";

const HSM_IN_FLIGHT = 16;

/** Evaluations per second of one token, alone, as a node opens it (HsmWorkerPool with its defaults). */
function hsmAlone(seconds: number): Promise<number> {
  return withBenchToken(async (config) => {
    const hsm = await HsmWorkerPool.open(config);
    try {
      const jobs = makeJobs(hsm.agreementPublicKey, 64);
      await run(hsm, jobs, HSM_IN_FLIGHT, Math.min(1, seconds)); // warm-up
      return (await run(hsm, jobs, HSM_IN_FLIGHT, seconds)).rate;
    } finally {
      await hsm.close();
    }
  });
}

/** Registers r0..r{count-1} (cheap scrypt, guess limit 255) on the leader; returns each user's reset key (hex). */
async function registerUsers(cluster: LocalCluster, count: number): Promise<Init["users"]> {
  const d = await cluster.descriptor();
  const vault = cluster.vault(await cluster.leaderId());
  const nodes = d.nodes.map((n) => ({ id: n.nodeId, agreementPublicKey: n.agreementPublicKey }));
  const users: Init["users"] = [];
  for (let i = 0; i < count; i += 16) {
    await Promise.all(Array.from({ length: Math.min(16, count - i) }, async (_, k) => {
      const user = `r${i + k}`;
      const reg = createRegistration({
        clusterId: d.clusterId, user, password: "bench", backupKey: new Uint8Array(randomBytes(32)),
        threshold: d.threshold, guessLimit: 255, nodes, scrypt: CHEAP_SCRYPT,
      });
      await vault.register(registerRequest(reg, new Uint8Array(randomBytes(16))), { deadline: new Date(Date.now() + 30_000) });
      users[i + k] = { user, resetKey: reg.resetPrivateKey.toString(16) };
    }));
  }
  return users;
}

/** The forked load generators, each with every `clients`-th user. */
class Pool {
  private constructor(readonly procs: ChildProcess[]) {}

  static async start(clients: number, init: Omit<Init, "users">, users: Init["users"]): Promise<Pool> {
    const procs = Array.from({ length: clients }, () => fork(join(import.meta.dirname, "recovery-client.ts"), [], { execArgv: ["--import", "tsx"] }));
    const pool = new Pool(procs);
    await Promise.all(procs.map((p, c) => pool.ask(p, { init: { ...init, users: users.filter((_, i) => i % clients === c) } })));
    return pool;
  }

  private ask<T>(p: ChildProcess, msg: object): Promise<T> {
    return new Promise((res, rej) => {
      const exited = (code: number | null) => rej(new Error(`load generator exited (${code})`));
      p.once("exit", exited);
      p.once("message", (m) => {
        p.off("exit", exited);
        res(((m as { result?: T }).result ?? m) as T);
      });
      p.send(msg);
    });
  }

  /** Runs the job on every client (a closed loop's loops or a paced rate split among them); merges the results. */
  async run(job: Job): Promise<JobResult> {
    const n = this.procs.length;
    const share = (c: number): Job => job.kind === "closed"
      ? { ...job, loops: Math.floor(job.loops / n) + (c < job.loops % n ? 1 : 0) }
      : { ...job, rate: job.rate / n };
    const idle = (j: Job) => j.kind === "closed" && j.loops === 0;
    const parts = await Promise.all(this.procs.map((p, c) => (idle(share(c)) ? undefined : this.ask<JobResult>(p, { job: share(c) }))));
    const rs = parts.filter((r) => r !== undefined);
    const errs = rs.map((r) => r.firstError).filter((e) => e !== undefined);
    return {
      n: rs.reduce((a, r) => a + r.n, 0), errors: rs.reduce((a, r) => a + r.errors, 0), ...(errs[0] === undefined ? {} : { firstError: errs[0] }),
      seconds: Math.max(...rs.map((r) => r.seconds)), evaluates: rs.reduce((a, r) => a + r.evaluates, 0),
      phases: [0, 1, 2, 3].map((i) => rs.reduce((a, r) => a + r.phases[i]!, 0)),
      server: rs.flatMap((r) => r.server).sort((a, b) => a - b), e2e: rs.flatMap((r) => r.e2e).sort((a, b) => a - b),
    };
  }

  async stop(): Promise<void> {
    await Promise.all(this.procs.map((p) => stopChild(p)));
  }

  killNow(): void {
    for (const p of this.procs) p.kill("SIGKILL");
  }
}

interface Row { label: string; r: JobResult; leader: number; follower: number; clients: number; busiest: number; load: string; handlers: string }

/** The latency histograms of a recovery's handlers, in its order, with the HSM's part of an Evaluate (node/server/metrics.ts): label, metric, series. */
const HANDLER_SERIES = [
  ["info", "bkv_grpc_request_seconds", 'method="GetRecordInfo"'],
  ["begin", "bkv_grpc_request_seconds", 'method="BeginRecovery"'],
  ["evaluate", "bkv_grpc_request_seconds", 'method="Evaluate"'],
  ["of which HSM", "bkv_hsm_evaluation_seconds", undefined],
  ["confirm", "bkv_grpc_request_seconds", 'method="ConfirmRecovery"'],
] as const;

/** Per node (leader first), each HANDLER_SERIES histogram's running sum (s) and count. */
type HandlerTimes = Array<Array<{ sum: number; count: number }>>;

async function handlerTimes(cluster: LocalCluster, ids: readonly number[]): Promise<HandlerTimes> {
  return Promise.all(ids.map(async (id) => {
    const text = await cluster.metricsOf(id);
    return HANDLER_SERIES.map(([, metric, series]) => histogramOf(text, metric, series));
  }));
}

/** Mean ms per call between two handlerTimes, as "info 1.2 / 2.0 / 2.1, begin …" (leader / followers), or "–" where none. */
function handlerMeans(before: HandlerTimes, after: HandlerTimes): string {
  return HANDLER_SERIES.map(([label], h) => `${label} ${after.map((node, n) => {
    const count = node[h]!.count - before[n]![h]!.count;
    return count === 0 ? "–" : fmt(((node[h]!.sum - before[n]![h]!.sum) * 1000) / count, 2);
  }).join(" / ")}`).join(", ");
}

async function measure(label: string, pool: Pool, cluster: LocalCluster, job: Job): Promise<Row> {
  const before = load();
  const leader = await cluster.leaderId();
  const nodePids = pidsLeaderFirst(cluster, leader);
  const ids = [leader, ...cluster.nodes.map((n) => n.id).filter((id) => id !== leader)];
  const clientPids = pool.procs.map((p) => p.pid);
  const times = await handlerTimes(cluster, ids);
  const meter = new CpuMeter([...nodePids, ...clientPids]);
  const r = await pool.run(job);
  const handlers = handlerMeans(times, await handlerTimes(cluster, ids));
  const per = meter.perCall(Math.max(1, r.n)).servers;
  const clients = per.slice(nodePids.length);
  const row = {
    label, r, leader: per[0]!, follower: (per[1]! + per[2]!) / 2, clients: clients.reduce((a, b) => a + b, 0),
    busiest: (Math.max(...clients) * r.n) / 1000 / r.seconds, load: `${before} → ${load()}`, handlers,
  };
  console.error(`${label}: ${fmt(r.n / r.seconds, 0)}/s, server-side p50 ${fmt(quantile(r.server, 0.5))} ms p99 ${fmt(quantile(r.server, 0.99))} ms, ` +
    `errors ${r.errors}${r.firstError === undefined ? "" : ` (${r.firstError})`}, busiest client ${fmt(row.busiest * 100, 0)}%, load ${row.load}`);
  return row;
}

const fmt = (v: number, d = 1) => (Number.isFinite(v) ? v.toFixed(d) : "–");

function printRows(rows: Row[]): void {
  console.log("\n| row | recoveries/s | server-side p50 ms | p99 ms | mean ms: info / begin / evaluate / confirm | end-to-end p50 ms | p99 ms " +
    "| CPU ms per recovery: leader / follower / clients | busiest client | errors | load (1 min) |");
  console.log("|---|---:|---:|---:|---|---:|---:|---|---:|---:|---|");
  for (const { label, r, ...x } of rows) {
    console.log(`| ${label} | ${fmt(r.n / r.seconds, 0)} | ${fmt(quantile(r.server, 0.5))} | ${fmt(quantile(r.server, 0.99))} | ` +
      `${r.phases.map((p) => fmt(p / r.n)).join(" / ")} | ${fmt(quantile(r.e2e, 0.5))} | ${fmt(quantile(r.e2e, 0.99))} | ${[x.leader, x.follower, x.clients].map((c) => fmt(c, 2)).join(" / ")} | ` +
      `${fmt(x.busiest * 100, 0)}% | ${r.errors} | ${x.load} |`);
  }
  console.log("\nMean ms inside each node's handler per call (leader / followers; the rest of a phase is the network, the client and the wait for the slowest node):");
  for (const { label, handlers } of rows) console.log(`- ${label}: ${handlers}`);
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      seconds: { type: "string", default: "10" }, rounds: { type: "string", default: "1" }, inflight: { type: "string", default: "1,8,32,64" },
      clients: { type: "string", default: "1" }, "hsm-seconds": { type: "string", default: "5" },
    },
  });
  const seconds = Number(values.seconds);
  const inFlights = values.inflight.split(",").map(Number);
  const hsmSeconds = Number(values["hsm-seconds"]);
  let cluster: LocalCluster | undefined;
  let pool: Pool | undefined;
  const stopAll = async () => {
    await pool?.stop();
    await stopCluster(cluster);
    [pool, cluster] = [undefined, undefined];
  };
  const cleanup = cleanupOnExit(stopAll, () => { pool?.killNow(); killClusterNow(cluster); });
  try {
    console.error("HSM alone ...");
    const hsmBefore = await hsmAlone(hsmSeconds);
    console.error(`${fmt(hsmBefore, 0)} evaluations/s; starting the cluster ...`);
    cluster = await LocalCluster.start({ clusterId: "bench-recovery" });
    const d = await cluster.descriptor();
    const users = await registerUsers(cluster, Math.max(...inFlights));
    const leader = await cluster.leaderId();
    pool = await Pool.start(Number(values.clients), {
      nodes: cluster.nodes.map((n) => n.client), leader: cluster.nodes.findIndex((n) => n.id === leader),
      caFile: join(cluster.dir, "certs/ca.crt"), clusterId: d.clusterId, points: 20_000, devKeyFile: join(cluster.dir, "dev-issuer.key.json"),
    }, users);
    await pool.run({ kind: "closed", loops: Math.min(8, users.length), seconds: Math.min(2, seconds) }); // warm-up
    const rows: Row[] = [];
    for (let round = 1; round <= Number(values.rounds); round++) {
      for (const k of inFlights) rows.push(await measure(`${k} in flight, round ${round}`, pool, cluster, { kind: "closed", loops: k, seconds }));
    }
    const best = Math.max(...rows.map((x) => x.r.n / x.r.seconds));
    rows.push(await measure(`paced at ${fmt(best / 2, 0)}/s (half the best)`, pool, cluster, { kind: "paced", rate: best / 2, seconds }));
    await stopAll();
    console.error("HSM alone again ...");
    const hsmAfter = await hsmAlone(hsmSeconds);
    const evaluates = rows.reduce((a, x) => a + x.r.evaluates, 0) / rows.reduce((a, x) => a + x.r.n, 0);
    report(rows, { seconds, threshold: d.threshold, n: d.nodes.length, hsmBefore, hsmAfter, evalsPerRecovery: evaluates, clients: Number(values.clients) });
  } finally {
    await cleanup();
  }
}

function report(rows: Row[], x: { seconds: number; threshold: number; n: number; hsmBefore: number; hsmAfter: number; evalsPerRecovery: number; clients: number }): void {
  const e = (x.hsmBefore + x.hsmAfter) / 2;
  const asked = x.n; // client/sdk/evaluations.ts asks every share holder; every node holds a share
  const L = (e * x.n) / asked;
  const R = Math.max(...rows.filter((r) => !r.label.startsWith("paced")).map((r) => r.r.n / r.r.seconds));
  console.log(`machine: ${cpus().length} × ${cpus()[0]?.model ?? "?"}, node ${process.version}; ${x.seconds} s per row, ${x.clients} load generator process(es)`);
  console.log(`HSM alone (the worker pool with the node's defaults, ${HSM_IN_FLIGHT} in flight): ${fmt(x.hsmBefore, 0)}/s before, ${fmt(x.hsmAfter, 0)}/s after; e = ${fmt(e, 0)}/s`);
  console.log(`cluster: n = ${x.n}, t = ${x.threshold}; Evaluate calls a recovery makes: ${asked} (every share holder, as the SDK asks); measured ${fmt(x.evalsPerRecovery, 2)} per recovery (retries included)`);
  printRows(rows);
  console.log(`\nrecoveries/s: ${fmt(R, 0)}, hsm-bound: ${fmt(L, 0)}, ratio: ${fmt(R / L, 2)}`);
}

await main();
