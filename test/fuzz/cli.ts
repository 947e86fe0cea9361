// The long fuzzing run (docs/fuzzing.md):
//
//   npm run fuzz -- --cases 1000000 [--seed N] [--concurrency 32] [--keep] [--help]
//
// Starts a real 3-node cluster (testkit/cluster.ts), sends the cases of
// test/fuzz/cases.ts through the concurrent raw runner, checks the cluster
// afterwards (every 100,000 cases and at the end), prints progress and one
// closing line: "fuzz: cases=N failures=F ...". Exit status 1 on any failure,
// 2 on a usage error (an unknown flag is one: a mistyped --cases must not
// run 10,000 cases quietly).
import { parseArgs } from "node:util";
import { LocalCluster } from "../../testkit/cluster.js";
import { quietIpServerNameWarning } from "../../client/cli/warnings.js";
import { checkCluster, prepareWorld, runFuzz, summaryLine, type FuzzSummary } from "./runner.js";

const USAGE = `usage: npm run fuzz -- [--cases N] [--seed N] [--concurrency N] [--keep]
  --cases        cases to send (default: FUZZ_CASES, else 10000)
  --seed         the cases' seed (default: FUZZ_SEED, else from the clock); printed at the start with the replay command
  --concurrency  cases in flight (default 32)
  --keep         keep the cluster's data dirs and logs`;

/** The run's options from argv; null for --help. Throws on an unknown flag or a value that is not a non-negative integer. */
function options(argv: string[]): { cases: number; seed: number; concurrency: number; keep: boolean } | null {
  const { values } = parseArgs({ args: argv, strict: true, options: {
    cases: { type: "string" }, seed: { type: "string" }, concurrency: { type: "string" }, keep: { type: "boolean" }, help: { type: "boolean", short: "h" },
  } });
  if (values.help) return null;
  const int = (name: string, v: string | undefined, dflt: number): number => {
    if (v === undefined) return dflt;
    const n = Number(v);
    if (!Number.isSafeInteger(n) || n < 0) throw new Error(`--${name} needs a non-negative integer (got ${JSON.stringify(v)})`);
    return n;
  };
  return {
    cases: int("cases", values.cases ?? process.env.FUZZ_CASES, 10_000),
    seed: int("seed", values.seed ?? process.env.FUZZ_SEED, Date.now() % 2 ** 31),
    concurrency: Math.max(1, int("concurrency", values.concurrency, 32)),
    keep: values.keep === true,
  };
}

async function main(): Promise<number> {
  let o: ReturnType<typeof options>;
  try {
    o = options(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`fuzz: ${(err as Error).message}\n${USAGE}\n`);
    return 2;
  }
  if (o === null) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const { cases, seed, concurrency } = o;
  console.log(`fuzz: seed ${seed} (replay: npm run fuzz -- --cases ${cases} --seed ${seed} --concurrency ${concurrency})`);
  const chunk = 100_000;
  // Evaluate of an attempt id that is never applied waits evaluateWaitMs before UNAVAILABLE: the fuzzer's
  // random ids would spend the run waiting (2 s each by default), so the long run shortens it (reads wait as long: not below what a read index takes under load).
  const cluster = await LocalCluster.start({ nodeConfig: { evaluateWaitMs: 500 } });
  const t0 = performance.now();
  const total: FuzzSummary = { cases: 0, skipped: 0, failures: [], codes: new Map(), methods: new Map() };
  let healthy = true;
  try {
    const world = await prepareWorld(cluster);
    for (let k = 0; total.cases + total.skipped < cases && healthy; k++) {
      const s = await runFuzz(cluster, world, {
        cases: Math.min(chunk, cases - total.cases - total.skipped), seed: seed + k * 1000, concurrency,
        progress: (p) => console.log(`... ${total.cases + p.cases} cases, ${total.failures.length + p.failures.length} failures, ${((performance.now() - t0) / 1000).toFixed(0)} s`),
      });
      merge(total, s);
      for (const f of s.failures.slice(0, 20)) console.log(`FAILURE ${f.outcome.code} ${f.outcome.details}: ${f.what}`);
      const check = await checkCluster(cluster).then((c) => `applied ${c.index}, digest ${c.digest.slice(0, 16)}`, (err: unknown) => { healthy = false; return String(err); });
      console.log(`after ${total.cases} cases: ${healthy ? "cluster healthy" : "CLUSTER UNHEALTHY"}: ${check}`);
    }
  } finally {
    if (o.keep) process.env.BKV_E2E_KEEP = "1";
    await cluster.close();
  }
  for (const [m, x] of [...total.methods].sort((a, b) => b[1].ms - a[1].ms)) console.log(`  ${m}: ${x.n} cases, mean ${(x.ms / x.n).toFixed(1)} ms`);
  console.log(summaryLine(total, seed, performance.now() - t0) + (healthy ? "" : " CLUSTER UNHEALTHY"));
  return total.failures.length === 0 && healthy ? 0 : 1;
}

function merge(into: FuzzSummary, s: FuzzSummary): void {
  into.cases += s.cases;
  into.skipped += s.skipped;
  into.failures.push(...s.failures);
  for (const [c, n] of s.codes) into.codes.set(c, (into.codes.get(c) ?? 0) + n);
  for (const [m, x] of s.methods) {
    const have = into.methods.get(m) ?? { n: 0, ms: 0 };
    into.methods.set(m, { n: have.n + x.n, ms: have.ms + x.ms });
  }
}

quietIpServerNameWarning();
main().then((code) => process.exit(code), (err: unknown) => {
  console.error(err);
  process.exit(2);
});
