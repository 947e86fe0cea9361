// The development token issuer (docs/operations.md "Client authentication"):
// an Ed25519 key pair that `npm start` makes next to the local cluster and
// test harnesses make next to theirs, so that local `bkv` commands carry real
// tokens with no extra step. Production tokens come from the messaging app's
// account service; a node trusts this issuer only if its config lists the
// public JWKS written here.
//
//   <dir>/dev-issuer.key.json   private, mode 0600: { issuer, audience, kid, alg, privateJwk }
//   <dir>/dev-issuer.jwks.json  public: the JWKS the nodes' auth.issuers[].jwksFile names
import { existsSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { type JsonWebKey, type KeyObject, createPrivateKey, generateKeyPairSync, randomBytes, sign } from "node:crypto";
import { ClientError } from "../sdk/errors.js";
import { readText } from "../sdk/io-step.js";

export const DEV_ISSUER = "bkv-dev-issuer";
export const DEV_KEY_FILE = "dev-issuer.key.json";
export const DEV_JWKS_FILE = "dev-issuer.jwks.json";
/** Lifetime of a minted development token, seconds. */
export const DEV_TOKEN_TTL_SEC = 300;
/** The subject of a token minted for a call about no user (GetClusterDescriptor). */
export const DEV_NO_USER_SUBJECT = "bkv-cli";

interface KeyFile {
  readonly issuer: string;
  /** The cluster id the tokens are for (their `aud`). */
  readonly audience: string;
  readonly kid: string;
  readonly alg: "EdDSA";
  readonly privateJwk: JsonWebKey;
}

export interface DevIssuer {
  readonly issuer: string;
  readonly audience: string;
  readonly kid: string;
  /** The Ed25519 private key. */
  readonly key: KeyObject;
}

/** Creates the key pair in `dir` unless it exists; returns the two file paths. */
export async function createDevIssuer(dir: string, clusterId: string): Promise<{ keyFile: string; jwksFile: string }> {
  const keyFile = join(dir, DEV_KEY_FILE);
  const jwksFile = join(dir, DEV_JWKS_FILE);
  if (existsSync(keyFile) && existsSync(jwksFile)) return { keyFile, jwksFile };
  const { publicKey, privateKey } = generateKeyPairSync("ed25519");
  const kid = `dev-${randomBytes(6).toString("hex")}`;
  const file: KeyFile = { issuer: DEV_ISSUER, audience: clusterId, kid, alg: "EdDSA", privateJwk: privateKey.export({ format: "jwk" }) };
  const pub = { ...publicKey.export({ format: "jwk" }), kid, alg: "EdDSA", use: "sig" };
  writeAtomically(keyFile, `${JSON.stringify(file)}\n`, 0o600);
  writeAtomically(jwksFile, `${JSON.stringify({ keys: [pub] }, null, 2)}\n`, 0o644);
  return { keyFile, jwksFile };
}

/**
 * Reads a key file that createDevIssuer wrote. One that cannot be read, or
 * is not such a file, is a ClientError "IO" naming the file and never
 * quoting it: JSON.parse's message quotes the text around a bad token, here
 * a private key.
 */
export async function loadDevIssuer(keyFile: string): Promise<DevIssuer> {
  const text = await readText(keyFile);
  try {
    const f = JSON.parse(text) as KeyFile;
    if (![f.issuer, f.audience, f.kid].every((v) => typeof v === "string")) throw new Error("fields");
    return { issuer: f.issuer, audience: f.audience, kid: f.kid, key: createPrivateKey({ key: f.privateJwk, format: "jwk" }) };
  } catch {
    throw new ClientError("IO", `${keyFile}: not a development issuer key file ({issuer, audience, kid, alg, privateJwk} with an Ed25519 JWK, as \`npm start\` writes it)`);
  }
}

export interface MintOptions {
  readonly subject: string;
  /** Default: the issuer's audience (its cluster id). */
  readonly audience?: string;
  readonly ttlSec?: number;
  /** Unix seconds; default now. */
  readonly now?: number;
}

/** A signed token (a compact JWS, EdDSA) for `subject`. */
export async function mintToken(issuer: DevIssuer, o: MintOptions): Promise<string> {
  const now = o.now ?? Math.floor(Date.now() / 1000);
  const header = { alg: "EdDSA", kid: issuer.kid, typ: "JWT" };
  const payload = { iss: issuer.issuer, aud: o.audience ?? issuer.audience, sub: o.subject, iat: now, exp: now + (o.ttlSec ?? DEV_TOKEN_TTL_SEC) };
  const input = `${base64urlJson(header)}.${base64urlJson(payload)}`;
  return `${input}.${sign(null, Buffer.from(input), issuer.key).toString("base64url")}`;
}

function base64urlJson(v: object): string {
  return Buffer.from(JSON.stringify(v)).toString("base64url");
}

/** Users whose tokens a provider keeps (the least recently minted go first): a load generator may name millions. */
const TOKEN_CACHE_USERS = 10_000;

/**
 * A token provider for the call's user (sub = the user), as an app does it:
 * one token per user, reused for every call and minted again once less than
 * half of its lifetime is left (DEV_TOKEN_TTL_SEC), so that a node verifies
 * its signature once and then serves it from its cache (node/vault
 * token-cache.ts), and a benchmark's calls do not each pay a signature.
 */
export function devTokenProvider(issuer: DevIssuer, audience?: string, nowMs: () => number = Date.now): (user: string | null) => Promise<string> {
  const cache = new Map<string, { token: Promise<string>; renewAt: number }>();
  return (user) => {
    const subject = user ?? DEV_NO_USER_SUBJECT;
    const now = Math.floor(nowMs() / 1000);
    let hit = cache.get(subject);
    if (hit === undefined || now >= hit.renewAt) {
      hit = { token: mintToken(issuer, { subject, now, ...(audience === undefined ? {} : { audience }) }), renewAt: now + Math.floor(DEV_TOKEN_TTL_SEC / 2) };
      cache.delete(subject);
      cache.set(subject, hit);
      if (cache.size > TOKEN_CACHE_USERS) cache.delete(cache.keys().next().value as string);
    }
    return hit.token;
  };
}

function writeAtomically(file: string, text: string, mode: number): void {
  const temp = `${file}.tmp-${randomBytes(4).toString("hex")}`;
  writeFileSync(temp, text, { mode });
  renameSync(temp, file);
}
