// The node's HSM (worker threads with blocking calls) on a real SoftHSM token,
// alone in its process so that the pool owns the module: it restarts the
// module every `recycleAfter` operations (SoftHSM 2.6 frees destroyed session
// objects only at C_Finalize); the old threads serve while the new ones load,
// calls made during the switch wait and succeed, and a module that cannot
// come back fails calls with a typed error, not a hang.
import test from "ava";
import { readFileSync, readdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { Worker } from "node:worker_threads";
import { HsmError, HsmWorkerPool, restartInterval } from "../../node/hsm/index.js";
import { whenLoaded } from "../../node/hsm/worker-pool.js";
import { waitFor } from "../../testkit/cluster.js";
import { Point, createToken, randomPoint, randomScalar, wrapShare, type TestToken } from "../../testkit/hsm.js";

let token: TestToken;
test.before(() => { token = createToken("pool"); });
test.after.always(() => token?.remove());

function job(agreement: Uint8Array) {
  const k = randomScalar();
  const B = randomPoint();
  return { blob: wrapShare(agreement, k), b: B.toBytes(true), K: Point.BASE.multiply(k).toBytes(true), expected: Buffer.from(B.multiply(k).toBytes(true)) };
}

test.serial("the module is restarted after recycleAfter operations; the old threads serve while the new ones load; calls during a switch wait", async (t) => {
  const pool = await HsmWorkerPool.open(token.config, { threads: 2, recycleAfter: 40 });
  try {
    t.true(pool.keysGenerated, "the first open of a new token generated its keys");
    const one = async () => {
      const j = job(pool.agreementPublicKey);
      t.deepEqual(Buffer.from(await pool.evaluate(j.blob, j.b, j.K)), j.expected);
    };
    let calls = 0;
    let servedPastThreshold = 0;
    for (; pool.stats.recycles < 2 && calls < 5000; calls++) {
      const restartAt = pool.stats.restartAt;
      t.true(restartAt > 20 && restartAt <= 40, `the interval ${restartAt} is in (20, 40]`);
      await one();
      if (pool.stats.operations > restartAt) servedPastThreshold++;
    }
    t.is(pool.stats.recycles, 2, `two restarts in ${calls} calls`);
    t.true(servedPastThreshold > 0, "calls went on, on the old module, while the new threads loaded");
    t.true(pool.stats.lastRestartMs > 0);
    // Bursts of 40 at once: a switch waits for the calls in flight; those that arrive during it wait for it.
    for (let burst = 0; pool.stats.recycles < 3 && burst < 200; burst++) await Promise.all(Array.from({ length: 40 }, one));
    t.is(pool.stats.recycles, 3);
    t.true(pool.keysGenerated, "module restarts, which find the keys, do not change it");
    await pool.sign(new Uint8Array(32));
    const mem = await pool.memory();
    t.true(mem.heapUsed > 0 && mem.heapTotal >= mem.heapUsed, "the worker threads' isolates are measured");
  } finally {
    await pool.close();
  }
  const again = await HsmWorkerPool.open(token.config, { threads: 1 });
  t.deepEqual(Buffer.from(again.agreementPublicKey).length, 65, "the token opens again after the pool closed");
  t.false(again.keysGenerated, "a later open finds the keys");
  await again.close();
});

test("restart intervals are drawn in (recycleAfter/2, recycleAfter], anew after each restart; 0 never restarts", (t) => {
  t.is(restartInterval(40, () => 0), 40);
  t.is(restartInterval(40, () => 0.5), 30);
  t.is(restartInterval(40, () => 0.999999), 21);
  t.is(restartInterval(1, () => 0.9), 1, "an interval of one operation stays one");
  t.is(restartInterval(20_000, () => 0.75), 12_500);
  t.is(restartInterval(0, () => 0.5), 0);
  t.throws(() => restartInterval(40, () => 1), { instanceOf: HsmError, message: /random\(\) must be in \[0, 1\)/ });
  const seen = new Set(Array.from({ length: 2000 }, () => restartInterval(20_000, Math.random)));
  t.true([...seen].every((n) => n > 10_000 && n <= 20_000));
  t.true(Math.max(...seen) - Math.min(...seen) > 9_000, "intervals spread over the range: nodes that count the same operations restart apart");
});

test.serial("a pool restarts at the interval it drew, then draws the next", async (t) => {
  const draws = [0.5, 0];
  const pool = await HsmWorkerPool.open(token.config, { threads: 1, recycleAfter: 40, random: () => draws.shift() ?? 0 });
  try {
    t.is(pool.stats.restartAt, 30);
    const j = job(pool.agreementPublicKey);
    for (let i = 0; i < 29; i++) await pool.evaluate(j.blob, j.b, j.K);
    t.is(pool.stats.recycles, 0, "not before its 30th operation");
    await pool.evaluate(j.blob, j.b, j.K);
    await waitFor(() => (pool.stats.recycles === 1 ? true : undefined), "the restart after 30 operations", 30_000);
    t.is(pool.stats.restartAt, 40, "the next interval is drawn anew");
  } finally {
    await pool.close();
  }
});

test.serial("an evaluateSigned counts as two operations (an evaluation and a signature) toward the restart", async (t) => {
  const pool = await HsmWorkerPool.open(token.config, { threads: 1, recycleAfter: 0 });
  try {
    const j = job(pool.agreementPublicKey);
    await pool.evaluate(j.blob, j.b, j.K);
    t.is(pool.stats.operations, 1);
    await pool.evaluateSigned(j.blob, j.b, j.K, { clusterId: "c1", user: "alice", version: 1, attemptId: 1n, nodeId: 1 });
    t.is(pool.stats.operations, 3);
  } finally {
    await pool.close();
  }
});

/** This process's threads now (Linux /proc). */
function threads(): number {
  return Number(/^Threads:\s+(\d+)$/m.exec(readFileSync("/proc/self/status", "latin1"))?.[1]);
}

test.serial("module restarts leave no thread behind: the process has as many threads after five restarts as after the first", async (t) => {
  const pool = await HsmWorkerPool.open(token.config, { threads: 2, recycleAfter: 10 });
  try {
    const until = async (recycles: number) => {
      for (let calls = 0; pool.stats.recycles < recycles && calls < 2000; calls++) {
        const j = job(pool.agreementPublicKey);
        await pool.evaluate(j.blob, j.b, j.K);
      }
      t.is(pool.stats.recycles, recycles);
    };
    await until(1);
    const after1 = threads();
    t.true(after1 > 2, `threads counted: ${after1}`);
    await until(5);
    // A stopped worker's thread is joined once terminate() resolved; its loader thread (tsx) may end just after.
    const settled = await waitFor(() => (threads() <= after1 ? threads() : undefined), `threads back to ${after1} (now ${threads()})`, 20_000);
    t.true(settled <= after1);
  } finally {
    await pool.close();
  }
});

test.serial("a module that cannot restart (the token's files are gone) fails calls with an HsmError", async (t) => {
  const other = createToken("pool-gone");
  t.teardown(() => other.remove());
  const pool = await HsmWorkerPool.open(other.config, { threads: 2, recycleAfter: 5 });
  try {
    const jobs = Array.from({ length: 5 }, () => job(pool.agreementPublicKey));
    await Promise.all(jobs.map((j) => pool.evaluate(j.blob, j.b, j.K)));
    const tokens = join(other.dir, "tokens");
    for (const d of readdirSync(tokens)) rmSync(join(tokens, d), { recursive: true, force: true });
    // The restart due after 5 operations opens the token once its new threads have loaded: then it fails.
    await waitFor(() => pool.stats.operations === 0, "the module restart", 60_000);
    const j = job(pool.agreementPublicKey);
    const err = await t.throwsAsync(pool.evaluate(j.blob, j.b, j.K), { instanceOf: HsmError });
    t.regex(err!.code, /TOKEN_NOT_FOUND|MODULE_LOAD_FAILED|HSM_ERROR/);
    await t.throwsAsync(pool.sign(new Uint8Array(32)), { instanceOf: HsmError }, "still failing, still typed");
  } finally {
    await pool.close();
  }
});

test.serial("a pool whose openAfter rejects stops its threads and never opens the token: a later open generates the keys", async (t) => {
  const fresh = createToken("pool-gate");
  t.teardown(() => fresh.remove());
  const refused = new Error("the start failed before its bootstrap");
  const err = await t.throwsAsync(HsmWorkerPool.open(fresh.config, { threads: 2 }, Promise.reject(refused)));
  t.is(err, refused, "open rejects with the gate's reason");
  const pool = await HsmWorkerPool.open(fresh.config, { threads: 1 }, Promise.resolve());
  try {
    t.true(pool.keysGenerated, "the refused open left the token without keys");
  } finally {
    await pool.close();
  }
});

test("a worker thread that ends before its code loads fails its start with a typed error, not a hang", async (t) => {
  const exits = new Worker("process.exit(3)", { eval: true });
  const e1 = await t.throwsAsync(whenLoaded(exits), { instanceOf: HsmError });
  t.regex(e1.message, /exited \(code 3\) before its code loaded/);
  const throws = new Worker("throw new Error('no module here')", { eval: true });
  const e2 = await t.throwsAsync(whenLoaded(throws), { instanceOf: HsmError });
  t.regex(e2.message, /no module here/);
  const loads = new Worker("require('node:worker_threads').parentPort.postMessage({ id: 0, loaded: true })", { eval: true });
  t.is(await whenLoaded(loads), loads);
  t.is(loads.listenerCount("exit") + loads.listenerCount("error") + loads.listenerCount("message"), 0, "no start listener is left on a loaded thread");
  await loads.terminate();
});
