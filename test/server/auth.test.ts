// ClientGate (node/server/auth.ts) as a unit: tokens verified against the
// issuer keys of the replicated state as the node applied them (node/vault
// jwt.ts), ES256 as well as EdDSA, the messages a refused caller gets, a
// rotation followed at once (cached tokens included), no keys yet
// (UNAVAILABLE), JWKS files read at bootstrap only, and authentication off
// (admission only).
import test from "ava";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { Metadata } from "@grpc/grpc-js";
import { type CryptoKey, type JWK, SignJWT, UnsecuredJWT, exportJWK, generateKeyPair } from "jose";
import { AuthError, ClientGate, bootstrapIssuers, legacyIssuers } from "../../node/server/auth.js";
import { Admission } from "../../node/server/admission.js";
import { type IssuerPolicy, VerifiedTokens, keysFromJwks, tokenRefusal } from "../../node/vault/index.js";
import { tempDir } from "../temp.js";

const LIMITS = { userPerSec: 1000, userBurst: 1000, addressPerSec: 1000, addressBurst: 1000, maxMessageBytes: 1 << 20, maxConcurrentStreams: 10 };
const ISS = "https://accounts.example";

async function keyPair(alg: "ES256" | "EdDSA", kid: string) {
  const { publicKey, privateKey } = await generateKeyPair(alg, { extractable: true, ...(alg === "EdDSA" ? { crv: "Ed25519" } : {}) });
  return { alg, kid, privateKey, jwk: { ...(await exportJWK(publicKey)), kid, alg } as JWK };
}

type KeyPair = Awaited<ReturnType<typeof keyPair>>;

function policy(...keys: KeyPair[]): IssuerPolicy {
  return { clockSkewSec: 5, maxTokenLifetimeSec: 600, issuers: [{ iss: ISS, setTime: 0, keys: keysFromJwks({ keys: keys.map((k) => k.jwk) }) }] };
}

/** A gate over a mutable replicated state: `state.issuers` is what the node applied so far. */
function gate(issuers: IssuerPolicy | null) {
  const state = { issuers };
  const g = new ClientGate({ clusterId: "c1", authenticating: true, admission: new Admission(LIMITS), issuers: () => state.issuers });
  return { g, state };
}

function bearer(token: string): Metadata {
  const m = new Metadata();
  m.set("authorization", `Bearer ${token}`);
  return m;
}

function sign(k: { alg: string; kid: string; privateKey: CryptoKey }, sub: string, o: { aud?: string; iss?: string; iat?: number; ttl?: number } = {}) {
  const iat = o.iat ?? Math.floor(Date.now() / 1000);
  return new SignJWT({}).setProtectedHeader({ alg: k.alg, kid: k.kid }).setIssuer(o.iss ?? ISS).setAudience(o.aud ?? "c1").setSubject(sub)
    .setIssuedAt(iat).setExpirationTime(iat + (o.ttl ?? 300)).sign(k.privateKey);
}

async function refusal(p: Promise<void>): Promise<AuthError> {
  try {
    await p;
  } catch (err) {
    if (err instanceof AuthError) return err;
    throw err;
  }
  throw new Error("admitted");
}

test("ES256 and EdDSA tokens of the replicated keys pass for their subject only; any subject may read the descriptor", async (t) => {
  const es = await keyPair("ES256", "k-es");
  const ed = await keyPair("EdDSA", "k-ed");
  const { g } = gate(policy(es, ed));
  for (const k of [es, ed]) {
    const tok = await sign(k, "alice");
    await t.notThrowsAsync(g.admit("127.0.0.1:1", bearer(tok), "alice"));
    await t.notThrowsAsync(g.admit("127.0.0.1:1", bearer(tok), "alice"), "again, from the cache");
    await t.notThrowsAsync(g.admit("127.0.0.1:1", bearer(tok), undefined));
    const denied = await refusal(g.admit("127.0.0.1:1", bearer(tok), "bob"));
    t.is(denied.code, "PERMISSION_DENIED");
    t.regex(denied.message, /the token's subject "alice" is not the request's user "bob"/);
  }
});

test("the messages a refused caller gets: expired, wrong audience, unknown issuer, unknown key, bad signature, too long-lived, not a JWT, no token", async (t) => {
  const es = await keyPair("ES256", "k-es");
  const stranger = await keyPair("ES256", "k-es");
  const other = await keyPair("EdDSA", "k-other");
  const { g } = gate(policy(es));
  const now = Math.floor(Date.now() / 1000);
  const cases: Array<[string, Metadata, RegExp]> = [
    ["expired", bearer(await sign(es, "alice", { iat: now - 400, ttl: 300 })), /the token had expired at this node's time/],
    ["wrong audience", bearer(await sign(es, "alice", { aud: "c2" })), /the token's audience is not this cluster \("c1"\)/],
    ["unknown issuer", bearer(await sign(es, "alice", { iss: "https://evil.example" })), /unknown token issuer "https:\/\/evil\.example"/],
    ["unknown key", bearer(await sign(other, "alice")), /issuer "https:\/\/accounts\.example" has no key "k-other"/],
    ["bad signature", bearer(await sign(stranger, "alice")), /signature does not verify/],
    ["too long-lived", bearer(await sign(es, "alice", { ttl: 3600 })), /the token lives 3600 s; this cluster accepts at most 600 s/],
    ["not a JWT", bearer("not-a-jwt"), /not a JWT/],
    ["alg none", bearer(new UnsecuredJWT({}).setIssuer(ISS).setAudience("c1").setSubject("alice").setIssuedAt().setExpirationTime("5m").encode()), /not a JWT/], // an empty signature segment
    ["no token", new Metadata(), /no authorization metadata/],
  ];
  const basic = new Metadata();
  basic.set("authorization", "Basic YWxpY2U6cHc=");
  cases.push(["not Bearer", basic, /not `Bearer <JWT>`/]);
  for (const [name, metadata, why] of cases) {
    const e = await refusal(g.admit("127.0.0.1:1", metadata, "alice"));
    t.is(e.code, "UNAUTHENTICATED", name);
    t.regex(e.message, why, name);
    const token = String(metadata.get("authorization")[0] ?? "").split(".")[2];
    if (token !== undefined && token.length > 8) t.false(e.message.includes(token), `${name}: the message quotes the token`);
  }
});

test("the port follows the replicated keys at once: a key rotated in is accepted, a retired key's cached token refused", async (t) => {
  const old = await keyPair("EdDSA", "k-old");
  const next = await keyPair("ES256", "k-next");
  const { g, state } = gate(policy(old));
  const oldToken = await sign(old, "alice");
  const nextToken = await sign(next, "alice");
  await t.notThrowsAsync(g.admit("127.0.0.1:1", bearer(oldToken), "alice")); // verified: now cached
  t.regex((await refusal(g.admit("127.0.0.1:1", bearer(nextToken), "alice"))).message, /has no key "k-next"/);
  state.issuers = policy(old, next);
  await t.notThrowsAsync(g.admit("127.0.0.1:1", bearer(nextToken), "alice"));
  state.issuers = policy(next);
  const retired = await refusal(g.admit("127.0.0.1:1", bearer(oldToken), "alice"));
  t.is(retired.code, "UNAUTHENTICATED");
  t.regex(retired.message, /has no key "k-old"/);
});

test("a node whose state holds no issuer keys yet admits nobody: UNAVAILABLE, ask another node", async (t) => {
  const es = await keyPair("ES256", "k-es");
  const { g, state } = gate(null);
  const tok = await sign(es, "alice");
  const e = await refusal(g.admit("127.0.0.1:1", bearer(tok), "alice"));
  t.is(e.code, "UNAVAILABLE");
  t.regex(e.message, /holds no token issuer keys yet .*ask another node/);
  t.is((await refusal(g.admit("127.0.0.1:1", new Metadata(), "alice"))).code, "UNAUTHENTICATED", "no token is refused as such");
  state.issuers = policy(es);
  await t.notThrowsAsync(g.admit("127.0.0.1:1", bearer(tok), "alice"), "once caught up");
});

test("JWKS files are read at bootstrap only: a private key, another curve or no kid stops a bootstrapping node, naming the file", async (t) => {
  const file = (keys: object[]) => {
    const f = join(tempDir(t, "bkv-jwks-"), "jwks.json");
    writeFileSync(f, JSON.stringify({ keys }));
    return f;
  };
  const auth = (jwksFile: string) => ({ enabled: true as const, issuers: [{ issuer: ISS, jwksFile }], clockSkewSec: 5, maxTokenLifetimeSec: 600 });
  const { privateKey } = await generateKeyPair("ES256", { extractable: true });
  const priv = { ...(await exportJWK(privateKey)), kid: "p" };
  t.throws(() => bootstrapIssuers(auth(file([priv]))), { message: /jwks\.json: keys\[0\]: holds a private key/ });
  t.throws(() => bootstrapIssuers(auth(file([{ kty: "EC", crv: "P-384", x: "a", y: "b", kid: "x" }]))), { message: /not an EC P-256 or OKP Ed25519/ });
  const es = await keyPair("ES256", "k-es");
  const { kid: _kid, ...noKid } = es.jwk;
  t.throws(() => bootstrapIssuers(auth(file([noKid]))), { message: /has no kid/ });
  t.deepEqual(bootstrapIssuers(auth(file([es.jwk]))), policy(es));
  t.is(bootstrapIssuers({ enabled: false }), undefined);
});

test("authentication off: no token needed, the address bucket still applies", async (t) => {
  const g = new ClientGate({ clusterId: "c1", authenticating: false, admission: new Admission({ ...LIMITS, addressPerSec: 1, addressBurst: 1 }), issuers: () => null });
  await t.notThrowsAsync(g.admit("10.0.0.9:1", new Metadata(), "alice"));
  await t.notThrowsAsync(g.admit("10.0.0.9:1", new Metadata(), "alice"));
  await t.throwsAsync(g.admit("10.0.0.9:1", new Metadata(), "alice"), { message: /client address/ });
});

test("the address bucket counts an IPv6 caller by its /64, and an IPv4-mapped one as its IPv4 address", async (t) => {
  const g = new ClientGate({ clusterId: "c1", authenticating: false, admission: new Admission({ ...LIMITS, addressPerSec: 1, addressBurst: 1 }), issuers: () => null });
  await t.notThrowsAsync(g.admit("[2001:db8:0:1::a]:1", new Metadata(), "alice"));
  await t.notThrowsAsync(g.admit("[2001:db8:0:1::b]:2", new Metadata(), "alice"));
  await t.throwsAsync(g.admit("[2001:db8:0:1:ffff::c]:3", new Metadata(), "alice"), { message: /client address/ }, "a third address of the same /64");
  await t.notThrowsAsync(g.admit("[2001:db8:0:2::a]:1", new Metadata(), "alice"), "another /64");
  await t.notThrowsAsync(g.admit("10.0.0.7:1", new Metadata(), "alice"));
  await t.notThrowsAsync(g.admit("10.0.0.7:1", new Metadata(), "alice"));
  await t.throwsAsync(g.admit("[::ffff:10.0.0.7]:1", new Metadata(), "alice"), { message: /client address/ }, "the same IPv4 caller, mapped");
});

test("a gate sharing apply's cache: a token it admitted is not verified again on apply, a refused one is never cached, and a key retired meanwhile is refused on apply", async (t) => {
  const old = await keyPair("EdDSA", "k-old");
  const next = await keyPair("ES256", "k-next");
  const shared = new VerifiedTokens();
  const state = { issuers: policy(old) };
  const g = new ClientGate({ clusterId: "c1", authenticating: true, admission: new Admission(LIMITS), issuers: () => state.issuers, verified: () => shared });
  const token = await sign(old, "alice");
  const forged = `${token.slice(0, token.lastIndexOf(".") + 1)}${"A".repeat(86)}`;
  await refusal(g.admit("127.0.0.1:1", bearer(forged), "alice"));
  t.is(shared.size, 0, "a refused token is not cached");
  await t.notThrowsAsync(g.admit("127.0.0.1:1", bearer(token), "alice"));
  t.is(shared.size, 1, "the admitted token's signature is in the shared cache");
  const nowMs = Date.now();
  t.truthy(shared.get(token, nowMs, 5000), "apply finds it there: no second signature check");
  t.is(tokenRefusal(token, { policy: state.issuers, clusterId: "c1", user: "alice", nowMs, cache: shared }), null);
  const retired = tokenRefusal(token, { policy: policy(next), clusterId: "c1", user: "alice", nowMs, cache: shared });
  t.regex(retired?.message ?? "", /has no key "k-old"/, "a hit counts only under the key the apply-time policy names");
});

test("a legacy state's issuer keys come from the JWKS files at the first call, once: files that cannot be read are reported once and admit nobody", async (t) => {
  const dir = tempDir(t, "bkv-jwks-");
  const es = await keyPair("ES256", "k-legacy");
  const good = join(dir, "good.json");
  writeFileSync(good, JSON.stringify({ keys: [es.jwk] }));
  const auth = (jwksFile: string) => ({ enabled: true as const, issuers: [{ issuer: ISS, jwksFile }], clockSkewSec: 5, maxTokenLifetimeSec: 600 });
  const errors: string[] = [];
  const keys = legacyIssuers(auth(good), (e) => errors.push(e.message));
  t.deepEqual(keys()?.issuers.map((i) => i.keys.map((k) => k.kid)), [["k-legacy"]]);
  writeFileSync(good, "not json");
  t.deepEqual(keys()?.issuers[0]?.keys.map((k) => k.kid), ["k-legacy"], "kept: the file is not read again");
  const missing = legacyIssuers(auth(join(dir, "gone.json")), (e) => errors.push(e.message));
  t.is(missing(), null);
  t.is(missing(), null);
  t.is(errors.length, 1, "reported once");
  t.regex(errors[0]!, /gone\.json/);
});
