// Evaluation in one real SoftHSM token: correct results, typed errors for
// every kind of bad input, and no session object left behind.
import test from "ava";
import { createCipheriv, generateKeyPairSync } from "node:crypto";
import { G, decodePoint, sharePkcs8, verifyEvaluationSignature, xCoordinate } from "../../proto/crypto/index.js";

/** The order n of P-256. */
const CURVE_ORDER = 0xffffffff00000000ffffffffffffffffbce6faada7179e84f3b9cac2fc632551n;
import { Hsm, HsmError, HsmWorkerPool, type HsmErrorCode, type NodeHsm } from "../../node/hsm/index.js";
import {
  Point, countSessionObjects, createToken, randomPoint, randomScalar, wrapShare, type TestToken,
} from "../../testkit/hsm.js";

let token: TestToken;
let hsm: Hsm;
let baseline: number;

test.before(async () => {
  token = createToken("eval");
  hsm = await Hsm.open(token.config);
  baseline = await countSessionObjects(hsm);
});

test.after.always(() => {
  hsm?.close();
  token?.remove();
});

function fixture(k = randomScalar()) {
  const B = randomPoint();
  return {
    k, B,
    blob: wrapShare(hsm.agreementPublicKey, k),
    b: B.toBytes(true),
    K: Point.BASE.multiply(k).toBytes(true),
    expected: Buffer.from(B.multiply(k).toBytes(true)),
  };
}

async function rejectsWith(t: import("ava").ExecutionContext, p: Promise<unknown>, code: HsmErrorCode): Promise<HsmError> {
  const err = await t.throwsAsync(p, { instanceOf: HsmError });
  t.is(err?.code, code, err?.message);
  t.is(await countSessionObjects(hsm), baseline, "no session object left behind");
  return err as HsmError;
}

test.serial("evaluate returns k_i·B and leaves no session object", async (t) => {
  const f = fixture();
  const out = await hsm.evaluate(f.blob, f.b, f.K);
  t.is(out.length, 33);
  t.deepEqual(Buffer.from(out), f.expected);
  t.is(await countSessionObjects(hsm), baseline);
});

test.serial("evaluate accepts uncompressed B and K_i", async (t) => {
  const f = fixture();
  const out = await hsm.evaluate(f.blob, f.B.toBytes(false), Point.BASE.multiply(f.k).toBytes(false));
  t.deepEqual(Buffer.from(out), f.expected);
});

test.serial("32 concurrent evaluations share the session pool and are all correct", async (t) => {
  const fs = Array.from({ length: 32 }, () => fixture());
  const outs = await Promise.all(fs.map((f) => hsm.evaluate(f.blob, f.b, f.K)));
  outs.forEach((o, i) => t.deepEqual(Buffer.from(o), fs[i]?.expected));
  t.is(await countSessionObjects(hsm), baseline);
});

test.serial("a wrap of a different key than K_i commits to fails with SHARE_MISMATCH", async (t) => {
  const f = fixture();
  const other = wrapShare(hsm.agreementPublicKey, randomScalar());
  await rejectsWith(t, hsm.evaluate(other, f.b, f.K), "SHARE_MISMATCH");
});

test.serial("a tampered wrapped key fails with WRAPPED_KEY_INVALID", async (t) => {
  const f = fixture();
  for (const at of [66, 80, f.blob.length - 1]) {
    const bad = Uint8Array.from(f.blob);
    bad[at] = (bad[at] as number) ^ 0x01;
    await rejectsWith(t, hsm.evaluate(bad, f.b, f.K), "WRAPPED_KEY_INVALID");
  }
});

test.serial("a wrapped key on another curve fails with WRAPPED_KEY_INVALID", async (t) => {
  const f = fixture();
  const e = randomScalar();
  const kek = xCoordinate(decodePoint(hsm.agreementPublicKey).multiply(e));
  const p384 = generateKeyPairSync("ec", { namedCurve: "P-384" }).privateKey.export({ format: "der", type: "pkcs8" });
  const c = createCipheriv("id-aes256-wrap-pad", kek, Buffer.from("a65959a6", "hex"));
  const blob = Buffer.concat([Buffer.from([1]), G.multiply(e).toBytes(false), c.update(p384), c.final()]);
  const err = await rejectsWith(t, hsm.evaluate(blob, f.b, f.K), "WRAPPED_KEY_INVALID");
  t.regex(err.message, /P-256/);
});

/** A v1 blob wrapping `pkcs8` as it stands (no check of the key inside) to this token's agreement key. */
function wrapRaw(pkcs8: Uint8Array): Buffer {
  const e = randomScalar();
  const kek = xCoordinate(decodePoint(hsm.agreementPublicKey).multiply(e));
  const c = createCipheriv("id-aes256-wrap-pad", kek, Buffer.from("a65959a6", "hex"));
  return Buffer.concat([Buffer.from([1]), G.multiply(e).toBytes(false), c.update(pkcs8), c.final()]);
}

/** The PKCS#8 of share 1 with its 32-byte scalar replaced by `d` (which may be out of range: 0, n). */
function pkcs8WithScalar(d: bigint): Uint8Array {
  const one = Buffer.from(sharePkcs8(1n));
  const at = one.indexOf(Buffer.from(`0420${"00".repeat(31)}01`, "hex")) + 2;
  const out = Uint8Array.from(one);
  out.set(Buffer.from(d.toString(16).padStart(64, "0"), "hex"), at);
  return out;
}

// Found by test/security/raw-client.test.ts: a client registers a record
// whose share for this node is the scalar 0 (or n); SoftHSM unwraps it, then
// fails the derive with CKR_GENERAL_ERROR, which was reported as HSM_ERROR
// (UNAVAILABLE, "this node's HSM failed"): a client's bad input as a fault of
// the node, retried for ever. 0·G is the identity, never a valid K_i.
test.serial("a wrapped P-256 key whose scalar is 0 or the group order fails with SHARE_MISMATCH, not as an HSM failure", async (t) => {
  const f = fixture();
  for (const d of [0n, CURVE_ORDER]) {
    const err = await rejectsWith(t, hsm.evaluate(wrapRaw(pkcs8WithScalar(d)), f.b, f.K), "SHARE_MISMATCH");
    t.notRegex(err.message, /HSM_ERROR/);
  }
  // The token still evaluates (the failure was the share's, not the token's).
  t.deepEqual(Buffer.from(await hsm.evaluate(f.blob, f.b, f.K)), f.expected);
});

test.serial("a different valid ephemeral key fails with WRAPPED_KEY_INVALID", async (t) => {
  const f = fixture();
  const bad = Uint8Array.from(f.blob);
  bad.set(randomPoint().toBytes(false), 1);
  await rejectsWith(t, hsm.evaluate(bad, f.b, f.K), "WRAPPED_KEY_INVALID");
});

test.serial("an off-curve ephemeral key fails with INVALID_POINT before reaching the token", async (t) => {
  const f = fixture();
  const bad = Uint8Array.from(f.blob);
  bad[65] = (bad[65] as number) ^ 0x01; // last byte of y
  await rejectsWith(t, hsm.evaluate(bad, f.b, f.K), "INVALID_POINT");
});

test.serial("invalid points and the identity for B and K_i fail with INVALID_POINT", async (t) => {
  const f = fixture();
  const offCurve = Uint8Array.from(f.B.toBytes(false));
  offCurve[64] = (offCurve[64] as number) ^ 0x01;
  const badPrefix = Uint8Array.from(f.b);
  badPrefix[0] = 0x05;
  const minusG = Point.BASE.negate().toBytes(true);
  await rejectsWith(t, hsm.evaluate(f.blob, offCurve, f.K), "INVALID_POINT");
  await rejectsWith(t, hsm.evaluate(f.blob, badPrefix, f.K), "INVALID_POINT");
  await rejectsWith(t, hsm.evaluate(f.blob, new Uint8Array(33), f.K), "INVALID_POINT");
  await rejectsWith(t, hsm.evaluate(f.blob, minusG, f.K), "INVALID_POINT");
  await rejectsWith(t, hsm.evaluate(f.blob, f.b, offCurve), "INVALID_POINT");
  const identity = await rejectsWith(t, hsm.evaluate(f.blob, new Uint8Array([0]), f.K), "INVALID_POINT"); // SEC1 identity
  t.regex(identity.message, /identity/);
});

test.serial("wrong-length inputs and an unknown blob version fail with INVALID_INPUT", async (t) => {
  const f = fixture();
  const v3 = Uint8Array.from(f.blob);
  v3[0] = 3;
  const e1 = await rejectsWith(t, hsm.evaluate(f.blob.subarray(0, f.blob.length - 3), f.b, f.K), "INVALID_INPUT");
  t.regex(e1.message, /wrapped key/);
  await rejectsWith(t, hsm.evaluate(f.blob.subarray(0, 70), f.b, f.K), "INVALID_INPUT");
  await rejectsWith(t, hsm.evaluate(v3, f.b, f.K), "INVALID_INPUT");
  await rejectsWith(t, hsm.evaluate(new Uint8Array(0), f.b, f.K), "INVALID_INPUT");
  const e2 = await rejectsWith(t, hsm.evaluate(f.blob, f.b.subarray(1), f.K), "INVALID_INPUT");
  t.regex(e2.message, /blinded element B/);
  await rejectsWith(t, hsm.evaluate(f.blob, f.b, new Uint8Array(64)), "INVALID_INPUT");
});

test.serial("a wrap mechanism the module lacks fails at open with MECHANISM_INVALID", async (t) => {
  const err = await t.throwsAsync(Hsm.open({ ...token.config, wrapMechanism: 0x210b, sessions: 1 }), { instanceOf: HsmError });
  t.is(err?.code, "MECHANISM_INVALID");
  t.is(await countSessionObjects(hsm), baseline, "the failed open left nothing behind");
});

const ABOUT = { clusterId: "c1", user: "alice", version: 3, attemptId: 7n, nodeId: 2 };

/** evaluateSigned answers k_i·B and a signature by the identity key over exactly these fields; a bad share is refused unsigned. */
async function checkEvaluateSigned(t: import("ava").ExecutionContext, h: NodeHsm): Promise<void> {
  const f = fixture();
  const { evaluated, signature } = await h.evaluateSigned(f.blob, f.b, f.K, ABOUT);
  t.deepEqual(Buffer.from(evaluated), f.expected);
  t.true(verifyEvaluationSignature(h.identityPublicKey, { ...ABOUT, blinded: f.b, evaluated }, signature));
  t.false(verifyEvaluationSignature(h.identityPublicKey, { ...ABOUT, attemptId: 8n, blinded: f.b, evaluated }, signature), "the attempt id is covered");
  t.false(verifyEvaluationSignature(h.identityPublicKey, { ...ABOUT, user: "bob", blinded: f.b, evaluated }, signature), "the user is covered");
  const err = await t.throwsAsync(h.evaluateSigned(wrapShare(hsm.agreementPublicKey, randomScalar()), f.b, f.K, ABOUT), { instanceOf: HsmError });
  t.is(err?.code, "SHARE_MISMATCH");
  const bad = await t.throwsAsync(h.evaluateSigned(f.blob, f.b, f.K, { ...ABOUT, nodeId: 0 }), { instanceOf: HsmError });
  t.is(bad?.code, "INVALID_INPUT", "fields the message cannot carry are refused as input");
}

test.serial("evaluateSigned: k_i·B with the identity key's signature over the Evaluate answer's fields", async (t) => {
  await checkEvaluateSigned(t, hsm);
  t.is(await countSessionObjects(hsm), baseline);
});

test.serial("a worker-thread pool on the same token evaluates correctly and reports typed errors", async (t) => {
  const pool: NodeHsm = await HsmWorkerPool.open(token.config, { threads: 2 });
  const _same: NodeHsm = hsm; // both implementations satisfy the vault's interface
  try {
    t.deepEqual(Buffer.from(pool.agreementPublicKey), Buffer.from(hsm.agreementPublicKey));
    const fs = Array.from({ length: 8 }, () => fixture());
    const outs = await Promise.all(fs.map((f) => pool.evaluate(f.blob, f.b, f.K)));
    outs.forEach((o, i) => t.deepEqual(Buffer.from(o), fs[i]?.expected));
    const f = fixture();
    const err = await t.throwsAsync(pool.evaluate(wrapShare(hsm.agreementPublicKey, randomScalar()), f.b, f.K),
      { instanceOf: HsmError });
    t.is(err?.code, "SHARE_MISMATCH");
    await checkEvaluateSigned(t, pool);
  } finally {
    await pool.close();
  }
  const f = fixture();
  t.deepEqual(Buffer.from(await hsm.evaluate(f.blob, f.b, f.K)), f.expected, "main-thread HSM still works");
});
