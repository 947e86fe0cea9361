import test from "ava";
import {
  G,
  IdentityPointError,
  InvalidLengthError,
  InvalidPointError,
  InvalidScalarError,
  ORDER,
  Point,
  ShareMismatchError,
  addGenerator,
  bigIntToBytes,
  decodeBlinded,
  decodePoint,
  decodeScalar,
  encodePoint,
  encodeScalar,
  hashToCurve,
  randomScalar,
  recoverEvaluatedPoint,
  xCoordinate,
} from "../../proto/crypto/index.js";
import { randomPoint } from "../../testkit/protocol.js";

test("points round-trip compressed and uncompressed", (t) => {
  const p = randomPoint();
  t.true(decodePoint(encodePoint(p, true)).equals(p));
  t.true(decodePoint(encodePoint(p, false)).equals(p));
  t.is(encodePoint(p).length, 33);
  t.is(encodePoint(p, false).length, 65);
});

test("decodePoint: wrong lengths are InvalidLengthError", (t) => {
  const good = encodePoint(randomPoint());
  for (const len of [0, 32, 34, 64, 66]) {
    const b = new Uint8Array(len);
    b.set(good.subarray(0, Math.min(len, 33)));
    t.throws(() => decodePoint(b), { instanceOf: InvalidLengthError }, `length ${len}`);
  }
  t.throws(() => decodePoint("02ab" as unknown as Uint8Array), { code: "INVALID_ARGUMENT" });
});

test("decodePoint: off-curve points and bad prefixes are InvalidPointError", (t) => {
  const u = encodePoint(randomPoint(), false);
  u[64] = (u[64] ?? 0) ^ 1; // y no longer matches x
  t.throws(() => decodePoint(u), { instanceOf: InvalidPointError });
  const c = encodePoint(randomPoint());
  c[0] = 0x05;
  t.throws(() => decodePoint(c), { instanceOf: InvalidPointError });
  // a small x with no curve point
  let found = false;
  for (let x = 1n; x < 50n && !found; x++) {
    const b = Uint8Array.of(0x02, ...bigIntToBytes(x, 32));
    try {
      Point.fromBytes(b);
    } catch {
      t.throws(() => decodePoint(b), { instanceOf: InvalidPointError });
      found = true;
    }
  }
  t.true(found);
  t.throws(() => decodePoint(new Uint8Array(65)), { instanceOf: InvalidPointError });
});

/** @noble's own decoding, the reference decodePoint must agree with (it decompresses through OpenSSL). */
function nobleDecode(b: Uint8Array): Point | null {
  try {
    const p = Point.fromBytes(b);
    p.assertValidity();
    return p.is0() ? null : p;
  } catch {
    return null;
  }
}

test("decodePoint accepts exactly the compressed points @noble accepts, with the same y", (t) => {
  const p = Point.Fp.ORDER;
  const xs = [0n, p - 1n, p, p + 1n, 2n ** 256n - 1n, ...Array.from({ length: 64 }, (_, i) => BigInt(i + 1))];
  for (let i = 0; i < 64; i++) xs.push(BigInt("0x" + Buffer.from(xCoordinate(randomPoint())).toString("hex")));
  let accepted = 0;
  let refused = 0;
  for (const x of xs) {
    for (const prefix of [0x02, 0x03]) {
      const b = Uint8Array.of(prefix, ...Buffer.from(x.toString(16).padStart(64, "0"), "hex"));
      const want = nobleDecode(b);
      if (want === null) {
        t.throws(() => decodePoint(b), { instanceOf: InvalidPointError }, `x=${x} prefix ${prefix}`);
        refused++;
      } else {
        t.true(decodePoint(b).equals(want), `x=${x} prefix ${prefix}`);
        accepted++;
      }
    }
  }
  t.true(accepted > 100 && refused > 10); // both outcomes were exercised
});

test("decodePoint gives the same answer the second time (valid points are remembered, refusals are not)", (t) => {
  const b = encodePoint(randomPoint());
  const first = decodePoint(b);
  t.true(decodePoint(Uint8Array.from(b)).equals(first));
  const bad = Uint8Array.from(b);
  bad[0] = 0x05;
  t.throws(() => decodePoint(bad), { instanceOf: InvalidPointError });
  t.throws(() => decodePoint(bad), { instanceOf: InvalidPointError });
  const offCurve = encodePoint(randomPoint(), false);
  offCurve[64] = (offCurve[64] ?? 0) ^ 1;
  for (let i = 0; i < 2; i++) t.throws(() => decodePoint(offCurve), { instanceOf: InvalidPointError });
  // a view into a larger buffer is keyed by its own bytes only
  const wide = new Uint8Array(40);
  wide.set(b, 3);
  t.true(decodePoint(wide.subarray(3, 36)).equals(first));
});

test("decodePoint of a buffer changed in place after a successful decode decodes the new bytes", (t) => {
  const p = randomPoint();
  const buf = encodePoint(p);
  const first = decodePoint(buf);
  buf[0] = 0x05; // an invalid prefix, in the very buffer that was decoded (and remembered)
  t.throws(() => decodePoint(buf), { instanceOf: InvalidPointError });
  const q = randomPoint();
  buf.set(encodePoint(q));
  t.true(decodePoint(buf).equals(q));
  t.true(first.equals(p), "the point returned first is unchanged");
});

test("the identity is refused with IdentityPointError", (t) => {
  t.throws(() => decodePoint(Uint8Array.of(0)), { instanceOf: IdentityPointError });
  t.throws(() => encodePoint(Point.ZERO), { instanceOf: IdentityPointError });
  t.throws(() => xCoordinate(Point.ZERO), { instanceOf: IdentityPointError });
  t.throws(() => addGenerator(G.negate()), { instanceOf: IdentityPointError });
  t.throws(() => recoverEvaluatedPoint(new Uint8Array(32), new Uint8Array(32), Point.ZERO), { instanceOf: IdentityPointError });
});

test("decodeBlinded: B = -G is refused without a point addition, as addGenerator refuses it; other points decode as decodePoint", (t) => {
  const minusG = encodePoint(G.negate());
  t.throws(() => decodeBlinded(minusG), { instanceOf: IdentityPointError, message: /B \+ G is the identity/ });
  t.throws(() => decodeBlinded(Uint8Array.from(minusG)), { instanceOf: IdentityPointError }, "a second decode (remembered) is refused too");
  t.true(decodeBlinded(encodePoint(G)).equals(G), "G itself: its prefix differs from -G's");
  for (let i = 0; i < 16; i++) {
    const p = randomPoint();
    t.true(decodeBlinded(encodePoint(p)).equals(p));
    t.notThrows(() => addGenerator(p));
  }
  const flipped = Uint8Array.from(minusG);
  flipped[0] = 0x05;
  t.throws(() => decodeBlinded(flipped), { instanceOf: InvalidPointError });
  t.throws(() => decodeBlinded(encodePoint(G.negate(), false)), { instanceOf: InvalidLengthError }, "B is compressed");
  t.throws(() => decodeBlinded(Uint8Array.of(0)), { instanceOf: InvalidLengthError });
});

test("scalars: 0, n and wrong lengths are refused", (t) => {
  const s = randomScalar();
  t.is(decodeScalar(encodeScalar(s)), s);
  t.throws(() => decodeScalar(new Uint8Array(32)), { instanceOf: InvalidScalarError });
  t.throws(() => decodeScalar(bigIntToBytes(ORDER, 32)), { instanceOf: InvalidScalarError });
  t.throws(() => decodeScalar(new Uint8Array(31)), { instanceOf: InvalidLengthError });
  t.throws(() => encodeScalar(ORDER), { instanceOf: InvalidScalarError });
  t.throws(() => encodeScalar(-1n), { instanceOf: InvalidScalarError });
});

test("recoverEvaluatedPoint fixes the sign from x(k·B), x(k·(B+G)) and K = k·G (both signs)", (t) => {
  const prefixes = new Set<number>();
  for (let i = 0; i < 40; i++) {
    const k = randomScalar();
    const B = randomPoint();
    const kB = B.multiply(k);
    const x2 = xCoordinate(addGenerator(B).multiply(k));
    const got = recoverEvaluatedPoint(xCoordinate(kB), x2, G.multiply(k));
    t.true(got.equals(kB));
    prefixes.add(encodePoint(got)[0]!);
  }
  t.deepEqual([...prefixes].sort(), [0x02, 0x03], "the even-y candidate and its negation were both the answer");
});

test("recoverEvaluatedPoint: an x2 at or above p never matches (no affine x is), an x1 at or above p is no x-coordinate", (t) => {
  const k = randomScalar();
  const B = randomPoint();
  const x1 = xCoordinate(B.multiply(k));
  const p = bigIntToBytes(Point.Fp.ORDER, 32);
  t.throws(() => recoverEvaluatedPoint(x1, p, G.multiply(k)), { instanceOf: ShareMismatchError });
  t.throws(() => recoverEvaluatedPoint(x1, new Uint8Array(32).fill(0xff), G.multiply(k)), { instanceOf: ShareMismatchError });
  t.throws(() => recoverEvaluatedPoint(p, xCoordinate(addGenerator(B).multiply(k)), G.multiply(k)), { instanceOf: InvalidPointError });
});

test("recoverEvaluatedPoint: a share other than K's is ShareMismatchError", (t) => {
  const k = randomScalar();
  const B = randomPoint();
  const other = randomScalar();
  const x1 = xCoordinate(B.multiply(other));
  const x2 = xCoordinate(addGenerator(B).multiply(other));
  t.throws(() => recoverEvaluatedPoint(x1, x2, G.multiply(k)), { instanceOf: ShareMismatchError });
  // right x1, wrong x2
  t.throws(() => recoverEvaluatedPoint(xCoordinate(B.multiply(k)), x2, G.multiply(k)), { instanceOf: ShareMismatchError });
});

test("recoverEvaluatedPoint: lengths and non-x inputs are refused", (t) => {
  const K = randomPoint();
  t.throws(() => recoverEvaluatedPoint(new Uint8Array(31), new Uint8Array(32), K), { instanceOf: InvalidLengthError });
  t.throws(() => recoverEvaluatedPoint(new Uint8Array(32), new Uint8Array(33), K), { instanceOf: InvalidLengthError });
  let x = 1n;
  for (;; x++) {
    try {
      Point.fromBytes(Uint8Array.of(0x02, ...bigIntToBytes(x, 32)));
    } catch {
      break;
    }
  }
  t.throws(() => recoverEvaluatedPoint(bigIntToBytes(x, 32), new Uint8Array(32), K), { instanceOf: InvalidPointError });
});

test("hashToCurve is deterministic, DST-separated and refuses an empty DST", (t) => {
  const msg = Uint8Array.of(1, 2, 3);
  const a = new TextEncoder().encode("A");
  t.true(hashToCurve(msg, a).equals(hashToCurve(msg, a)));
  t.false(hashToCurve(msg, a).equals(hashToCurve(msg, new TextEncoder().encode("B"))));
  t.throws(() => hashToCurve(msg, new Uint8Array(0)), { code: "INVALID_ARGUMENT" });
});

// RFC 9380, Appendix J.1.1, suite P256_XMD:SHA-256_SSWU_RO_
// (https://www.rfc-editor.org/rfc/rfc9380#appendix-J.1.1).
const RFC9380_DST = "QUUX-V01-CS02-with-P256_XMD:SHA-256_SSWU_RO_";
const RFC9380_VECTORS = [
  {
    msg: "",
    x: "2c15230b26dbc6fc9a37051158c95b79656e17a1a920b11394ca91c44247d3e4",
    y: "8a7a74985cc5c776cdfe4b1f19884970453912e9d31528c060be9ab5c43e8415",
  },
  {
    msg: "abc",
    x: "0bb8b87485551aa43ed54f009230450b492fead5f1cc91658775dac4a3388a0f",
    y: "5c41b3d0731a27a7b14bc0bf0ccded2d8751f83493404c84a88e71ffd424212e",
  },
];

for (const v of RFC9380_VECTORS) {
  test(`RFC 9380 J.1.1 P256_XMD:SHA-256_SSWU_RO_ msg="${v.msg}"`, (t) => {
    const p = hashToCurve(new TextEncoder().encode(v.msg), new TextEncoder().encode(RFC9380_DST));
    t.is(Buffer.from(encodePoint(p, false)).toString("hex"), "04" + v.x + v.y);
  });
}
