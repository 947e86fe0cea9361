// Client authentication and admission at the client port (issue 13; docs/
// operations.md "Client authentication", docs/threat-model.md).
//
// Contract of ClientGate.admit, called once per VaultService call before the
// handler runs (so before anything is proposed):
// - the client address's token bucket first (a flood of bad tokens costs a
//   stranger its own bucket, not the node's JWT work);
// - then `authorization: Bearer <JWT>`, verified by node/vault jwt.ts (the
//   parser and verification the apply uses) against the issuer keys in this
//   node's replicated state as applied now, at this node's clock: the port
//   follows an issuer-keys rotation as soon as this node applies it (the
//   caller's `issuers()`; node.ts gives the config's keys for a state that
//   has none: a cluster bootstrapped before they entered the state). Any
//   failure: AuthError UNAUTHENTICATED. No keys (`issuers()` null: a node
//   still catching up) admits nobody: AuthError UNAVAILABLE, never a call
//   unverified;
// - a call about a user (every method but GetClusterDescriptor) needs
//   `sub` = that user, else AuthError PERMISSION_DENIED; GetClusterDescriptor
//   accepts any valid token of the cluster (its answer is public keys and
//   addresses, but a stranger without a token learns nothing);
// - then the user's token bucket.
// Verified signatures are cached per gate (node/vault token-cache.ts): a
// client that reuses its token pays one signature, the claims are checked at
// every call. With authentication disabled (config `auth.disabled`, local
// tests only) only the address bucket applies. The JWKS files of the config
// are read at bootstrap (bootstrapIssuers) and, for a state without issuer
// keys (a legacy cluster), at the first call (legacyIssuers). No token, key or claim
// beyond `iss`, `kid` and `sub` ever reaches an error message or a log line.
import { readFileSync } from "node:fs";
import type { Metadata } from "@grpc/grpc-js";
import type { AuthConfig } from "./config.js";
import type { Admission } from "./admission.js";
import { type IssuerKey, type IssuerPolicy, VerifiedTokens, keysFromJwks, verifyToken } from "../vault/index.js";
import { addressKey } from "../../proto/connection-gate.js";

/**
 * A refused call: UNAUTHENTICATED (who are you?), PERMISSION_DENIED (not for
 * this user) or UNAVAILABLE (this node cannot verify tokens yet: ask another).
 * Mapped in errors.ts.
 */
export class AuthError extends Error {
  override readonly name = "AuthError";
  constructor(readonly code: "UNAUTHENTICATED" | "PERMISSION_DENIED" | "UNAVAILABLE", message: string) {
    super(message);
  }
}

/**
 * The issuer keys a new cluster writes into its replicated state at
 * bootstrap (node/vault issuers.ts): each configured issuer's JWKS file, with
 * the skew and lifetime bounds; none with authentication disabled. The only
 * reader of the JWKS files and bounds of the config: from then on the state
 * holds the keys, changed only by a signed issuer-keys entry.
 */
export function bootstrapIssuers(auth: AuthConfig): IssuerPolicy | undefined {
  if (!auth.enabled) return undefined;
  const issuers = auth.issuers.map((i) => ({ iss: i.issuer, setTime: 0, keys: jwksFileKeys(i.jwksFile) }));
  return { clockSkewSec: auth.clockSkewSec, maxTokenLifetimeSec: auth.maxTokenLifetimeSec, issuers };
}

/**
 * The config's issuer keys for a state that holds none (a cluster bootstrapped
 * before the keys entered the state, then upgraded in place), read when the
 * first call needs them and kept: a node of a current cluster never reads its
 * JWKS files after bootstrap, so a missing or edited file stops no restart.
 * Files that cannot be read are reported once and admit nobody (null) until
 * the node restarts.
 */
export function legacyIssuers(auth: AuthConfig, onError: (err: Error) => void): () => IssuerPolicy | null {
  let policy: IssuerPolicy | null | undefined;
  return () => {
    if (policy !== undefined) return policy;
    try {
      policy = bootstrapIssuers(auth) ?? null;
    } catch (err) {
      onError(err as Error);
      policy = null;
    }
    return policy;
  };
}

/**
 * The keys of a JWKS file: every key must be a public EC P-256 or OKP
 * Ed25519 signing key with a `kid` (node/vault keysFromJwks); throws an
 * Error naming the file and the first key that is not.
 */
function jwksFileKeys(file: string): IssuerKey[] {
  const text = readFileSync(file, "utf8");
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    throw new Error(`${file}: not JSON`);
  }
  try {
    return keysFromJwks(doc);
  } catch (err) {
    throw new Error(`${file}: ${(err as Error).message}`);
  }
}

export interface GateOptions {
  readonly clusterId: string;
  /** Config `auth.enabled`: false (`auth.disabled`, local tests only) checks no token. */
  readonly authenticating: boolean;
  /** The issuer keys of this node's replicated state as applied now (VaultStateMachine.issuers); null: none yet. */
  readonly issuers: () => IssuerPolicy | null;
  readonly admission: Admission;
  /** The verified-signature cache to use (default: the gate's own): the applying state machine's, so that an entry's token is not verified twice. */
  readonly verified?: () => VerifiedTokens;
  /** The time tokens are checked at (unix ms): the cluster's (cluster-clock.ts). Default: this node's clock. */
  readonly now?: () => number;
}

/** The one check in front of every VaultService handler. */
export class ClientGate {
  private readonly verified: () => VerifiedTokens;

  constructor(private readonly o: GateOptions) {
    const own = new VerifiedTokens();
    this.verified = o.verified ?? (() => own);
  }

  get authenticating(): boolean {
    return this.o.authenticating;
  }

  /**
   * The caller's bearer token, for the entry to carry (verified again on
   * apply): verified by admit when authenticating; otherwise whatever
   * well-formed token the call carries, if any.
   */
  bearer(metadata: Metadata): string | undefined {
    try {
      return bearerToken(metadata);
    } catch (err) {
      if (this.o.authenticating) throw err;
      return undefined;
    }
  }

  /**
   * Admits a call from `peer` (grpc-js getPeer) with `metadata`, about `user`
   * (undefined: a call about no user). Throws AuthError or AdmissionRefused.
   */
  async admit(peer: string, metadata: Metadata, user: string | undefined): Promise<void> {
    await this.o.admission.address(addressKey(peerHost(peer)));
    if (!this.o.authenticating) return;
    const subject = this.authenticate(metadata);
    if (user !== undefined && subject !== user) {
      throw new AuthError("PERMISSION_DENIED", `the token's subject ${quote(subject)} is not the request's user ${quote(user)}`);
    }
    await this.o.admission.user(subject);
  }

  /** The verified token's subject. */
  private authenticate(metadata: Metadata): string {
    const token = bearerToken(metadata);
    const policy = this.o.issuers();
    if (policy === null) {
      throw new AuthError("UNAVAILABLE", "this node's replicated state holds no token issuer keys yet (still catching up): ask another node");
    }
    const v = verifyToken(token, { policy, clusterId: this.o.clusterId, nowMs: (this.o.now ?? Date.now)(), clock: "this node's time", cache: this.verified() });
    if (!v.ok) throw new AuthError("UNAUTHENTICATED", v.error.message);
    return v.subject;
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
