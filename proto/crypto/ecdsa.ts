// ECDSA P-256 / SHA-256 with 64-byte r||s signatures.
// Reset-key signatures (made by clients with @noble) are low-S and verified
// strictly low-S, so every node reaches the same verdict on the same bytes.
// Node identity signatures come from a token's CKM_ECDSA, which does not
// normalize S: their verifier accepts both halves (malleability of an
// evaluation response is harmless), and normalizeLowS is offered.
import { type KeyObject, createPublicKey, verify as nativeVerify } from "node:crypto";
import { sha256 } from "@noble/hashes/sha2.js";
import { p256 } from "@noble/curves/nist.js";
import { bigIntToBytes, bytesToBigInt, expectLength } from "./bytes.js";
import { ORDER, type Point, SCALAR_LENGTH, decodePoint, encodeScalar } from "./group.js";
import { InvalidEncodingError } from "./errors.js";

export const SIGNATURE_LENGTH = 64;

/** SHA-256 of a message: what a token's CKM_ECDSA signs. */
export function messageDigest(message: Uint8Array): Uint8Array {
  return sha256(message);
}

/** Deterministic (RFC 6979) low-S signature of SHA-256(message). */
export function signMessage(privateKey: bigint, message: Uint8Array): Uint8Array {
  const key = encodeScalar(privateKey, "signing key");
  try {
    return p256.sign(message, key, { prehash: true, lowS: true, format: "compact" });
  } finally {
    key.fill(0);
  }
}

/**
 * Verifies a 64-byte r||s signature over SHA-256(message). Returns false for
 * a wrong signature; throws InvalidLengthError / InvalidPointError for a
 * malformed signature length or public key. The curve work is OpenSSL's
 * (node:crypto, ~20x cheaper than @noble's verify, which the replicated apply
 * of every confirmation paid on every node); the verdict is the same: r and s
 * must lie in [1, n-1] (OpenSSL's check) and, unless allowHighS, s <= n/2.
 */
export function verifyMessage(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array, opts: { allowHighS: boolean }): boolean {
  const point = decodePoint(publicKey, "public key");
  expectLength(signature, "signature", SIGNATURE_LENGTH);
  if (!opts.allowHighS && bytesToBigInt(signature.subarray(SCALAR_LENGTH)) > ORDER >> 1n) return false;
  try {
    return nativeVerify("sha256", message, { key: publicKeyObject(publicKey, point), dsaEncoding: "ieee-p1363" }, signature);
  } catch {
    return false;
  }
}

/** Public keys recently verified against (a record's reset key, a node's identity key): a KeyObject costs an import. */
const recentKeys = new Map<string, KeyObject>();
const RECENT_KEYS_MAX = 1024;

/**
 * The KeyObject of SEC1 `encoded`, which decodePoint decoded as `point`,
 * imported from its affine coordinates (a JWK): OpenSSL's DER decoder, which
 * a SubjectPublicKeyInfo goes through, costs about twice as much as the
 * import itself (docs/benchmarks.md, "Point decoding on one group").
 */
function publicKeyObject(encoded: Uint8Array, point: Point): KeyObject {
  const id = Buffer.from(encoded.buffer, encoded.byteOffset, encoded.byteLength).toString("hex");
  let key = recentKeys.get(id);
  if (key === undefined) {
    const u = point.toBytes(false);
    const coordinate = (from: number) => Buffer.from(u.buffer, u.byteOffset + from, SCALAR_LENGTH).toString("base64url");
    key = createPublicKey({ key: { kty: "EC", crv: "P-256", x: coordinate(1), y: coordinate(1 + SCALAR_LENGTH) }, format: "jwk" });
    if (recentKeys.size >= RECENT_KEYS_MAX) recentKeys.delete(recentKeys.keys().next().value!);
    recentKeys.set(id, key);
  }
  return key;
}

/** Maps (r, s) to (r, n - s) when s > n/2. */
export function normalizeLowS(signature: Uint8Array): Uint8Array {
  expectLength(signature, "signature", SIGNATURE_LENGTH);
  const r = signature.subarray(0, SCALAR_LENGTH);
  const s = bytesToBigInt(signature.subarray(SCALAR_LENGTH));
  if (s === 0n || s >= ORDER) throw new InvalidEncodingError("signature s is out of range");
  const low = s > ORDER >> 1n ? ORDER - s : s;
  const out = new Uint8Array(SIGNATURE_LENGTH);
  out.set(r, 0);
  out.set(bigIntToBytes(low, SCALAR_LENGTH), SCALAR_LENGTH);
  return out;
}
