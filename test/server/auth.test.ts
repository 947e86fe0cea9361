// ClientGate (node/server/auth.ts) as a unit: ES256 as well as EdDSA, the
// algorithms refused, JWKS files refused at start, a bad reload keeping the
// last good key set, and authentication off (admission only).
import test from "ava";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Metadata } from "@grpc/grpc-js";
import { type CryptoKey, SignJWT, UnsecuredJWT, exportJWK, generateKeyPair } from "jose";
import { AuthError, ClientGate } from "../../node/server/auth.js";
import { Admission } from "../../node/server/admission.js";
import type { AuthConfig } from "../../node/server/config.js";
import type { Logger } from "../../node/server/log.js";

const LIMITS = { userPerSec: 1000, userBurst: 1000, addressPerSec: 1000, addressBurst: 1000, maxMessageBytes: 1 << 20, maxConcurrentStreams: 10 };
const ISS = "https://accounts.example";
const quiet: Logger = { debug: () => {}, info: () => {}, warn: () => {}, error: () => {} };

async function es256() {
  const { publicKey, privateKey } = await generateKeyPair("ES256", { extractable: true });
  return { privateKey, jwk: { ...(await exportJWK(publicKey)), kid: "k-es", alg: "ES256" } };
}

function jwksFile(keys: object[]): string {
  const f = join(mkdtempSync(join(tmpdir(), "bkv-jwks-")), "jwks.json");
  writeFileSync(f, JSON.stringify({ keys }));
  return f;
}

function gate(file: string, auth?: AuthConfig): ClientGate {
  return new ClientGate({
    clusterId: "c1", auth: auth ?? { enabled: true, issuers: [{ issuer: ISS, jwksFile: file }], clockSkewSec: 5, maxTokenLifetimeSec: 600 },
    admission: new Admission(LIMITS), log: quiet,
  });
}

function bearer(token: string): Metadata {
  const m = new Metadata();
  m.set("authorization", `Bearer ${token}`);
  return m;
}

function sign(key: CryptoKey, sub: string, alg = "ES256") {
  return new SignJWT({}).setProtectedHeader({ alg, kid: "k-es" }).setIssuer(ISS).setAudience("c1").setSubject(sub).setIssuedAt().setExpirationTime("5m").sign(key);
}

test("an ES256 token of the configured issuer passes for its subject only", async (t) => {
  const k = await es256();
  const g = gate(jwksFile([k.jwk]));
  const tok = await sign(k.privateKey, "alice");
  await t.notThrowsAsync(g.admit("127.0.0.1:1", bearer(tok), "alice"));
  await t.notThrowsAsync(g.admit("127.0.0.1:1", bearer(tok), undefined));
  const denied = await t.throwsAsync(g.admit("127.0.0.1:1", bearer(tok), "bob"), { instanceOf: AuthError });
  t.is(denied?.code, "PERMISSION_DENIED");
});

test("an unsecured token (alg none) and a malformed header are UNAUTHENTICATED", async (t) => {
  const k = await es256();
  const g = gate(jwksFile([k.jwk]));
  const none = new UnsecuredJWT({}).setIssuer(ISS).setAudience("c1").setSubject("alice").setIssuedAt().setExpirationTime("5m").encode();
  const e1 = await t.throwsAsync(g.admit("127.0.0.1:1", bearer(none), "alice"), { instanceOf: AuthError });
  t.is(e1?.code, "UNAUTHENTICATED");
  const m = new Metadata();
  m.set("authorization", "Basic YWxpY2U6cHc=");
  await t.throwsAsync(g.admit("127.0.0.1:1", m, "alice"), { instanceOf: AuthError, message: /not `Bearer <JWT>`/ });
});

test("a JWKS with a private key, another curve or no kid stops the node at start", async (t) => {
  const { privateKey } = await generateKeyPair("ES256", { extractable: true });
  const priv = { ...(await exportJWK(privateKey)), kid: "p" };
  t.throws(() => gate(jwksFile([priv])), { message: /holds a private key/ });
  t.throws(() => gate(jwksFile([{ kty: "EC", crv: "P-384", x: "a", y: "b", kid: "x" }])), { message: /not an EC P-256 or OKP Ed25519/ });
  const k = await es256();
  const { kid: _kid, ...noKid } = k.jwk;
  t.throws(() => gate(jwksFile([noKid])), { message: /has no kid/ });
});

test("a JWKS file rewritten with garbage keeps the last good key set", async (t) => {
  const k = await es256();
  const file = jwksFile([k.jwk]);
  const g = gate(file);
  const tok = await sign(k.privateKey, "alice");
  await t.notThrowsAsync(g.admit("127.0.0.1:1", bearer(tok), "alice"));
  writeFileSync(file, "{ not json");
  await new Promise((r) => setTimeout(r, 1100)); // past the re-check interval
  await t.notThrowsAsync(g.admit("127.0.0.1:1", bearer(tok), "alice"));
});

test("authentication off: no token needed, the address bucket still applies", async (t) => {
  const g = new ClientGate({ clusterId: "c1", auth: { enabled: false }, admission: new Admission({ ...LIMITS, addressPerSec: 1, addressBurst: 1 }), log: quiet });
  await t.notThrowsAsync(g.admit("10.0.0.9:1", new Metadata(), "alice"));
  await t.notThrowsAsync(g.admit("10.0.0.9:1", new Metadata(), "alice"));
  await t.throwsAsync(g.admit("10.0.0.9:1", new Metadata(), "alice"), { message: /client address/ });
});
