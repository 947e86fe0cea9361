// The P-256 group: strict point and scalar codecs, hash-to-curve (RFC 9380
// P256_XMD:SHA-256_SSWU_RO_), and the sign recovery of an evaluation from the
// two x-coordinates a PKCS#11 token returns. Every point that enters the
// protocol goes through decodePoint: on the curve, not the identity, 33 or 65
// bytes.
import { type ECDH, createECDH } from "node:crypto";
import { p256, p256_hasher } from "@noble/curves/nist.js";
import { bigIntToBytes, bytesToBigInt, equalBytes, expectLength } from "./bytes.js";
import { IdentityPointError, InvalidArgumentError, InvalidPointError, InvalidScalarError, ShareMismatchError } from "./errors.js";

export const Point = p256.Point;
export type Point = InstanceType<typeof p256.Point>;
/** The scalar field of P-256 (integers mod the group order n). */
export const Fn = Point.Fn;
export const ORDER: bigint = Fn.ORDER;
export const G: Point = Point.BASE;

export const SCALAR_LENGTH = 32;
export const COMPRESSED_POINT_LENGTH = 33;
export const UNCOMPRESSED_POINT_LENGTH = 65;

/**
 * Valid points decoded lately, by their exact encoding (oldest evicted
 * first). A vault leader decodes a BeginRecovery's B when it validates the
 * request and again when it applies the entry; the second decode is a
 * lookup. Only successful decodes are kept, and Points are immutable, so a
 * hit returns exactly what decoding the same bytes again would.
 */
const recentlyDecoded = new Map<string, Point>();
const RECENTLY_DECODED_MAX = 4096;

/**
 * Decodes a SEC1 P-256 point (33-byte compressed or 65-byte uncompressed).
 * Throws IdentityPointError for the SEC1 identity (the single byte 0x00),
 * InvalidLengthError for any other length, InvalidPointError for a bad
 * prefix or a point not on the curve.
 */
export function decodePoint(bytes: Uint8Array, what = "point"): Point {
  if (bytes instanceof Uint8Array && bytes.length === 1 && bytes[0] === 0x00) throw new IdentityPointError(what);
  expectLength(bytes, what, COMPRESSED_POINT_LENGTH, UNCOMPRESSED_POINT_LENGTH);
  const key = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("hex");
  const known = recentlyDecoded.get(key);
  if (known !== undefined) return known;
  let p: Point;
  try {
    p = isCompressed(bytes) ? fromDecompressed(decompress(bytes)) : Point.fromBytes(bytes);
  } catch {
    throw new InvalidPointError(what);
  }
  if (p.is0()) throw new IdentityPointError(what);
  if (recentlyDecoded.size >= RECENTLY_DECODED_MAX) recentlyDecoded.delete(recentlyDecoded.keys().next().value!);
  recentlyDecoded.set(key, p);
  return p;
}

/** Field prime p of P-256, big-endian. */
const FIELD_PRIME = bigIntToBytes(Point.Fp.ORDER, SCALAR_LENGTH);

function isCompressed(bytes: Uint8Array): boolean {
  return bytes.length === COMPRESSED_POINT_LENGTH && (bytes[0] === 0x02 || bytes[0] === 0x03);
}

/**
 * The uncompressed encoding of a compressed point, or a throw. OpenSSL does
 * the square root (about 3× faster than @noble's); nothing else is taken on
 * trust: x must be below p, and the result must carry the same x and the
 * prefix's y parity. fromDecompressed then checks y² = x³ + ax + b, so the
 * point is exactly the one @noble would decode from `bytes` (the unique
 * curve point with that x and parity).
 */
function decompress(bytes: Uint8Array): Uint8Array {
  const x = bytes.subarray(1);
  if (Buffer.compare(x, FIELD_PRIME) >= 0) throw new InvalidPointError("point", "has an x-coordinate not below p");
  const u = opensslUncompressed(bytes);
  if (u.length !== UNCOMPRESSED_POINT_LENGTH || u[0] !== 0x04 || !equalBytes(u.subarray(1, 1 + SCALAR_LENGTH), x) ||
      (u[UNCOMPRESSED_POINT_LENGTH - 1]! & 1) !== (bytes[0]! & 1)) {
    throw new InvalidPointError("point", "did not decompress consistently");
  }
  return u;
}

/**
 * OpenSSL's parse of a SEC1 point on one P-256 group kept for the module (a
 * thread's instance), re-encoded uncompressed; throws on a point it refuses.
 * ECDH.convertKey builds the curve's group on every call, which costs more
 * than the square root itself, the more so with cold caches (a node applying
 * one entry at a time: docs/benchmarks.md, "Point decoding on one group").
 * setPublicKey is documented as deprecated for Diffie–Hellman (a public key
 * is normally derived from the private one); here it is only OpenSSL's
 * point decoder on the object's group, and no key agreement is ever done
 * with this object.
 */
const decoder = createECDH("prime256v1") as ECDH & { setPublicKey(key: Buffer): void }; // @types/node omits the deprecated method
function opensslUncompressed(bytes: Uint8Array): Buffer {
  decoder.setPublicKey(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
  return decoder.getPublicKey(null, "uncompressed") as Buffer;
}

/**
 * The point of decompress's output, checked on the curve once by @noble
 * (assertValidity: x, y below p, y² = x³ + ax + b), independently of
 * OpenSSL. Point.fromBytes would check the equation twice (when it parses
 * the bytes, and again in its own assertValidity).
 */
function fromDecompressed(u: Uint8Array): Point {
  const p = Point.fromAffine({ x: bytesToBigInt(u.subarray(1, 1 + SCALAR_LENGTH)), y: bytesToBigInt(u.subarray(1 + SCALAR_LENGTH)) });
  p.assertValidity();
  return p;
}

/** SEC1 encoding of a non-identity point; compressed (33 bytes) by default. */
export function encodePoint(p: Point, compressed = true): Uint8Array {
  assertNotIdentity(p, "point");
  return p.toBytes(compressed);
}

/** The 32-byte big-endian x-coordinate of a non-identity point. */
export function xCoordinate(p: Point): Uint8Array {
  assertNotIdentity(p, "point");
  return p.toBytes(true).slice(1);
}

export function assertNotIdentity(p: Point, what: string): void {
  if (p.is0()) throw new IdentityPointError(what);
}

/** Decodes a 32-byte big-endian scalar in [1, n-1]. */
export function decodeScalar(bytes: Uint8Array, what = "scalar"): bigint {
  expectLength(bytes, what, SCALAR_LENGTH);
  return checkScalar(bytesToBigInt(bytes), what);
}

/** The 32-byte big-endian encoding of a scalar in [1, n-1]. */
export function encodeScalar(s: bigint, what = "scalar"): Uint8Array {
  return bigIntToBytes(checkScalar(s, what), SCALAR_LENGTH);
}

/** Returns s if it is a bigint in [1, n-1], else throws InvalidScalarError. */
export function checkScalar(s: bigint, what = "scalar"): bigint {
  if (typeof s !== "bigint" || s <= 0n || s >= ORDER) throw new InvalidScalarError(what);
  return s;
}

/** A uniformly random scalar in [1, n-1] (noble's randomSecretKey: CSPRNG + bias-free reduction). */
export function randomScalar(): bigint {
  return bytesToBigInt(p256.utils.randomSecretKey());
}

/** RFC 9380 hash_to_curve with suite P256_XMD:SHA-256_SSWU_RO_ and the given DST. */
export function hashToCurve(msg: Uint8Array, dst: Uint8Array): Point {
  if (dst.length === 0 || dst.length > 255) throw new InvalidArgumentError("a DST must be 1 to 255 bytes");
  const p = p256_hasher.hashToCurve(msg, { DST: dst });
  assertNotIdentity(p, "hash-to-curve output");
  return p;
}

/** The compressed encoding of −G: the one point B with B + G the identity. */
const MINUS_G_COMPRESSED = G.negate().toBytes(true);

/**
 * Decodes a compressed blinded element B (decodePoint) and refuses B = −G,
 * for which B + G (the token's second input, addGenerator) is the identity.
 * Without the addition: the compressed encoding of a point decodePoint
 * accepts is unique (prefix 02 or 03 by y's parity, x below p), so B = −G
 * exactly when B's bytes are −G's.
 */
export function decodeBlinded(bytes: Uint8Array, what = "blinded element B"): Point {
  expectLength(bytes, what, COMPRESSED_POINT_LENGTH);
  const B = decodePoint(bytes, what);
  if (equalBytes(bytes, MINUS_G_COMPRESSED)) throw new IdentityPointError("B + G");
  return B;
}

/**
 * B + G, the second point a node's token derives with its share (checked
 * input for the token). Throws IdentityPointError when B = -G.
 */
export function addGenerator(blinded: Point): Point {
  const sum = blinded.add(G);
  if (sum.is0()) throw new IdentityPointError("B + G");
  return sum;
}

/**
 * Sign recovery of a token evaluation. Given x1 = x(k_i·B), x2 = x(k_i·(B+G))
 * and the share commitment Ki = k_i·G, returns the one point P with x(P) = x1
 * and x(P + Ki) = x2 (at most one of ±P qualifies, since P and Ki are not of
 * order 2). Throws ShareMismatchError when neither does: the token used a
 * share other than the one Ki commits to.
 */
export function recoverEvaluatedPoint(x1: Uint8Array, x2: Uint8Array, Ki: Point): Point {
  expectLength(x1, "x(k_i·B)", SCALAR_LENGTH);
  expectLength(x2, "x(k_i·(B+G))", SCALAR_LENGTH);
  assertNotIdentity(Ki, "K_i");
  const candidate = pointWithX(x1);
  const want = bytesToBigInt(x2);
  if (want >= Point.Fp.ORDER) throw new ShareMismatchError(); // no affine x is >= p
  for (const p of [candidate, candidate.negate()]) {
    if (hasAffineX(p.add(Ki), want)) return p;
  }
  throw new ShareMismatchError();
}

/**
 * x(P) = x, for x below p, without converting P to affine coordinates (an
 * inversion, ~100 µs in BigInt arithmetic): @noble's points are projective,
 * x(P) = X/Z, so the test is X = x·Z (mod p) with Z nonzero (P not the
 * identity).
 */
function hasAffineX(P: Point, x: bigint): boolean {
  return !P.is0() && Point.Fp.eql(P.X, Point.Fp.mul(x, P.Z));
}

/** The point with x-coordinate x and even y (OpenSSL's square root, as decodePoint; not kept in its cache: these are one-off). */
function pointWithX(x: Uint8Array): Point {
  const bytes = new Uint8Array(COMPRESSED_POINT_LENGTH);
  bytes[0] = 0x02;
  bytes.set(x, 1);
  try {
    return fromDecompressed(decompress(bytes));
  } catch {
    throw new InvalidPointError("x(k_i·B)", "is not the x-coordinate of a P-256 point");
  }
}
