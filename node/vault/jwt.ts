// Verification of a client's bearer token (a JWT, compact JWS; docs/vault.md
// §1, docs/threat-model.md "Client authentication") against the issuer keys
// in the replicated state: on apply of a begin or register entry that carries
// it (tokenRefusal: the same verdict on every node, at the leader-assigned
// entry time), and at the client port (verifyToken, node/server/auth.ts, at
// the node's clock). One parser and one verification for both. Synchronous
// and strict by construction (docs/decisions.md: why not jose):
//
// - three base64url segments (canonical, unpadded), at most MAX_TOKEN_BYTES;
// - header: a JSON object with exactly `alg` (ES256, EdDSA or Ed25519), `kid`
//   and optionally `typ`; anything else (crit, jku, x5u, "none") is refused;
// - payload: a JSON object with `iss`, `sub` (strings), `aud` (a string or an
//   array of strings), `exp`, `iat` and optionally `nbf` (integers, unix s);
//   other claims are signed and ignored;
// - the key is the issuer's key `kid`, of the algorithm the header names;
// - aud contains the cluster id; with skew s and the time now:
//   now < exp + s, nbf − s ≤ now, iat − s ≤ now, now − iat ≤ lifetime + s and
//   exp − iat ≤ lifetime;
// - on apply, sub = the entry's user, else PERMISSION_DENIED
//   (TOKEN_SUBJECT_MISMATCH); every other failure is UNAUTHENTICATED
//   (TOKEN_INVALID).
//
// A VerifiedTokens cache (token-cache.ts) skips the parse and the signature
// of a token seen before under the same key; the claims are checked at every
// use. Messages name at most the issuer, key id and subject; never the token.
import {
  ED25519_PUBLIC_KEY_LENGTH, ED25519_SIGNATURE_LENGTH, InvalidArgumentError, SIGNATURE_LENGTH, verifyEd25519, verifyMessage,
} from "../../proto/crypto/index.js";
import { type IssuerKey, type IssuerPolicy, type TokenAlgorithm, base64url, isObject, jwsAlgorithm } from "./issuers.js";
import { type VaultError, vaultError } from "./result.js";
import { type VerifiedSignature, type VerifiedTokens, sameIssuerKey } from "./token-cache.js";

/** The longest token an entry may carry, bytes (ASCII). */
export const MAX_TOKEN_BYTES = 4096;
const HEADER_FIELDS = new Set(["alg", "kid", "typ"]);
const STRICT_UTF8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

export interface CompactJws {
  readonly alg: TokenAlgorithm;
  readonly kid: string;
  readonly payload: Record<string, unknown>;
  /** ASCII(header "." payload): what the signature covers. */
  readonly signingInput: Uint8Array;
  readonly signature: Uint8Array;
}

/** Parses a compact JWS strictly (above); throws InvalidArgumentError. Does not verify. */
export function parseCompactJws(token: string): CompactJws {
  if (typeof token !== "string" || token.length > MAX_TOKEN_BYTES) throw new InvalidArgumentError(`a token is a string of at most ${MAX_TOKEN_BYTES} bytes`);
  const parts = token.split(".");
  if (parts.length !== 3 || parts.some((p) => p === "")) throw new InvalidArgumentError("a token is three base64url segments");
  const [h, p, s] = parts as [string, string, string];
  const header = jsonObject(h, "header");
  const extra = Object.keys(header).find((k) => !HEADER_FIELDS.has(k));
  if (extra !== undefined) throw new InvalidArgumentError(`the token header has an unsupported field ${quote(extra)}`);
  const alg = jwsAlgorithm(header.alg);
  if (alg === undefined) throw new InvalidArgumentError("the token's algorithm is not ES256 or EdDSA");
  if (typeof header.kid !== "string" || header.kid === "") throw new InvalidArgumentError("the token header names no key (kid)");
  if (header.typ !== undefined && typeof header.typ !== "string") throw new InvalidArgumentError("the token header's typ is not a string");
  const signature = segment(s, "signature");
  if (signature.length !== SIGNATURE_LENGTH) throw new InvalidArgumentError(`the token's signature is not ${SIGNATURE_LENGTH} bytes`);
  return { alg, kid: header.kid, payload: jsonObject(p, "payload"), signingInput: new TextEncoder().encode(`${h}.${p}`), signature };
}

/** True if `sig` is `key`'s signature over `input` in algorithm `alg` (false for a key of another algorithm). */
export function verifyJwsSignature(key: IssuerKey, alg: TokenAlgorithm, input: Uint8Array, sig: Uint8Array): boolean {
  if (key.alg !== alg) return false;
  if (alg === "ES256") return verifyMessage(key.publicKey, input, sig, { allowHighS: true }); // WebCrypto signatures are not low-S normalized
  return key.publicKey.length === ED25519_PUBLIC_KEY_LENGTH && sig.length === ED25519_SIGNATURE_LENGTH && verifyEd25519(key.publicKey, input, sig);
}

export interface TokenCheck {
  readonly policy: IssuerPolicy;
  readonly clusterId: string;
  /** The time the claims are checked at (unix ms): the entry's leader time on apply, the node's clock at the port. */
  readonly nowMs: number;
  /** What nowMs is, for messages: "the entry's time", "this node's time". */
  readonly clock: string;
  /** Verified signatures to reuse (token-cache.ts): speed only, the verdict is the same without it. */
  readonly cache?: VerifiedTokens;
}

export type TokenVerdict = { readonly ok: true; readonly subject: string } | { readonly ok: false; readonly error: VaultError };

/**
 * The token's subject if `token` is a valid token of this cluster at
 * c.nowMs, for any subject; else the refusal (TOKEN_INVALID). A pure
 * function of (token, policy, clusterId, nowMs), with or without a cache.
 * Never throws.
 */
export function verifyToken(token: string, c: TokenCheck): TokenVerdict {
  const signed = signatureOf(token, c);
  if ("ok" in signed) return { ok: false, error: signed };
  const claims = claimRefusal(signed.payload, c);
  if (claims !== null) return { ok: false, error: invalid(claims) };
  return { ok: true, subject: signed.payload.sub as string };
}

export interface TokenContext extends Omit<TokenCheck, "clock"> {
  /** The entry's user: the token's sub must name it. */
  readonly user: string;
}

/** On apply: null if `token` is a valid token for `c.user` at the entry's time `c.nowMs`; else the refusal. Never throws. */
export function tokenRefusal(token: string | undefined, c: TokenContext): VaultError | null {
  if (token === undefined) return invalid("the entry carries no client token: this cluster verifies tokens on apply");
  const v = verifyToken(token, { ...c, clock: "the entry's time" });
  if (!v.ok) return v.error;
  if (v.subject !== c.user) return vaultError("TOKEN_SUBJECT_MISMATCH", `the token's subject ${quote(v.subject)} is not the entry's user ${quote(c.user)}`);
  return null;
}

/** The token's verified signature: from the cache when the policy still holds the key it verified under, else verified now. */
function signatureOf(token: string, c: TokenCheck): VerifiedSignature | VaultError {
  const skewMs = c.policy.clockSkewSec * 1000;
  const hit = c.cache?.get(token, c.nowMs, skewMs);
  if (hit !== undefined) {
    const key = issuerKey(c.policy, hit.iss, hit.kid);
    if (key !== undefined && sameIssuerKey(key, hit.key)) return hit;
  }
  const v = verifySignature(token, c.policy);
  if (!("ok" in v)) c.cache?.add(token, v, c.nowMs, skewMs);
  return v;
}

/** Parses `token` and verifies its signature under the key its iss and kid name in `policy`. */
function verifySignature(token: string, policy: IssuerPolicy): VerifiedSignature | VaultError {
  let jws: CompactJws;
  try {
    jws = parseCompactJws(token);
  } catch (err) {
    return invalid(`the client token is not a JWT: ${(err as Error).message}`);
  }
  const { iss } = jws.payload;
  if (typeof iss !== "string") return invalid("the client token names no issuer (iss)");
  if (!policy.issuers.some((i) => i.iss === iss)) return invalid(`unknown token issuer ${quote(iss)}`);
  const key = issuerKey(policy, iss, jws.kid);
  if (key === undefined) return invalid(`issuer ${quote(iss)} has no key ${quote(jws.kid)}`);
  if (!verifyJwsSignature(key, jws.alg, jws.signingInput, jws.signature)) return invalid("the client token's signature does not verify");
  return { iss, kid: jws.kid, key, payload: jws.payload };
}

function issuerKey(policy: IssuerPolicy, iss: string, kid: string): IssuerKey | undefined {
  return policy.issuers.find((i) => i.iss === iss)?.keys.find((k) => k.kid === kid);
}

/** Why the verified payload's aud, sub and times do not hold at c.nowMs; null if they do. */
function claimRefusal(p: Readonly<Record<string, unknown>>, c: TokenCheck): string | null {
  const aud = typeof p.aud === "string" ? [p.aud] : p.aud;
  if (!Array.isArray(aud) || !aud.every((a) => typeof a === "string")) return "the token's audience (aud) is missing or not strings";
  if (!aud.includes(c.clusterId)) return `the token's audience is not this cluster (${quote(c.clusterId)})`;
  if (typeof p.sub !== "string" || p.sub === "") return "the token names no subject (sub)";
  const { exp, iat, nbf } = p;
  if (!unixSeconds(exp) || !unixSeconds(iat)) return "the token's exp and iat must be integer unix times";
  if (nbf !== undefined && !unixSeconds(nbf)) return "the token's nbf must be an integer unix time";
  const skew = c.policy.clockSkewSec * 1000;
  const life = c.policy.maxTokenLifetimeSec * 1000;
  if (c.nowMs >= exp * 1000 + skew) return `the token had expired at ${c.clock}`;
  if (nbf !== undefined && nbf * 1000 - skew > c.nowMs) return `the token was not yet valid (nbf) at ${c.clock}`;
  if (iat * 1000 - skew > c.nowMs) return `the token was issued after ${c.clock} (iat)`;
  if (c.nowMs - iat * 1000 > life + skew) return `the token was too old (iat) at ${c.clock}`;
  if ((exp - iat) * 1000 > life) return `the token lives ${exp - iat} s; this cluster accepts at most ${c.policy.maxTokenLifetimeSec} s`;
  return null;
}

function unixSeconds(v: unknown): v is number {
  return typeof v === "number" && Number.isSafeInteger(v) && v >= 0;
}

function jsonObject(seg: string, what: string): Record<string, unknown> {
  let v: unknown;
  try {
    v = JSON.parse(STRICT_UTF8.decode(segment(seg, what)));
  } catch (err) {
    if (err instanceof InvalidArgumentError) throw err;
    throw new InvalidArgumentError(`the token's ${what} is not UTF-8 JSON`);
  }
  if (!isObject(v)) throw new InvalidArgumentError(`the token's ${what} is not a JSON object`);
  return v;
}

function segment(seg: string, what: string): Uint8Array {
  try {
    return base64url(seg);
  } catch {
    throw new InvalidArgumentError(`the token's ${what} is not canonical base64url`);
  }
}

function invalid(message: string): VaultError {
  return vaultError("TOKEN_INVALID", message);
}

function quote(s: string): string {
  return JSON.stringify(s.length > 64 ? `${s.slice(0, 64)}…` : s);
}
