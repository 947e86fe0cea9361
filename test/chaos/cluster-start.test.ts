import { readdirSync } from "node:fs";
import { join, resolve } from "node:path";
import test from "ava";
import { ClusterStartError } from "../../chaos/cluster.js";
import { runChaos } from "../../chaos/runner.js";
import type { ChaosTarget } from "../../chaos/target.js";
import { tempDir } from "../temp.js";

const HANG = resolve(import.meta.dirname, "fixtures/hang-forever.cjs");

test("a cluster that never elects a leader fails the run after the start timeout, clearly, and stops its processes", async (t) => {
  for (const id of [1, 2, 3]) process.env[`BKV_E2E_NODE_ENV_${id}`] = `NODE_OPTIONS=--require=${HANG}`;
  t.teardown(() => {
    for (const id of [1, 2, 3]) delete process.env[`BKV_E2E_NODE_ENV_${id}`];
  });
  const outDir = join(tempDir(t, "bkv-chaos-noleader-"), "run");
  let target: ChaosTarget | undefined;
  const started = Date.now();
  const err = await t.throwsAsync(runChaos({ nodes: 3, durationS: 5, seed: "noleader", outDir, startTimeoutMs: 4000, log: () => {}, onTarget: (tg) => (target = tg) }), { instanceOf: ClusterStartError });
  t.true(Date.now() - started < 30_000, "no hang");
  t.regex(err!.message, /^no leader known to all 3 nodes within 4 s \(last answer: .+\); the nodes' logs: \S+node-N\.log$/);
  const pids = (target as unknown as { cluster: { nodes: { proc: { pid: number } | null }[] } }).cluster.nodes.map((n) => n.proc?.pid);
  t.deepEqual(pids, [undefined, undefined, undefined], "every node process was stopped and forgotten");
  t.deepEqual(readdirSync(join(outDir, "cluster")).filter((f) => /^(data|hsm)-|^certs$|key/.test(f)), [], "no data dir, token or key left");
});
