// HSM evaluation throughput and event-loop stall per calling strategy.
//   npx tsx bench/hsm.ts   BKV_BENCH_SECONDS=N per row and round (default 3, max 15)
//                          BKV_BENCH_ROUNDS=R interleaved rounds, medians reported (default 1)
// Creates a throw-away SoftHSM token with deploy/softhsm/init-token.sh.
// bench/recovery.ts reuses withBenchToken, makeJobs and run (importing this
// file runs nothing).
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { availableParallelism, cpus, loadavg, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { monitorEventLoopDelay, performance } from "node:perf_hooks";
import pkcs11js from "pkcs11js";
import { X_TEMPLATE, ecdh, parseEvaluationInput } from "../node/hsm/evaluate.js";
import { Hsm, HsmWorkerPool, type HsmConfig } from "../node/hsm/index.js";
import { recoverEvaluatedPoint, xCoordinate as xOf } from "../proto/crypto/index.js";
import { Point, randomPoint, randomScalar, wrapShare } from "../testkit/hsm.js";

const SECONDS = Math.min(15, Number(process.env.BKV_BENCH_SECONDS ?? 3));
const ROUNDS = Math.max(1, Number(process.env.BKV_BENCH_ROUNDS ?? 1));
const CONCURRENCY = [1, 16];
const ROOT = resolve(import.meta.dirname, "..");

export interface Evaluator {
  agreementPublicKey: Uint8Array;
  evaluate(blob: Uint8Array, b: Uint8Array, k: Uint8Array): Promise<Uint8Array>;
  close(): void | Promise<void>;
}

interface Strategy {
  name: string;
  open(config: HsmConfig): Promise<Evaluator>;
}

const strategies: Strategy[] = [
  { name: "sync, token key", open: (c) => Hsm.open(c, { strategy: "sync", sessionKeyCopies: false }) },
  { name: "sync, session key copies", open: (c) => Hsm.open(c, { strategy: "sync", sessionKeyCopies: true }) },
  { name: "async, token key, 16 sessions", open: (c) => Hsm.open({ ...c, sessions: 16 }, { strategy: "async", sessionKeyCopies: false }) },
  { name: "async, copies, 16 sessions", open: (c) => Hsm.open({ ...c, sessions: 16 }, { strategy: "async", sessionKeyCopies: true }) },
  { name: "async, copies, 4 sessions (default)", open: (c) => Hsm.open(c, { strategy: "async", sessionKeyCopies: true }) },
  { name: "async, copies, 2 sessions", open: (c) => Hsm.open({ ...c, sessions: 2 }, { strategy: "async", sessionKeyCopies: true }) },
  { name: "2 worker threads (sync, copies)", open: (c) => HsmWorkerPool.open(c, { threads: 2, recycleAfter: 0 }) },
  { name: "4 worker threads (sync, copies)", open: (c) => HsmWorkerPool.open(c, { threads: 4, recycleAfter: 0 }) },
];

export interface Job { blob: Uint8Array; b: Uint8Array; k: Uint8Array; expected: Uint8Array }

export function makeJobs(agreement: Uint8Array, n: number): Job[] {
  return Array.from({ length: n }, () => {
    const k = randomScalar();
    const B = randomPoint();
    return {
      blob: wrapShare(agreement, k),
      b: B.toBytes(true),
      k: Point.BASE.multiply(k).toBytes(true),
      expected: B.multiply(k).toBytes(true),
    };
  });
}

export interface Result { rate: number; maxMs: number; p99Ms: number }

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[(s.length - 1) >> 1] as number;
}

/** Evaluations per second of `ev` at `concurrency`, each checked, for `seconds`. */
export async function run(ev: Evaluator, jobs: Job[], concurrency: number, seconds = SECONDS): Promise<Result> {
  const h = monitorEventLoopDelay({ resolution: 1 });
  const end = performance.now() + seconds * 1000;
  let done = 0;
  const loop = async (offset: number) => {
    for (let i = offset; performance.now() < end; i += concurrency) {
      const job = jobs[i % jobs.length] as Job;
      const out = await ev.evaluate(job.blob, job.b, job.k);
      if (!Buffer.from(out).equals(Buffer.from(job.expected))) throw new Error("wrong evaluation");
      done++;
      await new Promise((r) => setImmediate(r)); // each evaluation is its own macrotask, like an RPC
    }
  };
  const start = performance.now();
  h.enable();
  await Promise.all(Array.from({ length: concurrency }, (_, i) => loop(i)));
  h.disable();
  const elapsed = (performance.now() - start) / 1000;
  return { rate: done / elapsed, maxMs: h.max / 1e6, p99Ms: h.percentile(99) / 1e6 };
}

/** Median time of single blocking calls: ECDH with the token key vs. a session copy, and the JS-side work. */
async function microTimings(config: HsmConfig, jobs: Job[]): Promise<string[]> {
  const hsm = await Hsm.open({ ...config, sessions: 1 }, { strategy: "sync", sessionKeyCopies: true });
  const p11 = hsm.token.p11;
  const medianMicros = (f: () => void, n = 400) => {
    const ts: number[] = [];
    for (let i = 0; i < n; i++) { const t0 = performance.now(); f(); ts.push(performance.now() - t0); }
    return (ts.sort((a, b) => a - b)[n >> 1] as number) * 1000;
  };
  const rows: string[] = [];
  await hsm.token.withSession((s) => {
    const [copy] = (() => {
      p11.C_FindObjectsInit(s, [{ type: pkcs11js.CKA_TOKEN, value: false }]);
      try { return p11.C_FindObjects(s, 1); } finally { p11.C_FindObjectsFinal(s); }
    })();
    const pub = randomPoint().toBytes(false);
    const derive = (key: pkcs11js.Handle) => () => p11.C_DestroyObject(s, p11.C_DeriveKey(s, ecdh(pub), key, X_TEMPLATE));
    rows.push(`| ECDH, token agreement key | ${medianMicros(derive(hsm.keys.agreement.privateKey)).toFixed(0)} |`);
    if (copy !== undefined) rows.push(`| ECDH, session copy | ${medianMicros(derive(copy)).toFixed(0)} |`);
  });
  const job = jobs[0] as Job;
  const kB = Point.fromBytes(job.expected);
  const x1 = xOf(kB);
  const x2 = xOf(kB.add(Point.fromBytes(job.k)));
  rows.push(`| JS-side validation + sign recovery (noble) | ${medianMicros(() => {
    const input = parseEvaluationInput(job.blob, job.b, job.k);
    recoverEvaluatedPoint(x1, x2, input.K);
  }, 200).toFixed(0)} |`);
  hsm.close();
  return rows;
}

function machine(): string {
  const softhsm = execFileSync("softhsm2-util", ["--version"]).toString().trim();
  const pkcs11js = JSON.parse(readFileSync(join(ROOT, "node_modules/pkcs11js/package.json"), "utf8")).version;
  return [
    `- nproc: ${availableParallelism()}, CPU: ${cpus()[0]?.model ?? "unknown"}`,
    `- node ${process.version}, SoftHSM ${softhsm}, pkcs11js ${pkcs11js}, UV_THREADPOOL_SIZE ${process.env.UV_THREADPOOL_SIZE ?? "4 (default)"}`,
    `- ${SECONDS} s per row and round; each evaluation = ECDH(KEK) + unwrap + 2 ECDH + destroy, result checked`,
  ].join("\n");
}

/** Runs fn with the config of a throw-away token (deploy/softhsm/init-token.sh), removed afterwards. */
export async function withBenchToken<T>(fn: (config: HsmConfig) => Promise<T>): Promise<T> {
  const dir = mkdtempSync(join(tmpdir(), "bkv-bench-hsm-"));
  try {
    execFileSync("bash", [join(ROOT, "deploy/softhsm/init-token.sh"), dir, "bench"], { stdio: "ignore" });
    return await fn({ tokenLabel: "bench", pinFile: join(dir, "pin"), softhsmConf: join(dir, "softhsm2.conf") });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function main(config: HsmConfig): Promise<void> {
  let jobs: Job[] | undefined;
  const results = new Map<string, Result[]>(); // "strategy|concurrency" -> one result per round
  const loadBefore = loadavg()[0] ?? 0;
  for (let round = 1; round <= ROUNDS; round++) {
    for (const s of strategies) {
      const ev = await s.open(config);
      jobs ??= makeJobs(ev.agreementPublicKey, 64);
      for (const c of CONCURRENCY) {
        const r = await run(ev, jobs, c);
        const key = `${s.name}|${c}`;
        results.set(key, [...(results.get(key) ?? []), r]);
        process.stderr.write(`round ${round}: ${s.name}, ${c}: ${r.rate.toFixed(0)}/s, max ${r.maxMs.toFixed(1)} ms\n`);
      }
      await ev.close();
    }
  }
  const micro = await microTimings(config, jobs ?? []);
  console.log(machine());
  console.log(`- ${ROUNDS} interleaved round(s), medians shown; 1-min load average ${loadBefore.toFixed(1)} before, ${(loadavg()[0] ?? 0).toFixed(1)} after (other processes share the CPUs)`);
  console.log("\n| single call (median) | µs |");
  console.log("|---|---:|");
  for (const r of micro) console.log(r);
  console.log("\n| strategy | concurrency | evaluations/s | max event-loop delay (ms) | p99 delay (ms) |");
  console.log("|---|---:|---:|---:|---:|");
  for (const [key, rs] of results) {
    const [name, c] = key.split("|");
    const med = (f: (r: Result) => number) => median(rs.map(f));
    console.log(`| ${name} | ${c} | ${med((r) => r.rate).toFixed(0)} | ${med((r) => r.maxMs).toFixed(1)} | ${med((r) => r.p99Ms).toFixed(1)} |`);
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) await withBenchToken(main);
