// Shamir sharing of the OPRF key in the P-256 scalar field. A share's
// x-coordinate is its node's permanent numeric id (a positive integer).
// Evaluations k_i·B are combined "in the exponent": sum(λ_i · (k_i·B)) = k·B.
import { Fn, Point, checkScalar, randomScalar } from "./group.js";
import { InvalidArgumentError, InvalidScalarError } from "./errors.js";

export interface Share {
  /** The holder's node id, the share's x-coordinate. */
  readonly id: number;
  /** f(id), a scalar in [1, n-1]. */
  readonly share: bigint;
}

export interface EvaluatedPoint {
  readonly id: number;
  readonly point: Point;
}

/** Largest threshold and share count accepted (a cluster is a single Raft group). */
export const MAX_SHARES = 64;

/** Throws InvalidArgumentError unless ids are distinct safe integers in [1, 2^53). */
export function validateIds(ids: readonly number[]): void {
  const seen = new Set<number>();
  for (const id of ids) {
    if (!Number.isSafeInteger(id) || id < 1) throw new InvalidArgumentError(`node id ${String(id)} is not a positive integer`);
    if (seen.has(id)) throw new InvalidArgumentError(`node id ${id} appears twice`);
    seen.add(id);
  }
}

/** Throws InvalidArgumentError unless 1 <= t <= n <= MAX_SHARES. */
export function validateThreshold(t: number, n: number): void {
  if (!Number.isSafeInteger(n) || n < 1 || n > MAX_SHARES) throw new InvalidArgumentError(`share count ${n} must be in [1, ${MAX_SHARES}]`);
  if (!Number.isSafeInteger(t) || t < 1 || t > n) throw new InvalidArgumentError(`threshold ${t} must be in [1, ${n}]`);
}

/**
 * Splits k into shares f(id) of a random polynomial f of degree t-1 with
 * f(0) = k. Any t shares determine k; t-1 reveal nothing about it.
 */
export function splitSecret(k: bigint, t: number, ids: readonly number[]): Share[] {
  checkScalar(k, "secret");
  validateIds(ids);
  validateThreshold(t, ids.length);
  const coefficients = [k];
  for (let j = 1; j < t; j++) coefficients.push(randomScalar());
  return ids.map((id) => ({ id, share: shareValue(coefficients, BigInt(id)) }));
}

function shareValue(coefficients: bigint[], x: bigint): bigint {
  let acc = 0n;
  for (let j = coefficients.length - 1; j >= 0; j--) acc = Fn.add(Fn.mul(acc, x), coefficients[j] ?? 0n);
  // f(id) = 0 has probability about 2^-256; a zero share cannot be a P-256 key.
  if (acc === 0n) throw new InvalidScalarError("share", "is zero: split again");
  return acc;
}

/** Lagrange coefficients λ_i(at) for the given distinct ids (at = 0 to recover f(0)). */
export function lagrangeCoefficients(ids: readonly number[], at = 0n): bigint[] {
  validateIds(ids);
  const xs = ids.map(BigInt);
  return xs.map((xi, i) => {
    let num = 1n;
    let den = 1n;
    xs.forEach((xj, j) => {
      if (j === i) return;
      num = Fn.mul(num, Fn.sub(Fn.create(at), xj));
      den = Fn.mul(den, Fn.sub(xi, xj));
    });
    return Fn.div(num, den);
  });
}

/** Interpolates sum(λ_i(at) · share_i) over scalar shares (recovers k at 0). */
export function combineShares(shares: readonly Share[], at = 0n): bigint {
  const lambdas = lagrangeCoefficients(shares.map((s) => s.id), at);
  return shares.reduce((acc, s, i) => Fn.add(acc, Fn.mul(lambdas[i] ?? 0n, s.share)), 0n);
}

/**
 * Interpolates in the exponent: sum(λ_i(at) · P_i). With P_i = k_i·B from t
 * distinct holders and at = 0 this is k·B. May return the identity when
 * at != 0 (the caller compares, it does not encode).
 */
export function combinePoints(points: readonly EvaluatedPoint[], at = 0n): Point {
  if (points.length === 0) throw new InvalidArgumentError("nothing to combine");
  const lambdas = lagrangeCoefficients(points.map((p) => p.id), at);
  return points.reduce((acc, p, i) => {
    const lambda = lambdas[i] ?? 0n;
    return lambda === 0n ? acc : acc.add(p.point.multiply(lambda));
  }, Point.ZERO);
}
