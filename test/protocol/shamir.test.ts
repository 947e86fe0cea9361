import test from "ava";
import { randomBytes } from "node:crypto";
import {
  BKV_V1,
  InvalidArgumentError,
  ORDER,
  blind,
  combinePoints,
  combineShares,
  evaluateOprf,
  finalize,
  lagrangeCoefficients,
  randomScalar,
  splitSecret,
  unblind,
} from "../../proto/crypto/index.js";
import { subsets } from "../../proto/crypto/robust.js";
import { hex } from "../../testkit/protocol.js";

const CASES: Array<[number, number]> = [
  [1, 1],
  [2, 3],
  [3, 5],
];

for (const [t, n] of CASES) {
  test(`(t=${t}, n=${n}): every t-subset of shares yields the whole key's OPRF output`, (tt) => {
    for (let round = 0; round < 2; round++) {
      const k = randomScalar();
      const ids = round === 0 ? Array.from({ length: n }, (_, i) => i + 1) : Array.from({ length: n }, (_, i) => 1000 + 7 * i * i);
      const shares = splitSecret(k, t, ids);
      const input = new Uint8Array(randomBytes(32));
      const expected = hex(evaluateOprf(k, input, BKV_V1));
      const b = blind(input, BKV_V1);
      let count = 0;
      for (const subset of subsets(shares, t)) {
        tt.is(combineShares(subset), k);
        const kB = combinePoints(subset.map((s) => ({ id: s.id, point: b.blinded.multiply(s.share) })));
        tt.is(hex(finalize(input, unblind(b.blind, kB))), expected);
        count++;
      }
      tt.is(count, binomial(n, t));
    }
  });
}

test("t-1 shares do not give the key's output", (t) => {
  const k = randomScalar();
  const shares = splitSecret(k, 3, [1, 2, 3, 4, 5]);
  const input = new Uint8Array(randomBytes(32));
  const b = blind(input, BKV_V1);
  const kB = combinePoints(shares.slice(0, 2).map((s) => ({ id: s.id, point: b.blinded.multiply(s.share) })));
  t.not(hex(finalize(input, unblind(b.blind, kB))), hex(evaluateOprf(k, input, BKV_V1)));
  t.not(combineShares(shares.slice(0, 2)), k);
});

test("Lagrange coefficients at zero sum to one", (t) => {
  const lambdas = lagrangeCoefficients([2, 5, 9]);
  t.is(lambdas.reduce((a, b) => (a + b) % ORDER, 0n), 1n);
});

test("splitSecret validates threshold and ids", (t) => {
  const k = randomScalar();
  const bad: Array<[number, number[]]> = [
    [0, [1, 2]],
    [3, [1, 2]],
    [2, [1, 1]],
    [1, [0]],
    [1, [-3]],
    [1, [1.5]],
    [1, []],
    [1, [Number.MAX_SAFE_INTEGER + 1]],
  ];
  for (const [th, ids] of bad) t.throws(() => splitSecret(k, th, ids), { instanceOf: InvalidArgumentError }, `t=${th} ids=${ids}`);
  t.throws(() => splitSecret(0n, 1, [1]), { code: "INVALID_SCALAR" });
});

function binomial(n: number, k: number): number {
  let r = 1;
  for (let i = 0; i < k; i++) r = (r * (n - i)) / (i + 1);
  return r;
}
