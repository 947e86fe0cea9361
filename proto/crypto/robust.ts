// Robust combination of more than t evaluations without proofs.
//
// A node's answer k_i·B cannot be checked against K_i = k_i·G alone (that is
// a DDH decision in P-256, and a PKCS#11 token cannot make a DLEQ proof), so
// the client checks combinations: it tries t-subsets of the answers, in the
// order given, until one opens the record (`open` returns non-null). The
// answers that do not lie on the winning subset's polynomial (interpolation
// in the exponent at their id) are reported as faulty.
import { type EvaluatedPoint, combinePoints } from "./shamir.js";
import { type Point } from "./group.js";
import { OprfInconsistentEvaluationsError, InsufficientEvaluationsError, OprfWrongPasswordError } from "./errors.js";

export interface RobustResult<T> {
  readonly value: T;
  /** The t node ids whose answers opened the record. */
  readonly usedNodeIds: number[];
  /** Answers off the winning polynomial. */
  readonly faultyNodeIds: number[];
}

/**
 * Finds t answers whose combination k·B opens the record. `open` maps a
 * candidate k·B to the opened value, or null; it is called at most once per
 * distinct candidate. When nothing opens: OprfWrongPasswordError when more than t
 * answers agree on one polynomial (conclusive) or exactly t were given (not
 * conclusive); otherwise OprfInconsistentEvaluationsError.
 */
export function combineRobustly<T>(answers: readonly EvaluatedPoint[], t: number, open: (kB: Point) => T | null): RobustResult<T> {
  if (answers.length < t) throw new InsufficientEvaluationsError(answers.length, t);
  const tried = new Set<string>();
  for (const subset of subsets(answers, t)) {
    const kB = combinePoints(subset);
    const key = kB.is0() ? "0" : kB.toHex(true);
    if (tried.has(key)) continue;
    tried.add(key);
    const value = kB.is0() ? null : open(kB);
    if (value !== null) {
      return { value, usedNodeIds: subset.map((a) => a.id), faultyNodeIds: offPolynomial(subset, answers) };
    }
  }
  throw failure(answers, t);
}

function failure(answers: readonly EvaluatedPoint[], t: number): Error {
  const agreeing = largestAgreement(answers, t);
  if (agreeing > t || answers.length === t) return new OprfWrongPasswordError(agreeing, t);
  return new OprfInconsistentEvaluationsError(
    `${answers.length} evaluations disagree and no ${t} of them open the record: wrong password or faulty nodes (ask more nodes)`,
  );
}

/** The size of the largest set of answers lying on one polynomial of degree t-1. */
function largestAgreement(answers: readonly EvaluatedPoint[], t: number): number {
  let best = 0;
  for (const subset of subsets(answers, t)) {
    best = Math.max(best, answers.length - offPolynomial(subset, answers).length);
  }
  return best;
}

/** Ids of the answers not in `subset` whose point differs from the subset's interpolation at their id. */
function offPolynomial(subset: readonly EvaluatedPoint[], answers: readonly EvaluatedPoint[]): number[] {
  const inSubset = new Set(subset.map((a) => a.id));
  return answers
    .filter((a) => !inSubset.has(a.id) && !combinePoints(subset, BigInt(a.id)).equals(a.point))
    .map((a) => a.id);
}

/** All k-element subsets in lexicographic order of positions. */
export function* subsets<T>(items: readonly T[], k: number): Generator<T[]> {
  const idx = Array.from({ length: k }, (_, i) => i);
  const n = items.length;
  if (k > n || k < 1) return;
  for (;;) {
    yield idx.map((i) => items[i] as T);
    let j = k - 1;
    while (j >= 0 && idx[j] === n - k + j) j--;
    if (j < 0) return;
    idx[j] = (idx[j] ?? 0) + 1;
    for (let m = j + 1; m < k; m++) idx[m] = (idx[m - 1] ?? 0) + 1;
  }
}
