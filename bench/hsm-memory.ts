// The node's HSM pool alone in a process (issue 12, item 5): N evaluations,
// 4 in flight, on HsmWorkerPool with the module restarted every R
// operations; every step it prints this process's RssAnon, the main
// thread's heap and external memory, and the worker threads' isolates, so
// that what module restarts and worker threads keep is told apart from the
// rest of a node. Run it twice to compare malloc settings:
//   npx tsx bench/hsm-memory.ts [--evaluations 20000] [--recycle-after 2000] [--step 2000]
//   MALLOC_ARENA_MAX=2 npx tsx bench/hsm-memory.ts ...
import { parseArgs } from "node:util";
import { HsmWorkerPool, type HsmConfig } from "../node/hsm/index.js";
import { makeJobs, withBenchToken } from "./hsm.js";
import { procMemory } from "./sample.js";

const { values: args } = parseArgs({
  options: {
    evaluations: { type: "string", default: "20000" },
    "recycle-after": { type: "string", default: "2000" },
    step: { type: "string", default: "2000" },
  },
});
const EVALUATIONS = Number(args.evaluations);
const RECYCLE_AFTER = Number(args["recycle-after"]);
const STEP = Number(args.step);
const IN_FLIGHT = 4;
const MIB = 2 ** 20;

async function main(config: HsmConfig): Promise<void> {
  const pool = await HsmWorkerPool.open(config, { threads: 2, recycleAfter: RECYCLE_AFTER, random: () => 0 }); // every RECYCLE_AFTER exactly
  const jobs = makeJobs(pool.agreementPublicKey, 64);
  console.log(`hsm-memory: ${EVALUATIONS} evaluations, module restarted every ${RECYCLE_AFTER}, MALLOC_ARENA_MAX ${process.env.MALLOC_ARENA_MAX ?? "unset"}`);
  console.log("done     anon MiB  heap used/total  external  workers heap used/total, external  restarts  last restart ms");
  let next = 0;
  const worker = async () => {
    for (let i = next++; i < EVALUATIONS; i = next++) {
      const j = jobs[i % jobs.length]!;
      await pool.evaluate(j.blob, j.b, j.k);
      if ((i + 1) % STEP === 0) await report(pool, i + 1);
    }
  };
  try {
    await Promise.all(Array.from({ length: IN_FLIGHT }, worker));
  } finally {
    await pool.close();
  }
}

async function report(pool: HsmWorkerPool, done: number): Promise<void> {
  const m = process.memoryUsage();
  const w = await pool.memory();
  const f = (x: number) => (x / MIB).toFixed(1);
  console.log(`${String(done).padEnd(8)} ${procMemory(process.pid).anon.toFixed(1).padEnd(9)} ${f(m.heapUsed)}/${f(m.heapTotal)}`.padEnd(36)
    + `${f(m.external).padEnd(9)} ${f(w.heapUsed)}/${f(w.heapTotal)}, ${f(w.external)}`.padEnd(38)
    + `${String(pool.stats.recycles).padEnd(9)} ${pool.stats.lastRestartMs.toFixed(0)}`);
}

await withBenchToken(main);
