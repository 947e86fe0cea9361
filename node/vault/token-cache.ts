// Verified token signatures, for jwt.ts to reuse (issue 15): a client reuses
// its token for many calls, and without this every call would pay the
// base64url, JSON and signature work again at the client port and on apply.
//
// Contract (what makes the cache change speed only, never a verdict):
// - an entry is added only after the token parsed and its signature verified
//   under `key`; it maps the exact token string to that key and the parsed
//   header and payload (frozen);
// - a hit counts only if the key the policy in force names for the entry's
//   issuer and kid has the same algorithm and public key bytes as `key`
//   (jwt.ts); so a rotation that retires or replaces the key invalidates it,
//   and the work skipped (parse, issuer and key lookup, signature) is a pure
//   function of (token, key) that gave success the first time;
// - the time-dependent claims and aud/sub are never cached: checked at each
//   use against the caller's time;
// - bounded: at most `capacity` entries, the oldest evicted first; an entry
//   is dropped once its exp + skew has passed at a use of the cache;
// - one instance per state machine or client gate, never shared across
//   clusters; it holds tokens in memory only and never logs them.
import { equalBytes } from "../../proto/crypto/index.js";
import type { IssuerKey } from "./issuers.js";

/** Entries a cache holds by default: a node's recently active users. */
export const TOKEN_CACHE_CAPACITY = 4096;

/** A token whose signature verified under `key`. */
export interface VerifiedSignature {
  readonly iss: string;
  readonly kid: string;
  readonly key: IssuerKey;
  readonly payload: Readonly<Record<string, unknown>>;
}

export class VerifiedTokens {
  private readonly entries = new Map<string, VerifiedSignature & { readonly expMs: number }>();
  /** The earliest exp (ms) among the entries; Infinity when empty. */
  private earliestExpMs = Infinity;

  constructor(private readonly capacity = TOKEN_CACHE_CAPACITY) {
    if (!Number.isSafeInteger(capacity) || capacity < 1) throw new Error(`VerifiedTokens: capacity must be a positive integer (got ${capacity})`);
  }

  get size(): number {
    return this.entries.size;
  }

  /** The entry for `token`, unless its exp + skewMs has passed at nowMs. */
  get(token: string, nowMs: number, skewMs: number): VerifiedSignature | undefined {
    this.dropExpired(nowMs, skewMs);
    return this.entries.get(token);
  }

  /** Remembers a verified token (one with an integer exp; others are not kept), evicting the oldest over capacity. */
  add(token: string, v: VerifiedSignature, nowMs: number, skewMs: number): void {
    const exp = v.payload.exp;
    if (typeof exp !== "number" || !Number.isSafeInteger(exp) || exp * 1000 + skewMs <= nowMs) return;
    this.entries.delete(token);
    if (this.entries.size >= this.capacity) this.entries.delete(this.entries.keys().next().value as string);
    this.entries.set(token, { ...v, payload: Object.freeze({ ...v.payload }), expMs: exp * 1000 });
    this.earliestExpMs = Math.min(this.earliestExpMs, exp * 1000);
  }

  /** A sweep only when the earliest entry expired: at most once per distinct exp, O(capacity) each. */
  private dropExpired(nowMs: number, skewMs: number): void {
    if (nowMs < this.earliestExpMs + skewMs) return;
    let earliest = Infinity;
    for (const [token, e] of this.entries) {
      if (e.expMs + skewMs <= nowMs) this.entries.delete(token);
      else earliest = Math.min(earliest, e.expMs);
    }
    this.earliestExpMs = earliest;
  }
}

/** True if `a` and `b` verify the same signatures: the same algorithm and public key. */
export function sameIssuerKey(a: IssuerKey, b: IssuerKey): boolean {
  return a === b || (a.alg === b.alg && equalBytes(a.publicKey, b.publicKey));
}
