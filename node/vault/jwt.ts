// Verification on apply of a client's bearer token (a JWT, compact JWS) that
// a begin or register entry carries (docs/vault.md §1, docs/threat-model.md
// "Client authentication"): the same verdict on every node, from the issuer
// keys in the replicated state and the leader-assigned entry time alone.
// Synchronous and strict by construction (docs/decisions.md: why not jose):
//
// - three base64url segments (canonical, unpadded), at most MAX_TOKEN_BYTES;
// - header: a JSON object with exactly `alg` (ES256, EdDSA or Ed25519), `kid`
//   and optionally `typ`; anything else (crit, jku, x5u, "none") is refused;
// - payload: a JSON object with `iss`, `sub` (strings), `aud` (a string or an
//   array of strings), `exp`, `iat` and optionally `nbf` (integers, unix s);
//   other claims are signed and ignored;
// - the key is the issuer's key `kid`, of the algorithm the header names;
// - aud contains the cluster id; with skew s and the entry time now:
//   now < exp + s, nbf − s ≤ now, iat − s ≤ now, now − iat ≤ lifetime + s and
//   exp − iat ≤ lifetime (the bounds auth.ts applies at the client port);
// - sub = the entry's user, else PERMISSION_DENIED (TOKEN_SUBJECT_MISMATCH);
//   every other failure is UNAUTHENTICATED (TOKEN_INVALID).
//
// Messages name at most the issuer, key id and subject; never the token.
import {
  ED25519_PUBLIC_KEY_LENGTH, ED25519_SIGNATURE_LENGTH, InvalidArgumentError, SIGNATURE_LENGTH, verifyEd25519, verifyMessage,
} from "../../proto/crypto/index.js";
import { type IssuerKey, type IssuerPolicy, type TokenAlgorithm, base64url, isObject, jwsAlgorithm } from "./issuers.js";
import { type VaultError, vaultError } from "./result.js";

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

export interface TokenContext {
  readonly policy: IssuerPolicy;
  readonly clusterId: string;
  /** The entry's user: the token's sub must name it. */
  readonly user: string;
  /** The leader-assigned time of the entry (unix ms). */
  readonly nowMs: number;
}

/** null if `token` is a valid token for `c.user` at `c.nowMs`; else the refusal. Never throws. */
export function tokenRefusal(token: string | undefined, c: TokenContext): VaultError | null {
  if (token === undefined) return invalid("the entry carries no client token: this cluster verifies tokens on apply");
  let jws: CompactJws;
  try {
    jws = parseCompactJws(token);
  } catch (err) {
    return invalid(`the client token does not parse: ${(err as Error).message}`);
  }
  const { iss, sub } = jws.payload;
  if (typeof iss !== "string") return invalid("the client token names no issuer (iss)");
  const issuer = c.policy.issuers.find((i) => i.iss === iss);
  if (issuer === undefined) return invalid(`unknown token issuer ${quote(iss)}`);
  const key = issuer.keys.find((k) => k.kid === jws.kid);
  if (key === undefined) return invalid(`issuer ${quote(iss)} has no key ${quote(jws.kid)}`);
  if (!verifyJwsSignature(key, jws.alg, jws.signingInput, jws.signature)) return invalid("the client token's signature does not verify");
  const claims = claimRefusal(jws.payload, c);
  if (claims !== null) return invalid(claims);
  if (sub !== c.user) return vaultError("TOKEN_SUBJECT_MISMATCH", `the token's subject ${quote(String(sub))} is not the entry's user ${quote(c.user)}`);
  return null;
}

/** Why the verified payload's aud, sub and times do not hold at c.nowMs; null if they do. */
function claimRefusal(p: Record<string, unknown>, c: TokenContext): string | null {
  const aud = typeof p.aud === "string" ? [p.aud] : p.aud;
  if (!Array.isArray(aud) || !aud.every((a) => typeof a === "string")) return "the token's audience (aud) is missing or not strings";
  if (!aud.includes(c.clusterId)) return `the token's audience is not this cluster (${quote(c.clusterId)})`;
  if (typeof p.sub !== "string" || p.sub === "") return "the token names no subject (sub)";
  const { exp, iat, nbf } = p;
  if (!unixSeconds(exp) || !unixSeconds(iat)) return "the token's exp and iat must be integer unix times";
  if (nbf !== undefined && !unixSeconds(nbf)) return "the token's nbf must be an integer unix time";
  const skew = c.policy.clockSkewSec * 1000;
  const life = c.policy.maxTokenLifetimeSec * 1000;
  if (c.nowMs >= exp * 1000 + skew) return "the token had expired at the entry's time";
  if (nbf !== undefined && nbf * 1000 - skew > c.nowMs) return "the token was not yet valid (nbf) at the entry's time";
  if (iat * 1000 - skew > c.nowMs) return "the token was issued after the entry's time (iat)";
  if (c.nowMs - iat * 1000 > life + skew) return "the token was too old (iat) at the entry's time";
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
