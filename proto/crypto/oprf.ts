// RFC 9497 OPRF, mode 0x00 (base), suite P256-SHA256 (2HashDH): blind,
// evaluate, unblind and Finalize. bkv uses its own hash-to-group DST; the
// RFC's contextString DST is kept for the test-vector path.
import { sha256 } from "@noble/hashes/sha2.js";
import { Writer, utf8 } from "./bytes.js";
import { Fn, type Point, checkScalar, encodePoint, hashToCurve, randomScalar } from "./group.js";
import { InvalidArgumentError } from "./errors.js";

export interface OprfSuite {
  readonly name: string;
  /** RFC 9380 DST used by HashToGroup. */
  readonly hashToGroupDST: Uint8Array;
}

/** RFC 9497 §3.1 contextString for P256-SHA256, mode 0x00: "OPRFV1-" || 0x00 || "-P256-SHA256". */
export const RFC9497_CONTEXT_STRING = Uint8Array.of(...utf8("OPRFV1-"), 0x00, ...utf8("-P256-SHA256"));

/** RFC 9497 P256-SHA256 OPRF exactly: DST = "HashToGroup-" || contextString. */
export const RFC9497_P256_SHA256: OprfSuite = {
  name: "RFC9497-P256-SHA256-OPRF",
  hashToGroupDST: Uint8Array.of(...utf8("HashToGroup-"), ...RFC9497_CONTEXT_STRING),
};

/** The bkv v1 suite: RFC 9497 P256-SHA256 mode 0 with a bkv DST. */
export const BKV_V1: OprfSuite = {
  name: "bkv-v1",
  hashToGroupDST: utf8("bkv-v1-HashToGroup-P256"),
};

const MAX_INPUT = 0xffff;

export interface Blinded {
  /** The secret blind r: keep it until unblind, never send it. */
  readonly blind: bigint;
  /** B = r·HashToGroup(input), sent to the evaluators. */
  readonly blinded: Point;
}

/** HashToGroup(input) of the suite. */
export function hashToGroup(input: Uint8Array, suite: OprfSuite): Point {
  checkInput(input);
  return hashToCurve(input, suite.hashToGroupDST);
}

/** Blind(input): B = r·HashToGroup(input), with a random r unless one is given (test vectors). */
export function blind(input: Uint8Array, suite: OprfSuite, r: bigint = randomScalar()): Blinded {
  checkScalar(r, "blind");
  return { blind: r, blinded: hashToGroup(input, suite).multiply(r) };
}

/** BlindEvaluate: k·B (the non-threshold server side; nodes do this in their token). */
export function blindEvaluate(k: bigint, blinded: Point): Point {
  return blinded.multiply(checkScalar(k, "OPRF key"));
}

/** Unblind: r^-1 · Z. */
export function unblind(r: bigint, evaluated: Point): Point {
  return evaluated.multiply(Fn.inv(checkScalar(r, "blind")));
}

/**
 * RFC 9497 Finalize given the unblinded element N = k·HashToGroup(input):
 * SHA-256(I2OSP(len(input), 2) || input || I2OSP(33, 2) || SerializeElement(N) || "Finalize").
 */
export function finalize(input: Uint8Array, unblinded: Point): Uint8Array {
  checkInput(input);
  const message = new Writer().lp16(input).lp16(encodePoint(unblinded, true)).fixed(utf8("Finalize")).bytes();
  return sha256(message);
}

/** The whole OPRF with the key in hand: Finalize(input, k·HashToGroup(input)). */
export function evaluateOprf(k: bigint, input: Uint8Array, suite: OprfSuite): Uint8Array {
  return finalize(input, blindEvaluate(k, hashToGroup(input, suite)));
}

function checkInput(input: Uint8Array): void {
  if (!(input instanceof Uint8Array) || input.length > MAX_INPUT) throw new InvalidArgumentError("OPRF input must be at most 65535 bytes");
}
