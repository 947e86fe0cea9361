// The client-token issuers of a cluster in the replicated state (meta
// "missuers", docs/vault.md §4): the public keys every node verifies a
// request's bearer token against on apply (jwt.ts), with the clock-skew and
// lifetime bounds. Written at bootstrap from the nodes' JWKS files; changed
// only by an issuer-keys entry signed by a key of the current set
// (state-machine.ts). A cluster without this pair (authentication disabled,
// or bootstrapped before it existed) verifies no tokens.
//
//   u8 format (1) || u32 clock skew (s) || u32 max token lifetime (s) || u8 n issuers
//   issuer: lp16(iss, UTF-8) || u64 key-set time (iat of the signed set; 0 at bootstrap) || u8 n keys
//   key:    lp16(kid, UTF-8) || u8 alg (1 ES256: P-256 SEC1 point, 65 bytes; 2 EdDSA: Ed25519, 32 bytes) || lp16(public key)
//
// Issuers ascend by iss and keys by kid (one encoding per policy).
import { ed25519 } from "@noble/curves/ed25519.js";
import { InvalidArgumentError, InvalidEncodingError, Reader, UNCOMPRESSED_POINT_LENGTH, Writer, decodePoint, equalBytes, utf8 } from "../../proto/crypto/index.js";

export type TokenAlgorithm = "ES256" | "EdDSA";

export interface IssuerKey {
  readonly kid: string;
  readonly alg: TokenAlgorithm;
  /** ES256: an uncompressed P-256 point (65 bytes); EdDSA: an Ed25519 public key (32 bytes). */
  readonly publicKey: Uint8Array;
}

export interface Issuer {
  readonly iss: string;
  /** The `iat` (unix s) of the signed key set that installed these keys; 0 for the bootstrap set. A newer set must be later. */
  readonly setTime: number;
  readonly keys: readonly IssuerKey[];
}

export interface IssuerPolicy {
  /** Tolerated clock difference for exp, nbf and iat, seconds. */
  readonly clockSkewSec: number;
  /** The longest accepted token lifetime (exp − iat) and age (now − iat), seconds. */
  readonly maxTokenLifetimeSec: number;
  readonly issuers: readonly Issuer[];
}

const FORMAT = 1;
const ALG_CODES: Readonly<Record<TokenAlgorithm, number>> = { ES256: 1, EdDSA: 2 };
const ALGS: readonly TokenAlgorithm[] = ["ES256", "EdDSA"];
const ED25519_KEY_LENGTH = 32;
const MAX_ISSUERS = 16;
const MAX_KEYS = 16;
const MAX_NAME_BYTES = 255;
/** One day: a larger skew or lifetime is a configuration mistake. */
const MAX_BOUND_SEC = 86_400;

export function encodeIssuerPolicy(p: IssuerPolicy): Uint8Array {
  validateIssuerPolicy(p);
  const w = new Writer().u8(FORMAT).u32(p.clockSkewSec).u32(p.maxTokenLifetimeSec).u8(p.issuers.length);
  for (const i of sortedBy(p.issuers, (x) => x.iss)) {
    w.str(i.iss).u64(i.setTime).u8(i.keys.length);
    for (const k of sortedBy(i.keys, (x) => x.kid)) w.str(k.kid).u8(ALG_CODES[k.alg]).lp16(k.publicKey);
  }
  return w.bytes();
}

/** Strict inverse of encodeIssuerPolicy; throws a ProtocolError on anything else. */
export function decodeIssuerPolicy(bytes: Uint8Array): IssuerPolicy {
  const r = new Reader(bytes, "issuer keys");
  if (r.u8() !== FORMAT) throw new InvalidEncodingError("issuer keys: unknown format");
  const clockSkewSec = r.u32();
  const maxTokenLifetimeSec = r.u32();
  const issuers = Array.from({ length: r.u8() }, () => readIssuer(r));
  r.end();
  const p = { clockSkewSec, maxTokenLifetimeSec, issuers };
  validateIssuerPolicy(p);
  if (!equalBytes(encodeIssuerPolicy(p), bytes)) throw new InvalidEncodingError("issuer keys are not in canonical order");
  return p;
}

function readIssuer(r: Reader): Issuer {
  const iss = r.str();
  const setTime = r.safeU64();
  const keys = Array.from({ length: r.u8() }, () => {
    const kid = r.str();
    const alg = ALGS[r.u8() - 1];
    if (alg === undefined) throw new InvalidEncodingError("issuer keys: unknown algorithm");
    return { kid, alg, publicKey: r.lp16() };
  });
  return { iss, setTime, keys };
}

/** Throws InvalidArgumentError for a policy that could not verify a token as intended. */
export function validateIssuerPolicy(p: IssuerPolicy): void {
  bound(p.clockSkewSec, "clock skew", 0);
  bound(p.maxTokenLifetimeSec, "max token lifetime", 1);
  if (p.issuers.length < 1 || p.issuers.length > MAX_ISSUERS) throw new InvalidArgumentError(`issuer keys need 1 to ${MAX_ISSUERS} issuers`);
  unique(p.issuers.map((i) => i.iss), "issuer");
  for (const i of p.issuers) validateIssuer(i);
}

export function validateIssuer(i: Issuer): void {
  name(i.iss, "issuer");
  if (!Number.isSafeInteger(i.setTime) || i.setTime < 0) throw new InvalidArgumentError(`issuer ${JSON.stringify(i.iss)}: key-set time must be a unix time`);
  if (i.keys.length < 1 || i.keys.length > MAX_KEYS) throw new InvalidArgumentError(`issuer ${JSON.stringify(i.iss)} needs 1 to ${MAX_KEYS} keys`);
  unique(i.keys.map((k) => k.kid), `key id of issuer ${JSON.stringify(i.iss)}`);
  for (const k of i.keys) validateKey(k);
}

function validateKey(k: IssuerKey): void {
  name(k.kid, "key id");
  if (k.alg === "ES256") {
    if (k.publicKey.length !== UNCOMPRESSED_POINT_LENGTH) throw new InvalidArgumentError(`key ${JSON.stringify(k.kid)}: a P-256 key is ${UNCOMPRESSED_POINT_LENGTH} bytes`);
    decodePoint(k.publicKey, `key ${JSON.stringify(k.kid)}`);
    return;
  }
  if (k.alg !== "EdDSA") throw new InvalidArgumentError(`key ${JSON.stringify(k.kid)}: unknown algorithm`);
  if (k.publicKey.length !== ED25519_KEY_LENGTH) throw new InvalidArgumentError(`key ${JSON.stringify(k.kid)}: an Ed25519 key is ${ED25519_KEY_LENGTH} bytes`);
  try {
    ed25519.Point.fromBytes(k.publicKey);
  } catch {
    throw new InvalidArgumentError(`key ${JSON.stringify(k.kid)} is not an Ed25519 point`);
  }
}

/**
 * The keys of a JWKS document (parsed JSON): each a public EC P-256 or OKP
 * Ed25519 signing key with a kid; `alg` and `use`, if present, must fit.
 * Throws InvalidArgumentError naming the first key that does not.
 */
export function keysFromJwks(doc: unknown): IssuerKey[] {
  const keys = isObject(doc) ? doc.keys : undefined;
  if (!Array.isArray(keys) || keys.length === 0) throw new InvalidArgumentError("a JWKS needs a non-empty \"keys\" array");
  return keys.map((k: unknown, i) => {
    try {
      return keyFromJwk(k);
    } catch (err) {
      throw new InvalidArgumentError(`keys[${i}]: ${(err as Error).message}`);
    }
  });
}

function keyFromJwk(k: unknown): IssuerKey {
  if (!isObject(k)) throw new InvalidArgumentError("not an object");
  if (k.d !== undefined) throw new InvalidArgumentError("holds a private key: publish only public keys");
  if (typeof k.kid !== "string" || k.kid === "") throw new InvalidArgumentError("has no kid");
  if (k.use !== undefined && k.use !== "sig") throw new InvalidArgumentError("is not a signing key (use)");
  let key: IssuerKey;
  if (k.kty === "EC" && k.crv === "P-256") {
    key = { kid: k.kid, alg: "ES256", publicKey: Uint8Array.of(4, ...base64url(k.x, 32), ...base64url(k.y, 32)) };
  } else if (k.kty === "OKP" && k.crv === "Ed25519") {
    key = { kid: k.kid, alg: "EdDSA", publicKey: base64url(k.x, ED25519_KEY_LENGTH) };
  } else {
    throw new InvalidArgumentError("is not an EC P-256 or OKP Ed25519 key");
  }
  if (k.alg !== undefined && jwsAlgorithm(k.alg) !== key.alg) throw new InvalidArgumentError(`alg ${JSON.stringify(k.alg)} does not fit the key`);
  validateKey(key);
  return key;
}

/** The algorithm a JWS `alg` header names: ES256, or EdDSA (also spelled Ed25519); undefined for any other. */
export function jwsAlgorithm(alg: unknown): TokenAlgorithm | undefined {
  if (alg === "ES256") return "ES256";
  return alg === "EdDSA" || alg === "Ed25519" ? "EdDSA" : undefined;
}

/** Strict, canonical base64url without padding; `length` bytes when given. */
export function base64url(v: unknown, length?: number): Uint8Array {
  if (typeof v !== "string" || !/^[A-Za-z0-9_-]*$/.test(v)) throw new InvalidArgumentError("not base64url");
  const b = new Uint8Array(Buffer.from(v, "base64url"));
  if (Buffer.from(b).toString("base64url") !== v) throw new InvalidArgumentError("not canonical base64url");
  if (length !== undefined && b.length !== length) throw new InvalidArgumentError(`a ${length}-byte value is expected (got ${b.length})`);
  return b;
}

export function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function bound(v: number, what: string, min: number): void {
  if (!Number.isSafeInteger(v) || v < min || v > MAX_BOUND_SEC) throw new InvalidArgumentError(`${what} must be ${min} to ${MAX_BOUND_SEC} s`);
}

function name(s: string, what: string): void {
  const len = typeof s === "string" ? utf8(s).length : 0;
  if (len < 1 || len > MAX_NAME_BYTES) throw new InvalidArgumentError(`${what} must be 1 to ${MAX_NAME_BYTES} bytes of UTF-8`);
}

function unique(names: readonly string[], what: string): void {
  const dup = names.find((n, i) => names.indexOf(n) !== i);
  if (dup !== undefined) throw new InvalidArgumentError(`${what} ${JSON.stringify(dup)} appears twice`);
}

function sortedBy<T>(xs: readonly T[], key: (x: T) => string): T[] {
  return [...xs].sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0));
}
