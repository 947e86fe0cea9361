import test from "ava";
import { p256 } from "@noble/curves/nist.js";
import {
  G,
  InvalidArgumentError,
  InvalidLengthError,
  ORDER,
  bigIntToBytes,
  bytesToBigInt,
  confirmMessage,
  deleteMessage,
  encodePoint,
  encodeScalar,
  evaluationSigningMessage,
  messageDigest,
  nodeCertificateMessage,
  nodeDescriptorMessage,
  normalizeLowS,
  overwriteMessage,
  randomScalar,
  signConfirm,
  signDelete,
  signMessage,
  signOverwrite,
  verifyConfirm,
  verifyDelete,
  verifyEvaluationSignature,
  verifyMessage,
  verifyNodeDescriptorSignature,
  verifyOverwrite,
} from "../../proto/crypto/index.js";
import { hex, randomKey, randomPoint } from "../../testkit/protocol.js";

const ref = { clusterId: "cluster-a", user: "alice", version: 4 };
const resetKey = randomScalar();
const resetPk = encodePoint(G.multiply(resetKey));

test("confirm signatures verify, and fail for another attempt, user, version or cluster", (t) => {
  const sig = signConfirm(resetKey, ref, 17n);
  t.is(sig.length, 64);
  t.true(verifyConfirm(resetPk, ref, 17n, sig));
  t.true(verifyConfirm(resetPk, ref, 17, sig));
  t.false(verifyConfirm(resetPk, ref, 18n, sig));
  t.false(verifyConfirm(resetPk, { ...ref, user: "bob" }, 17n, sig));
  t.false(verifyConfirm(resetPk, { ...ref, version: 5 }, 17n, sig));
  t.false(verifyConfirm(resetPk, { ...ref, clusterId: "cluster-b" }, 17n, sig));
  t.false(verifyConfirm(encodePoint(randomPoint()), ref, 17n, sig));
});

test("delete and overwrite signatures verify only for their own message", (t) => {
  const del = signDelete(resetKey, ref);
  t.true(verifyDelete(resetPk, ref, del));
  t.false(verifyDelete(resetPk, { ...ref, version: 3 }, del));
  t.false(verifyConfirm(resetPk, ref, 1n, del));
  const digest = randomKey();
  const ow = signOverwrite(resetKey, ref, digest);
  t.true(verifyOverwrite(resetPk, ref, digest, ow));
  t.false(verifyOverwrite(resetPk, ref, randomKey(), ow));
  t.false(verifyOverwrite(resetPk, { ...ref, user: "alicE" }, digest, ow));
  t.false(verifyDelete(resetPk, ref, ow));
});

test("reset signatures must be low-S; the high-S twin is refused", (t) => {
  const sig = signConfirm(resetKey, ref, 9n);
  const s = bytesToBigInt(sig.subarray(32));
  t.true(s <= ORDER >> 1n);
  const high = Uint8Array.of(...sig.subarray(0, 32), ...bigIntToBytes(ORDER - s, 32));
  t.false(verifyConfirm(resetPk, ref, 9n, high));
  t.is(hex(normalizeLowS(high)), hex(sig));
});

test("evaluation signatures (as a token makes them: high-S possible) verify and bind every field", (t) => {
  const idKey = randomScalar();
  const idPk = encodePoint(G.multiply(idKey), false);
  const fields = { clusterId: "c", user: "alice", version: 2, attemptId: 41n, nodeId: 3, blinded: randomPoint(), evaluated: randomPoint() };
  const msg = evaluationSigningMessage(fields);
  // CKM_ECDSA signs the SHA-256 digest and does not normalize S.
  const sig = p256.sign(messageDigest(msg), encodeScalar(idKey), { prehash: false, lowS: false });
  t.true(verifyEvaluationSignature(idPk, fields, sig));
  t.true(verifyEvaluationSignature(idPk, fields, normalizeLowS(sig)));
  const variants = [
    { ...fields, clusterId: "d" },
    { ...fields, user: "bob" },
    { ...fields, version: 3 },
    { ...fields, attemptId: 42n },
    { ...fields, nodeId: 4 },
    { ...fields, blinded: randomPoint() },
    { ...fields, evaluated: randomPoint() },
  ];
  for (const v of variants) t.false(verifyEvaluationSignature(idPk, v, sig));
});

test("signed messages are domain-separated and canonical", (t) => {
  const all = [confirmMessage("c", "u", 1, 1n), deleteMessage("c", "u", 1), overwriteMessage("c", "u", 1, new Uint8Array(32))];
  t.is(new Set(all.map(hex)).size, 3);
  // length prefixes keep ("ab","c") and ("a","bc") apart
  t.not(hex(deleteMessage("ab", "c", 1)), hex(deleteMessage("a", "bc", 1)));
  const fields = { clusterId: "c", user: "u", version: 1, attemptId: 1n, nodeId: 1, blinded: randomPoint(), evaluated: randomPoint() };
  const fromPoints = evaluationSigningMessage(fields);
  const fromBytes = evaluationSigningMessage({ ...fields, blinded: encodePoint(fields.blinded, false), evaluated: encodePoint(fields.evaluated) });
  t.is(hex(fromPoints), hex(fromBytes));
});

test("bad message fields and signature lengths fail with specific errors", (t) => {
  t.throws(() => confirmMessage("c", "u", 1, 0n), { instanceOf: InvalidArgumentError });
  t.throws(() => confirmMessage("c", "u", 1, 2n ** 64n), { instanceOf: InvalidArgumentError });
  t.throws(() => confirmMessage("c", "u", 0, 1n), { instanceOf: InvalidArgumentError });
  t.throws(() => confirmMessage("c", "x".repeat(257), 1, 1n), { instanceOf: InvalidArgumentError });
  t.throws(() => confirmMessage("", "u", 1, 1n), { instanceOf: InvalidArgumentError });
  t.throws(() => deleteMessage("c", "\ud800", 1), { instanceOf: InvalidArgumentError });
  t.throws(() => overwriteMessage("c", "u", 1, new Uint8Array(31)), { instanceOf: InvalidLengthError });
  t.throws(() => verifyConfirm(resetPk, ref, 1n, new Uint8Array(63)), { instanceOf: InvalidLengthError });
  t.throws(() => verifyConfirm(new Uint8Array(32), ref, 1n, new Uint8Array(64)), { instanceOf: InvalidLengthError });
  const fields = { clusterId: "c", user: "u", version: 1, attemptId: 1n, nodeId: 0, blinded: randomPoint(), evaluated: randomPoint() };
  t.throws(() => evaluationSigningMessage(fields), { instanceOf: InvalidArgumentError });
  t.throws(() => evaluationSigningMessage({ ...fields, nodeId: 1, evaluated: new Uint8Array(33) }), { code: "INVALID_POINT" });
});

test("node descriptor signatures verify with the entry's identity key and bind every field", (t) => {
  const idKey = randomScalar();
  const fields = {
    clusterId: "c",
    nodeId: 2,
    address: "127.0.0.1:7002",
    agreementPublicKey: encodePoint(randomPoint(), false),
    identityPublicKey: encodePoint(G.multiply(idKey), false),
  };
  const sig = p256.sign(messageDigest(nodeDescriptorMessage(fields)), encodeScalar(idKey), { prehash: false, lowS: false });
  t.true(verifyNodeDescriptorSignature(fields, sig));
  t.false(verifyNodeDescriptorSignature({ ...fields, address: "127.0.0.1:7003" }, sig));
  t.false(verifyNodeDescriptorSignature({ ...fields, nodeId: 3 }, sig));
  t.false(verifyNodeDescriptorSignature({ ...fields, agreementPublicKey: encodePoint(randomPoint()) }, sig));
  t.throws(() => nodeDescriptorMessage({ ...fields, address: "" }), { instanceOf: InvalidArgumentError });
  // The certificate key signs the same fields under its own tag: neither message is the other.
  const certMsg = nodeCertificateMessage(fields);
  const descMsg = nodeDescriptorMessage(fields);
  t.notDeepEqual(certMsg, descMsg);
  t.deepEqual(certMsg.subarray(2 + "bkv-v1/node-certificate".length), descMsg.subarray(2 + "bkv-v1/node-descriptor".length));
  t.false(verifyNodeDescriptorSignature(fields, p256.sign(messageDigest(certMsg), encodeScalar(idKey), { prehash: false })));
});

test("verifyMessage gives @noble's verdict: r and s in [1, n-1], low-S unless allowed, compressed and uncompressed keys", (t) => {
  const noble = (pk: Uint8Array, msg: Uint8Array, sig: Uint8Array, allowHighS: boolean): boolean => {
    try {
      return p256.verify(sig, msg, pk, { prehash: true, lowS: !allowHighS, format: "compact" });
    } catch {
      return false;
    }
  };
  const scalar = (x: bigint) => bigIntToBytes(x, 32);
  for (let i = 0; i < 20; i++) {
    const key = randomScalar();
    const pk = encodePoint(G.multiply(key), i % 2 === 0);
    const msg = randomKey();
    const sig = signMessage(key, msg);
    const [r, s] = [sig.subarray(0, 32), bytesToBigInt(sig.subarray(32))];
    const tampered = Uint8Array.from(sig);
    tampered[i] = tampered[i]! ^ 1;
    const candidates = [
      sig, tampered, Uint8Array.of(...r, ...scalar(ORDER - s)), Uint8Array.of(...r, ...scalar(0n)),
      Uint8Array.of(...r, ...scalar(ORDER)), Uint8Array.of(...scalar(ORDER), ...sig.subarray(32)),
      Uint8Array.of(...scalar(0n), ...sig.subarray(32)),
    ];
    for (const c of candidates) {
      for (const allowHighS of [false, true]) t.is(verifyMessage(pk, msg, c, { allowHighS }), noble(pk, msg, c, allowHighS));
    }
    t.true(verifyMessage(pk, msg, sig, { allowHighS: false }));
    t.false(verifyMessage(pk, msg, candidates[2]!, { allowHighS: false }));
    t.true(verifyMessage(pk, msg, candidates[2]!, { allowHighS: true }));
    for (const out of candidates.slice(3)) t.false(verifyMessage(pk, msg, out, { allowHighS: true }));
  }
});
