import test from "ava";
import { createECDH, createPrivateKey } from "node:crypto";
import {
  G,
  InvalidEncodingError,
  InvalidLengthError,
  InvalidPointError,
  UnsupportedVersionError,
  UnwrapError,
  encodePoint,
  joinBoundShare,
  sealShare,
  parseWrappedShare,
  randomScalar,
  sharePkcs8,
  unwrapShareForTest,
  wrapShare,
  xCoordinate,
  decodePoint,
  encodeScalar,
} from "../../proto/crypto/index.js";
import { makeNodes } from "../../testkit/protocol.js";

test("wrap then unwrap returns the share (uncompressed and compressed agreement keys)", (t) => {
  const [node] = makeNodes([1]);
  if (!node) throw new Error("no node");
  const share = randomScalar();
  t.is(unwrapShareForTest(wrapShare(node.agreementPublicKey, share), node.agreementPrivateKey), share);
  const compressed = encodePoint(decodePoint(node.agreementPublicKey), true);
  t.is(unwrapShareForTest(wrapShare(compressed, share), node.agreementPrivateKey), share);
});

test("blob v1 layout: 0x01 || 65-byte uncompressed E || RFC 5649 ciphertext", (t) => {
  const [node] = makeNodes([1]);
  const blob = wrapShare(node!.agreementPublicKey, randomScalar());
  const parsed = parseWrappedShare(blob);
  t.is(blob[0], 1);
  t.is(parsed.ephemeralPublicKey.length, 65);
  t.is(parsed.ephemeralPublicKey[0], 4);
  t.is(parsed.wrapped.length % 8, 0);
  t.is(parsed.bindingSignature, null);
  t.deepEqual(blob.subarray(66), parsed.wrapped);
});

test("blob v2 layout: 0x02 || 65-byte E || 64-byte binding signature || RFC 5649 ciphertext; it unwraps like v1", (t) => {
  const [node] = makeNodes([1]);
  const share = randomScalar();
  const sealed = sealShare(node!.agreementPublicKey, share);
  const signature = new Uint8Array(64).fill(9);
  const blob = joinBoundShare(sealed, signature);
  const parsed = parseWrappedShare(blob);
  t.is(blob[0], 2);
  t.is(parsed.version, 2);
  t.deepEqual(parsed.ephemeralPublicKey, sealed.ephemeralPublicKey);
  t.deepEqual(parsed.bindingSignature, signature);
  t.deepEqual(parsed.wrapped, sealed.wrapped);
  t.deepEqual(G.multiply(sealed.ephemeralSecret).toBytes(false), sealed.ephemeralPublicKey);
  t.is(unwrapShareForTest(blob, node!.agreementPrivateKey), share);
  t.throws(() => parseWrappedShare(blob.subarray(0, 1 + 65 + 64 + 8)), { instanceOf: InvalidLengthError });
  t.throws(() => joinBoundShare(sealed, new Uint8Array(63)), { instanceOf: InvalidLengthError });
});

test("the KEK is the raw ECDH secret (x-coordinate) that CKM_ECDH1_DERIVE + CKD_NULL gives", (t) => {
  // node:crypto's ECDH computeSecret returns the x-coordinate, like CKD_NULL.
  const a = randomScalar();
  const ecdh = createECDH("prime256v1");
  ecdh.setPrivateKey(Buffer.from(encodeScalar(a)));
  const e = randomScalar();
  const E = G.multiply(e);
  t.deepEqual(new Uint8Array(ecdh.computeSecret(Buffer.from(encodePoint(E, false)))), xCoordinate(G.multiply(a).multiply(e)));
});

test("the wrapped plaintext is a PKCS#8 P-256 private key of the share", (t) => {
  const share = randomScalar();
  const key = createPrivateKey({ key: Buffer.from(sharePkcs8(share)), format: "der", type: "pkcs8" });
  t.is(key.asymmetricKeyType, "ec");
  t.is(key.asymmetricKeyDetails?.namedCurve, "prime256v1");
  const d = key.export({ format: "jwk" }).d;
  t.is(BigInt("0x" + Buffer.from(d ?? "", "base64url").toString("hex")), share);
});

test("a tampered blob or the wrong agreement key fails with UnwrapError", (t) => {
  const [node, other] = makeNodes([1, 2]);
  const blob = wrapShare(node!.agreementPublicKey, randomScalar());
  for (const i of [1 + 65, blob.length - 1, 1 + 65 + 20]) {
    const bad = blob.slice();
    bad[i] = (bad[i] ?? 0) ^ 0x01;
    t.throws(() => unwrapShareForTest(bad, node!.agreementPrivateKey), { instanceOf: UnwrapError }, `byte ${i}`);
  }
  t.throws(() => unwrapShareForTest(blob, other!.agreementPrivateKey), { instanceOf: UnwrapError });
  // a different (valid) ephemeral key derives another KEK
  const swapped = blob.slice();
  swapped.set(encodePoint(G.multiply(randomScalar()), false), 1);
  t.throws(() => unwrapShareForTest(swapped, node!.agreementPrivateKey), { instanceOf: UnwrapError });
});

test("malformed blobs fail with specific errors", (t) => {
  const [node] = makeNodes([1]);
  const blob = wrapShare(node!.agreementPublicKey, randomScalar());
  const v3 = blob.slice();
  v3[0] = 3;
  t.throws(() => parseWrappedShare(v3), { instanceOf: UnsupportedVersionError });
  t.throws(() => parseWrappedShare(blob.subarray(0, 80)), { instanceOf: InvalidLengthError });
  t.throws(() => parseWrappedShare(blob.subarray(0, blob.length - 3)), { instanceOf: InvalidLengthError });
  const offCurve = blob.slice();
  offCurve[65] = (offCurve[65] ?? 0) ^ 1;
  t.throws(() => parseWrappedShare(offCurve), { instanceOf: InvalidPointError });
  const compressedPrefix = blob.slice();
  compressedPrefix[1] = 0x02;
  t.throws(() => parseWrappedShare(compressedPrefix), { instanceOf: InvalidEncodingError });
});

test("wrapShare refuses bad agreement keys and shares", (t) => {
  const [node] = makeNodes([1]);
  t.throws(() => wrapShare(new Uint8Array(64), randomScalar()), { instanceOf: InvalidLengthError });
  t.throws(() => wrapShare(new Uint8Array(65), randomScalar()), { instanceOf: InvalidPointError });
  t.throws(() => wrapShare(Uint8Array.of(0), randomScalar()), { code: "IDENTITY_POINT" });
  t.throws(() => wrapShare(node!.agreementPublicKey, 0n), { code: "INVALID_SCALAR" });
});
