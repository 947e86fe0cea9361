// The long fuzzing run (docs/fuzzing.md):
//
//   npm run fuzz -- --cases 1000000 [--seed N] [--concurrency 32] [--keep]
//
// Starts a real 3-node cluster (testkit/cluster.ts), sends the cases of
// test/fuzz/cases.ts through the concurrent raw runner, checks the cluster
// afterwards (every 100,000 cases and at the end), prints progress and one
// closing line: "fuzz: cases=N failures=F ...". Exit status 1 on any failure.
import { LocalCluster } from "../../testkit/cluster.js";
import { checkCluster, prepareWorld, runFuzz, summaryLine, type FuzzSummary } from "./runner.js";

function arg(name: string, dflt: number): number {
  const i = process.argv.indexOf(`--${name}`);
  const v = i < 0 ? undefined : process.argv[i + 1];
  if (v === undefined) return dflt;
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < 0) throw new Error(`--${name} needs a non-negative integer (got ${JSON.stringify(v)})`);
  return n;
}

async function main(): Promise<number> {
  const cases = arg("cases", Number(process.env.FUZZ_CASES ?? 10_000));
  const seed = arg("seed", Number(process.env.FUZZ_SEED ?? Date.now() % 2 ** 31));
  const concurrency = arg("concurrency", 32);
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
    if (process.argv.includes("--keep")) process.env.BKV_E2E_KEEP = "1";
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

main().then((code) => process.exit(code), (err: unknown) => {
  console.error(err);
  process.exit(2);
});
