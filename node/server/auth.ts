// Client authentication and admission at the client port (issue 13; docs/
// operations.md "Client authentication", docs/threat-model.md).
//
// Contract of ClientGate.admit, called once per VaultService call before the
// handler runs (so before anything is proposed):
// - the client address's token bucket first (a flood of bad tokens costs a
//   stranger its own bucket, not the node's JWT work);
// - then `authorization: Bearer <JWT>`, verified with jose against the JWKS
//   of the issuer the token names (`iss`), key by `kid`; ES256 or EdDSA only;
//   `aud` must be the cluster id; `exp` and `iat` required, with at most
//   clockSkewSec of skew and maxTokenLifetimeSec of lifetime and age.
//   Any failure: AuthError UNAUTHENTICATED;
// - a call about a user (every method but GetClusterDescriptor) needs
//   `sub` = that user, else AuthError PERMISSION_DENIED; GetClusterDescriptor
//   accepts any valid token of the cluster (its answer is public keys and
//   addresses, but a stranger without a token learns nothing);
// - then the user's token bucket.
// With authentication disabled (config `auth.disabled`, local tests only)
// only the address bucket applies. No token, key or claim beyond `iss`,
// `kid` and `sub` ever reaches an error message or a log line.
import { readFileSync, statSync } from "node:fs";
import type { Metadata } from "@grpc/grpc-js";
import { type JSONWebKeySet, type JWTPayload, createLocalJWKSet, decodeJwt, decodeProtectedHeader, errors as jose, jwtVerify } from "jose";
import type { AuthConfig, IssuerConfig } from "./config.js";
import type { Admission } from "./admission.js";
import type { Logger } from "./log.js";
import { type IssuerPolicy, keysFromJwks } from "../vault/index.js";

/** The JWS algorithms a token may use: ES256 (P-256) or EdDSA (Ed25519). */
export const TOKEN_ALGORITHMS = ["ES256", "EdDSA", "Ed25519"] as const;

/** How often a JWKS file's identity (mtime, size, inode) is re-checked, ms. */
const JWKS_RECHECK_MS = 1000;

/** A refused call: UNAUTHENTICATED (who are you?) or PERMISSION_DENIED (not for this user). Mapped in errors.ts. */
export class AuthError extends Error {
  override readonly name = "AuthError";
  constructor(readonly code: "UNAUTHENTICATED" | "PERMISSION_DENIED", message: string) {
    super(message);
  }
}

/** A JWKS file re-read when its mtime, size or inode change (a ConfigMap update swaps a symlink). */
class IssuerKeys {
  private stamp = "";
  private checkedAt = 0;
  private keys!: ReturnType<typeof createLocalJWKSet>;

  constructor(readonly cfg: IssuerConfig, private readonly log: Logger) {
    this.reload(true);
  }

  get(): ReturnType<typeof createLocalJWKSet> {
    const now = Date.now();
    if (now - this.checkedAt >= JWKS_RECHECK_MS) {
      this.checkedAt = now;
      this.reload(false);
    }
    return this.keys;
  }

  /** At start a bad file throws; later it is logged and the last good key set kept. */
  private reload(first: boolean): void {
    try {
      const st = statSync(this.cfg.jwksFile);
      const stamp = `${st.mtimeMs}:${st.size}:${st.ino}`;
      if (stamp === this.stamp) return;
      this.keys = createLocalJWKSet(parseJwks(readFileSync(this.cfg.jwksFile, "utf8"), this.cfg.jwksFile));
      this.stamp = stamp;
      if (!first) this.log.info("issuer key set reloaded", { issuer: this.cfg.issuer, file: this.cfg.jwksFile });
    } catch (err) {
      if (first) throw err;
      this.log.error("issuer key set not reloaded: keeping the previous one", { issuer: this.cfg.issuer, file: this.cfg.jwksFile, error: err });
    }
  }
}

/**
 * Parses a JWKS document; every key must be a public EC P-256 or OKP Ed25519
 * signing key with a `kid` (node/vault keysFromJwks: the keys the gate
 * accepts are the keys the replicated state can hold).
 */
export function parseJwks(text: string, file: string): JSONWebKeySet {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    throw new Error(`${file}: not JSON`);
  }
  try {
    keysFromJwks(doc);
  } catch (err) {
    throw new Error(`${file}: ${(err as Error).message}`);
  }
  return doc as JSONWebKeySet;
}

/**
 * The issuer keys a new cluster writes into its replicated state at
 * bootstrap (node/vault issuers.ts): each configured issuer's JWKS file, with
 * the skew and lifetime bounds; none with authentication disabled.
 */
export function bootstrapIssuers(auth: AuthConfig): IssuerPolicy | undefined {
  if (!auth.enabled) return undefined;
  const issuers = auth.issuers.map((i) => ({ iss: i.issuer, setTime: 0, keys: keysFromJwks(parseJwks(readFileSync(i.jwksFile, "utf8"), i.jwksFile)) }));
  return { clockSkewSec: auth.clockSkewSec, maxTokenLifetimeSec: auth.maxTokenLifetimeSec, issuers };
}

export interface GateOptions {
  readonly clusterId: string;
  readonly auth: AuthConfig;
  readonly admission: Admission;
  readonly log: Logger;
}

/** The one check in front of every VaultService handler. */
export class ClientGate {
  private readonly issuers = new Map<string, IssuerKeys>();

  constructor(private readonly o: GateOptions) {
    if (o.auth.enabled) for (const i of o.auth.issuers) this.issuers.set(i.issuer, new IssuerKeys(i, o.log));
  }

  get authenticating(): boolean {
    return this.o.auth.enabled;
  }

  /**
   * The caller's bearer token, for the entry to carry (re-verified on apply):
   * verified by admit when authenticating; otherwise whatever well-formed
   * token the call carries, if any.
   */
  bearer(metadata: Metadata): string | undefined {
    try {
      return bearerToken(metadata);
    } catch (err) {
      if (this.o.auth.enabled) throw err;
      return undefined;
    }
  }

  /**
   * Admits a call from `peer` (grpc-js getPeer) with `metadata`, about `user`
   * (undefined: a call about no user). Throws AuthError or AdmissionRefused.
   */
  async admit(peer: string, metadata: Metadata, user: string | undefined): Promise<void> {
    await this.o.admission.address(peerHost(peer));
    if (!this.o.auth.enabled) return;
    const subject = await this.authenticate(metadata);
    if (user !== undefined && subject !== user) {
      throw new AuthError("PERMISSION_DENIED", `the token's subject ${quote(subject)} is not the request's user ${quote(user)}`);
    }
    await this.o.admission.user(subject);
  }

  /** The verified token's subject. */
  private async authenticate(metadata: Metadata): Promise<string> {
    const token = bearerToken(metadata);
    const { issuer, kid } = unverifiedIssuer(token);
    const keys = this.issuers.get(issuer);
    if (keys === undefined) throw new AuthError("UNAUTHENTICATED", `unknown token issuer ${quote(issuer)}`);
    const a = this.o.auth as Extract<AuthConfig, { enabled: true }>;
    let payload: JWTPayload;
    try {
      ({ payload } = await jwtVerify(token, keys.get(), {
        issuer, audience: this.o.clusterId, algorithms: [...TOKEN_ALGORITHMS], clockTolerance: a.clockSkewSec,
        maxTokenAge: a.maxTokenLifetimeSec, requiredClaims: ["exp", "iat", "sub"],
      }));
    } catch (err) {
      throw new AuthError("UNAUTHENTICATED", verifyFailure(err, issuer, kid, this.o.clusterId));
    }
    const { exp, iat, sub } = payload as Required<Pick<JWTPayload, "exp" | "iat" | "sub">>;
    if (exp - iat > a.maxTokenLifetimeSec) {
      throw new AuthError("UNAUTHENTICATED", `the token lives ${exp - iat} s; this cluster accepts at most ${a.maxTokenLifetimeSec} s`);
    }
    return sub;
  }
}

function bearerToken(metadata: Metadata): string {
  const values = metadata.get("authorization");
  if (values.length === 0) throw new AuthError("UNAUTHENTICATED", "no authorization metadata: every call needs `authorization: Bearer <JWT>`");
  if (values.length > 1) throw new AuthError("UNAUTHENTICATED", "more than one authorization metadata value");
  const m = /^Bearer ([A-Za-z0-9_.-]+)$/.exec(String(values[0]));
  if (m === null) throw new AuthError("UNAUTHENTICATED", "the authorization metadata is not `Bearer <JWT>`");
  return m[1] as string;
}

/** The `iss` and `kid` a token claims, read before verification only to choose the key set. */
function unverifiedIssuer(token: string): { issuer: string; kid: string } {
  try {
    const iss = decodeJwt(token).iss;
    const kid = decodeProtectedHeader(token).kid ?? "";
    if (typeof iss !== "string" || iss === "") throw new AuthError("UNAUTHENTICATED", "the token names no issuer (iss)");
    return { issuer: iss, kid };
  } catch (err) {
    if (err instanceof AuthError) throw err;
    throw new AuthError("UNAUTHENTICATED", "the bearer token is not a JWT");
  }
}

/** A human reason for a jose verification failure (jose's messages never quote the token). */
function verifyFailure(err: unknown, issuer: string, kid: string, clusterId: string): string {
  if (err instanceof jose.JWTExpired) return "the token has expired";
  if (err instanceof jose.JWTClaimValidationFailed) {
    if (err.claim === "aud") return `the token's audience is not this cluster (${quote(clusterId)})`;
    if (err.claim === "iat" && err.reason === "check_failed") return "the token is too old (iat)";
    return `the token's ${err.claim} claim is ${err.reason === "missing" ? "missing" : "invalid"}: ${err.message}`;
  }
  if (err instanceof jose.JWKSNoMatchingKey) return `issuer ${quote(issuer)} has no key ${quote(kid)} for this token`;
  if (err instanceof jose.JWKSMultipleMatchingKeys) return `issuer ${quote(issuer)} has several keys matching ${quote(kid)}`;
  if (err instanceof jose.JWSSignatureVerificationFailed) return "the token's signature does not verify";
  if (err instanceof jose.JOSEAlgNotAllowed) return `the token's algorithm is not one of ${TOKEN_ALGORITHMS.join(", ")}`;
  if (err instanceof jose.JOSEError) return `invalid token (${err.code})`;
  return "invalid token";
}

/** The host of a grpc-js peer string ("1.2.3.4:5", "[::1]:5", "ipv4:1.2.3.4:5"). */
export function peerHost(peer: string): string {
  const p = peer.replace(/^ipv[46]:/, "");
  const i = p.lastIndexOf(":");
  const host = i < 0 ? p : p.slice(0, i);
  return host.startsWith("[") ? host.slice(1, -1) : host;
}

function quote(s: string): string {
  return JSON.stringify(s.length > 64 ? `${s.slice(0, 64)}…` : s);
}
