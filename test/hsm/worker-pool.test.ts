// The node's HSM (worker threads with blocking calls) on a real SoftHSM token,
// alone in its process so that the pool owns the module: it restarts the
// module every `recycleAfter` operations (SoftHSM 2.6 frees destroyed session
// objects only at C_Finalize), calls made meanwhile wait and succeed, and a
// module that cannot come back fails calls with a typed error, not a hang.
import test from "ava";
import { readdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { HsmError, HsmWorkerPool } from "../../node/hsm/index.js";
import { Point, createToken, randomPoint, randomScalar, wrapShare, type TestToken } from "../../testkit/hsm.js";

let token: TestToken;
test.before(() => { token = createToken("pool"); });
test.after.always(() => token?.remove());

function job(agreement: Uint8Array) {
  const k = randomScalar();
  const B = randomPoint();
  return { blob: wrapShare(agreement, k), b: B.toBytes(true), K: Point.BASE.multiply(k).toBytes(true), expected: Buffer.from(B.multiply(k).toBytes(true)) };
}

test.serial("the module is restarted every recycleAfter operations; results stay right and calls during a restart wait", async (t) => {
  const pool = await HsmWorkerPool.open(token.config, { threads: 2, recycleAfter: 40 });
  try {
    const one = async () => {
      const j = job(pool.agreementPublicKey);
      t.deepEqual(Buffer.from(await pool.evaluate(j.blob, j.b, j.K)), j.expected);
    };
    for (let i = 0; i < 90; i++) await one();
    t.is(pool.stats.recycles, 2, "restarted after operations 40 and 80");
    t.is(pool.stats.operations, 10);
    // 40 at once: the restart waits for the calls in flight; those after it wait for the restart.
    await Promise.all(Array.from({ length: 40 }, one));
    await pool.sign(new Uint8Array(32));
    t.is(pool.stats.recycles, 3);
  } finally {
    await pool.close();
  }
  const again = await HsmWorkerPool.open(token.config, { threads: 1 });
  t.deepEqual(Buffer.from(again.agreementPublicKey).length, 65, "the token opens again after the pool closed");
  await again.close();
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
    const j = job(pool.agreementPublicKey);
    const err = await t.throwsAsync(pool.evaluate(j.blob, j.b, j.K), { instanceOf: HsmError });
    t.regex(err!.code, /TOKEN_NOT_FOUND|MODULE_LOAD_FAILED|HSM_ERROR/);
    await t.throwsAsync(pool.sign(new Uint8Array(32)), { instanceOf: HsmError }, "still failing, still typed");
  } finally {
    await pool.close();
  }
});
