// Fuzzing in CI (issue 10): hostile bytes and structure-aware mutations of
// every VaultService and AdminService method and of the peer stream, against
// a real 3-node cluster. Property: every answer is a canonical status other
// than INTERNAL and UNKNOWN; afterwards every node is alive and all state
// digests are equal. Budget: FUZZ_CASES (default 150) through fast-check's
// property runner (shrinks a failure), then 5x that through the concurrent
// runner of the long run (docs/fuzzing.md). FUZZ_SEED replays a run.
import test from "ava";
import fc from "fast-check";
import { LocalCluster, reportLogsOnFailure } from "../../testkit/cluster.js";
import { fuzzCase, type FuzzWorld } from "./cases.js";
import { acceptable, checkCluster, describe, prepareWorld, rawNodes, runCase, runFuzz, summaryLine, unsafe } from "./runner.js";

reportLogsOnFailure(test);

const CASES = Number(process.env.FUZZ_CASES ?? 150);
const SEED = Number(process.env.FUZZ_SEED ?? Date.now() % 2 ** 31);

let cluster: LocalCluster;
let world: FuzzWorld;

test.before(async () => {
  cluster = await LocalCluster.start();
  world = await prepareWorld(cluster);
});

test.after.always(async () => {
  await cluster?.close();
});

test.serial(`property: every answer is canonical, never INTERNAL or UNKNOWN (seed ${SEED})`, async (t) => {
  const raws = rawNodes(cluster, world);
  try {
    await fc.assert(fc.asyncProperty(fuzzCase(world), async (c) => {
      if (unsafe(c, world)) return true;
      const out = await runCase(raws, c);
      if (!acceptable(out)) throw new Error(`${describe(c)} answered ${out.code} ${out.details}`);
      return true;
    }), { numRuns: CASES, seed: SEED });
  } finally {
    for (const r of raws.values()) r.close();
  }
  await checkCluster(cluster);
  t.pass();
});

test.serial(`bulk: the long run's concurrent runner on ${CASES * 5} cases (seed ${SEED})`, async (t) => {
  const t0 = performance.now();
  const s = await runFuzz(cluster, world, { cases: CASES * 5, seed: SEED, concurrency: 16 });
  t.log(summaryLine(s, SEED, performance.now() - t0));
  t.deepEqual(s.failures, []);
  t.true(s.cases > CASES * 4, "most cases were sent");
  const { index } = await checkCluster(cluster);
  t.true(index > 0n);
});
