import { readdirSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import test from "ava";
import { ClusterStartError } from "../../chaos/cluster.js";
import { recheck } from "../../chaos/recheck.js";
import { runChaos } from "../../chaos/runner.js";
import type { ChaosTarget } from "../../chaos/target.js";
import { tempDir } from "../temp.js";

const HANG = resolve(import.meta.dirname, "fixtures/hang-forever.cjs");

// Serial: the first test hangs every node it starts through process-wide environment variables.
test.serial("a cluster that never elects a leader fails the run after the start timeout, clearly, and stops its processes", async (t) => {
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

test.serial("a cluster that does not recover after healing is a violation with a report, not a crash without a verdict", async (t) => {
  const outDir = join(tempDir(t, "bkv-chaos-norecover-"), "run");
  let target: ChaosTarget | undefined;
  const stopNodes = (line: string): void => {
    if (!line.startsWith("workload and nemesis")) return;
    // Every node stopped behind the harness's back (it resumes only what it paused): no leader after healing.
    for (const n of (target as unknown as { cluster: { nodes: { proc: { pid: number } | null }[] } }).cluster.nodes) if (n.proc) process.kill(n.proc.pid, "SIGSTOP");
  };
  const r = await runChaos({ nodes: 3, durationS: 5, seed: "norecover", outDir, recoverTimeoutMs: 4000, log: stopNodes, onTarget: (tg) => (target = tg) });
  t.true(r.violations >= 1);
  t.regex(r.summary, /FAIL recovery \(1 violation\(s\)\)\n\s+- the cluster did not recover after healing: timed out waiting for a leader and all nodes announced/);
  t.regex(r.summary, /^INTERRUPTED after \d+\.\d s: no final state/m);
  t.regex(readFileSync(join(outDir, "run.json"), "utf8"), /"notRecovered":"the cluster did not recover after healing: /);
  t.is(recheck(outDir).violations, r.violations, "recheck judges it the same way");
});
