// P-256 point handling the HSM layer needs before and after the token calls.
// TEMPORARY: these mirror proto/crypto (point decoding/validation and
// recoverEvaluatedPoint), which is being written in parallel; node/hsm
// switches to the shared functions as soon as they land.
import { p256 } from "@noble/curves/nist.js";
import { HsmError } from "./errors.js";

export type Point = InstanceType<typeof p256.Point>;
const Point = p256.Point;

/** Decodes a 33- or 65-byte SEC1 P-256 point; refuses off-curve points and the identity. */
export function decodePoint(bytes: Uint8Array, what: string): Point {
  if (!(bytes instanceof Uint8Array) || (bytes.length !== 33 && bytes.length !== 65)) {
    const len = bytes instanceof Uint8Array ? `${bytes.length} bytes` : typeof bytes;
    throw new HsmError("INVALID_INPUT", `${what} must be a 33- or 65-byte SEC1 point (got ${len})`);
  }
  let p: Point;
  try {
    p = Point.fromBytes(bytes);
    p.assertValidity();
  } catch {
    throw new HsmError("INVALID_POINT", `${what} is not a point on P-256`);
  }
  if (p.is0()) throw new HsmError("INVALID_POINT", `${what} is the identity`);
  return p;
}

/** 32-byte big-endian x-coordinate of a non-identity point. */
export function xOf(p: Point): Uint8Array {
  return p.toBytes(true).subarray(1);
}

/**
 * Given x(k·B), x(k·(B+G)) and K = k·G, returns k·B: of the two points with
 * x-coordinate x1, the one whose sum with K has x-coordinate x2.
 * Throws SHARE_MISMATCH when neither does (the share is not the one K commits to).
 */
export function recoverEvaluatedPoint(x1: Uint8Array, x2: Uint8Array, K: Point): Point {
  let candidate: Point;
  try {
    candidate = Point.fromBytes(Uint8Array.from([0x02, ...x1]));
  } catch {
    throw new HsmError("SHARE_MISMATCH", "the token's evaluation is not a P-256 x-coordinate");
  }
  for (const p of [candidate, candidate.negate()]) {
    const sum = p.add(K);
    if (!sum.is0() && equalBytes(xOf(sum), x2)) return p;
  }
  throw new HsmError("SHARE_MISMATCH", "the unwrapped share does not match its commitment K_i");
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

export const G: Point = Point.BASE;
