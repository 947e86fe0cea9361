// Rotation of one issuer's keys in the replicated state (command kind 9,
// docs/operations.md "Issuer keys"). The new key set is a compact JWS made by
// the app's account service with a key of the issuer's CURRENT set, so a node
// cannot forge one:
//
//   header  { alg: ES256 | EdDSA, kid: a current key of iss, typ? }
//   payload { iss, aud: the cluster id (or an array holding it), iat: unix s, keys: [public JWKs] }
//
// Applied only if it verifies, names this cluster, is not dated after the
// entry's leader time (beyond the skew) and is newer than the set it
// replaces (iat > the set's time: an old signed set cannot be replayed to
// bring back a retired key). Clusters without issuer keys have none to rotate.
import { type Issuer, type IssuerPolicy, keysFromJwks, validateIssuer } from "./issuers.js";
import { type CompactJws, parseCompactJws, verifyJwsSignature } from "./jwt.js";
import { type VaultResult, vaultError } from "./result.js";

export interface Rotation {
  readonly result: VaultResult;
  /** The policy to store; undefined: unchanged. */
  readonly next?: IssuerPolicy;
}

/** The outcome of a signed key set applied to `policy` at leader time `nowMs`. Never throws. */
export function rotateIssuerKeys(policy: IssuerPolicy | null, signedKeys: string, clusterId: string, nowMs: number): Rotation {
  if (policy === null) return refused("INVALID_ARGUMENT", "this cluster holds no issuer keys (authentication was off at bootstrap): there is no key set to rotate");
  let jws: CompactJws;
  try {
    jws = parseCompactJws(signedKeys);
  } catch (err) {
    return refused("INVALID_ARGUMENT", `the signed key set does not parse: ${(err as Error).message}`);
  }
  const p = jws.payload;
  const current = policy.issuers.find((i) => i.iss === p.iss);
  if (current === undefined) return refused("INVALID_ARGUMENT", `the signed key set names no issuer of this cluster (${JSON.stringify(String(p.iss).slice(0, 64))})`);
  const key = current.keys.find((k) => k.kid === jws.kid);
  if (key === undefined || !verifyJwsSignature(key, jws.alg, jws.signingInput, jws.signature)) {
    return refused("BAD_SIGNATURE", `the key set is not signed by a current key of issuer ${JSON.stringify(current.iss)}`);
  }
  const next = nextIssuer(current, p, clusterId, nowMs, policy.clockSkewSec);
  if (typeof next === "string") return refused(next.startsWith("stale") ? "VERSION_MISMATCH" : "INVALID_ARGUMENT", next);
  return { result: { ok: true, kind: "issuers" }, next: { ...policy, issuers: policy.issuers.map((i) => (i === current ? next : i)) } };
}

/** The issuer the verified payload installs, or why it may not. */
function nextIssuer(current: Issuer, p: Record<string, unknown>, clusterId: string, nowMs: number, skewSec: number): Issuer | string {
  const aud = typeof p.aud === "string" ? [p.aud] : p.aud;
  if (!Array.isArray(aud) || !aud.includes(clusterId)) return `the signed key set is not for this cluster (${JSON.stringify(clusterId)})`;
  const iat = p.iat;
  if (typeof iat !== "number" || !Number.isSafeInteger(iat) || iat < 0) return "the signed key set needs an integer iat";
  if ((iat - skewSec) * 1000 > nowMs) return "the signed key set is dated after the entry's time (iat)";
  if (iat <= current.setTime) return `stale: the signed key set (iat ${iat}) is not newer than the current one (${current.setTime})`;
  try {
    const next = { iss: current.iss, setTime: iat, keys: keysFromJwks({ keys: p.keys }) };
    validateIssuer(next);
    return next;
  } catch (err) {
    return `the signed key set's keys: ${(err as Error).message}`;
  }
}

function refused(reason: "INVALID_ARGUMENT" | "BAD_SIGNATURE" | "VERSION_MISMATCH", message: string): Rotation {
  return { result: vaultError(reason, message) };
}
