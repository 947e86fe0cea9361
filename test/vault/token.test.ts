// Client tokens verified on apply (node/vault jwt.ts, issuers.ts): in a
// cluster whose state holds issuer keys, a begin or register entry counts
// only with a valid token for its user at the entry's leader time; every
// other entry is refused, counts nothing and is not remembered.
import test, { type ExecutionContext } from "ava";
import { type CryptoKey, type JWK, SignJWT, exportJWK, generateKeyPair } from "jose";
import {
  type Command, type IssuerPolicy, type TokenContext, type VaultResult, VaultStateMachine, VerifiedTokens, decodeCommand, decodeIssuerPolicy,
  encodeCommand, encodeIssuerPolicy, keysFromJwks, parseEnvelope, stampTime, tokenRefusal,
} from "../../node/vault/index.js";
import { CLUSTER, Harness, beginCmd, expectError, expectOk, hex, newRequestId, register, registerCmd, contentDigest } from "../../testkit/vault.js";

const T0 = Date.UTC(2026, 11, 4, 12);
const NOW = T0 / 1000;
const ISS = "app-accounts";

interface Signer { kid: string; alg: "ES256" | "EdDSA"; key: CryptoKey; jwk: JWK }

async function signer(alg: "ES256" | "EdDSA", kid: string): Promise<Signer> {
  const { publicKey, privateKey } = await generateKeyPair(alg, { extractable: true, ...(alg === "EdDSA" ? { crv: "Ed25519" } : {}) });
  return { kid, alg, key: privateKey, jwk: { ...(await exportJWK(publicKey)), kid } };
}

const signers = Promise.all([signer("ES256", "es-1"), signer("EdDSA", "ed-1"), signer("ES256", "stranger")]);

async function policy(): Promise<IssuerPolicy> {
  const [es, ed] = await signers;
  return { clockSkewSec: 30, maxTokenLifetimeSec: 600, issuers: [{ iss: ISS, setTime: 0, keys: keysFromJwks({ keys: [es.jwk, ed.jwk] }) }] };
}

interface Claims { iss?: string; sub?: string; aud?: string | string[]; iat?: number; exp?: number; nbf?: number }

function mint(s: Signer, c: Claims = {}, header: Record<string, unknown> = {}): Promise<string> {
  const claims = { iss: ISS, sub: "tess", aud: CLUSTER, iat: NOW - 10, exp: NOW + 290, ...c };
  return new SignJWT(claims).setProtectedHeader({ alg: s.alg, kid: s.kid, typ: "JWT", ...header }).sign(s.key);
}

const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString("base64url");

async function harness(): Promise<Harness> {
  const h = new Harness(new VaultStateMachine({ clusterId: CLUSTER, issuers: await policy() }));
  const [es] = await signers;
  expectOk({ fail: (m: string) => { throw new Error(m); } } as unknown as ExecutionContext, at(h, { ...registerCmd(register("tess")), token: await mint(es) }), "register");
  return h;
}

function at(h: Harness, c: Command | Uint8Array, ms = T0): VaultResult {
  return h.result(stampTime(c instanceof Uint8Array ? c : encodeCommand(c), ms));
}

/** What a refused entry must leave alone: the records, the attempts counted and the request table. */
function footprint(h: Harness) {
  return { content: hex(contentDigest(h.sm)), attempts: h.sm.getRecord("tess")?.attempts, requests: h.sm.rememberedRequests };
}

test("a begin with a valid ES256 or EdDSA token counts; a retry under the same request id with a fresh token is the same request", async (t) => {
  const h = await harness();
  const [es, ed] = await signers;
  const begin = beginCmd("tess");
  const first = expectOk(t, at(h, { ...begin, token: await mint(es) }), "begin");
  t.deepEqual(at(h, { ...begin, token: await mint(ed, { iat: NOW - 5 }) }), first, "the remembered outcome: counted once");
  expectOk(t, at(h, { ...beginCmd("tess"), token: await mint(ed) }), "begin");
  t.is(h.sm.getRecord("tess")?.attempts, 2);
});

test("the token is checked against the entry's leader time, not a node's clock", async (t) => {
  const [es] = await signers;
  const token = await mint(es, { iat: NOW - 100, exp: NOW + 60 });
  const h = await harness();
  expectOk(t, at(h, { ...beginCmd("tess"), token }, T0 + 89_999), "begin"); // within exp + 30 s of skew
  expectError(t, at(h, { ...beginCmd("tess"), token }, T0 + 90_000), "UNAUTHENTICATED", "TOKEN_INVALID");
});

test("the bound on a replayed token: within its lifetime it counts under new request ids (throttled like any attempt); then never", async (t) => {
  const [es] = await signers;
  const token = await mint(es, { iat: NOW, exp: NOW + 300 });
  const h = await harness();
  for (let i = 0; i < 2; i++) expectOk(t, at(h, { ...beginCmd("tess"), token }, T0 + i * 1000), "begin");
  expectError(t, at(h, { ...beginCmd("tess"), token }, T0 + 330_000), "UNAUTHENTICATED", "TOKEN_INVALID"); // exp + skew: the leader time moved on
  expectError(t, at(h, { ...beginCmd("tess"), token }, T0), "UNAUTHENTICATED", "TOKEN_INVALID"); // an earlier stamp does not turn the clock back
  t.is(h.sm.getRecord("tess")?.attempts, 2);
});

const refusals: Array<{ name: string; token: () => Promise<string | undefined>; reason?: "TOKEN_SUBJECT_MISMATCH"; message: RegExp }> = [
  { name: "no token", token: async () => undefined, message: /carries no client token/ },
  { name: "expired at the entry's time", token: async () => mint((await signers)[0], { iat: NOW - 400, exp: NOW - 30 }), message: /had expired/ },
  { name: "issued after the entry's time", token: async () => mint((await signers)[0], { iat: NOW + 31, exp: NOW + 300 }), message: /issued after/ },
  { name: "not yet valid (nbf)", token: async () => mint((await signers)[0], { nbf: NOW + 31 }), message: /not yet valid/ },
  { name: "a lifetime above the bound", token: async () => mint((await signers)[0], { iat: NOW, exp: NOW + 601 }), message: /lives 601 s/ },
  { name: "the wrong audience", token: async () => mint((await signers)[0], { aud: "another-cluster" }), message: /audience is not this cluster/ },
  { name: "another user's token", token: async () => mint((await signers)[0], { sub: "mallory" }), reason: "TOKEN_SUBJECT_MISMATCH", message: /subject "mallory" is not the entry's user "tess"/ },
  { name: "an unknown key id", token: async () => mint((await signers)[2]), message: /has no key "stranger"/ },
  { name: "an unknown issuer", token: async () => mint((await signers)[0], { iss: "someone-else" }), message: /unknown token issuer/ },
  { name: "a signature by another key under a known kid", token: async () => mint({ ...(await signers)[2], kid: "es-1" }), message: /signature does not verify/ },
  { name: "a tampered payload", token: async () => tamper(await mint((await signers)[0]), { sub: "tess", exp: NOW + 3000 }), message: /signature does not verify/ },
  { name: "an ES256 key named by an EdDSA header", token: async () => swapAlg(await mint((await signers)[0]), "EdDSA"), message: /signature does not verify/ },
  { name: "alg none", token: async () => `${b64({ alg: "none", kid: "es-1" })}.${b64({ iss: ISS, sub: "tess", aud: CLUSTER, iat: NOW, exp: NOW + 60 })}.${"A".repeat(86)}`, message: /algorithm is not ES256 or EdDSA/ },
  { name: "a crit header", token: async () => withHeader(await mint((await signers)[0]), { crit: ["exp"] }), message: /unsupported field "crit"/ },
  { name: "two segments", token: async () => (await mint((await signers)[0])).split(".").slice(0, 2).join("."), message: /three base64url segments/ },
  { name: "a non-canonical base64url signature", token: async () => nonCanonical(await mint((await signers)[0])), message: /signature is not canonical base64url/ },
  { name: "a payload that is not JSON", token: async () => { const [h, , s] = (await mint((await signers)[0])).split("."); return `${h}.${Buffer.from("{nope").toString("base64url")}.${s}`; }, message: /not UTF-8 JSON/ },
  { name: "a fractional exp", token: async () => mint((await signers)[0], { exp: NOW + 60.5 }), message: /integer unix times/ },
];

for (const r of refusals) {
  test(`refused on apply, nothing counted, nothing remembered: ${r.name}`, async (t) => {
    const h = await harness();
    const before = footprint(h);
    const token = await r.token();
    const begin = { ...beginCmd("tess"), ...(token === undefined ? {} : { token }) };
    const got = at(h, begin);
    expectError(t, got, r.reason === undefined ? "UNAUTHENTICATED" : "PERMISSION_DENIED", r.reason ?? "TOKEN_INVALID");
    t.regex(got.ok ? "" : got.message, r.message);
    t.false(got.ok ? false : token !== undefined && got.message.includes(token.split(".")[2] ?? "-"), "the message quotes the token");
    t.deepEqual(footprint(h), before);
    // Not remembered: the same request with a valid token still counts.
    expectOk(t, at(h, { ...begin, token: await mint((await signers)[0]) }), "begin");
  });
}

test("a register needs a token for its user too (no squatting a user id)", async (t) => {
  const h = await harness();
  const [es] = await signers;
  const reg = registerCmd(register("ulla"));
  expectError(t, at(h, reg), "UNAUTHENTICATED", "TOKEN_INVALID");
  expectError(t, at(h, { ...reg, token: await mint(es) }), "PERMISSION_DENIED", "TOKEN_SUBJECT_MISMATCH");
  t.is(h.sm.getRecord("ulla"), undefined);
  expectOk(t, at(h, { ...reg, token: await mint(es, { sub: "ulla" }) }), "register");
});

test("a cluster without issuer keys (authentication disabled) verifies no token", (t) => {
  const h = new Harness(new VaultStateMachine({ clusterId: CLUSTER }));
  t.is(h.sm.issuers, null);
  expectOk(t, at(h, registerCmd(register("tess"))), "register");
  expectOk(t, at(h, beginCmd("tess")), "begin");
});

test("the issuer keys live in the replicated state: in the digest and in a snapshot", async (t) => {
  const h = await harness();
  const plain = new VaultStateMachine({ clusterId: CLUSTER });
  t.not(hex(new VaultStateMachine({ clusterId: CLUSTER, issuers: await policy() }).digest()), hex(plain.digest()));
  const restored = VaultStateMachine.restore({ clusterId: CLUSTER }, h.sm.snapshot());
  t.deepEqual(restored.issuers, h.sm.issuers);
  t.deepEqual(decodeIssuerPolicy(encodeIssuerPolicy(await policy())), h.sm.issuers);
});

test("kind 8 wraps a begin or register with its token; its fingerprint is the command's; anything odd is refused", async (t) => {
  const [es] = await signers;
  const token = await mint(es);
  const begin = beginCmd("tess");
  const wrapped = encodeCommand({ ...begin, token });
  t.is(wrapped[5], 8);
  t.deepEqual(decodeCommand(wrapped), { ...begin, token });
  t.deepEqual(parseEnvelope(wrapped).request, encodeCommand(begin));
  const wrap = (inner: Uint8Array, tok = Buffer.from(token)) => Uint8Array.of(0x62, 0x6b, 0x76, 0x43, 1, 8, tok.length >> 8, tok.length & 0xff, ...tok, ...inner);
  t.throws(() => decodeCommand(wrap(wrapped)), { message: /unknown vault command kind 8/ });
  const confirm = encodeCommand({ kind: "confirm", requestId: begin.requestId, user: "tess", version: 1, attemptId: 3, signature: new Uint8Array(64) });
  t.throws(() => decodeCommand(wrap(confirm)), { message: /a confirm command carries no client token/ });
  t.throws(() => decodeCommand(wrap(encodeCommand(begin), Buffer.from("é"))), { message: /not ASCII/ });
  t.throws(() => decodeCommand(wrap(encodeCommand(begin), Buffer.from("a b"))), { message: /\[A-Za-z0-9_.-\]/ });
  t.throws(() => encodeCommand({ ...begin, token: "" }));
});

test("a JWKS key the state cannot hold is refused by name", async (t) => {
  const [es] = await signers;
  t.throws(() => keysFromJwks({ keys: [{ ...es.jwk, d: "AAAA" }] }), { message: /keys\[0\]: holds a private key/ });
  t.throws(() => keysFromJwks({ keys: [{ ...es.jwk, crv: "P-384" }] }), { message: /not an EC P-256 or OKP Ed25519/ });
  t.throws(() => keysFromJwks({ keys: [{ ...es.jwk, y: es.jwk.x }] }), { message: /keys\[0\]/ });
  t.throws(() => keysFromJwks({ keys: [{ ...es.jwk, alg: "EdDSA" }] }), { message: /does not fit the key/ });
  t.throws(() => keysFromJwks({ keys: [] }), { message: /non-empty/ });
});

/** A key set for ISS signed by `by` (a compact JWS, as the app's account service makes it). */
function signedKeys(by: Signer, keys: readonly JWK[], o: { iat?: number; aud?: string } = {}): Promise<string> {
  return new SignJWT({ keys }).setProtectedHeader({ alg: by.alg, kid: by.kid }).setIssuer(ISS).setAudience(o.aud ?? CLUSTER).setIssuedAt(o.iat ?? NOW).sign(by.key);
}

const rotate = (signed: string): Command => ({ kind: "issuers", requestId: newRequestId(), signedKeys: signed });

test("rotation: a key set signed by a current key replaces the issuer's keys; tokens of a retired key are refused from then on", async (t) => {
  const h = await harness();
  const [es, ed] = await signers;
  const next = await signer("EdDSA", "ed-2");
  const before = await mint(es);
  expectOk(t, at(h, { ...beginCmd("tess"), token: before }), "begin"); // verified, so in the state machine's cache
  expectOk(t, at(h, rotate(await signedKeys(es, [next.jwk, ed.jwk]))), "issuers");
  t.deepEqual(h.sm.issuers?.issuers[0]?.keys.map((k) => k.kid), ["ed-1", "ed-2"]);
  t.is(h.sm.issuers?.issuers[0]?.setTime, NOW);
  expectError(t, at(h, { ...beginCmd("tess"), token: before }), "UNAUTHENTICATED", "TOKEN_INVALID");
  expectOk(t, at(h, { ...beginCmd("tess"), token: await mint(next) }), "begin");
  t.is(h.sm.getRecord("tess")?.attempts, 2);
  const restored = VaultStateMachine.restore({ clusterId: CLUSTER }, h.sm.snapshot());
  t.deepEqual(restored.issuers, h.sm.issuers, "the rotated keys are in the snapshot");
});

test("rotation refused, keys unchanged: signed by a key outside the set, replayed or older, for another cluster, dated ahead, with a private key, without keys in state", async (t) => {
  const h = await harness();
  const [es, ed, stranger] = await signers;
  const next = await signer("ES256", "es-2");
  const applied = await signedKeys(ed, [next.jwk, ed.jwk], { iat: NOW - 60 });
  expectOk(t, at(h, rotate(applied)), "issuers");
  const keys = h.sm.issuers;
  const cases: Array<[string, Promise<string>, string]> = [
    ["signed by a stranger under a current kid", signedKeys({ ...stranger, kid: "es-2" }, [stranger.jwk]), "BAD_SIGNATURE"],
    ["signed by the retired key", signedKeys(es, [es.jwk]), "BAD_SIGNATURE"],
    ["the applied set replayed", Promise.resolve(applied), "VERSION_MISMATCH"],
    ["an older set", signedKeys(next, [es.jwk], { iat: NOW - 61 }), "VERSION_MISMATCH"],
    ["for another cluster", signedKeys(next, [es.jwk], { aud: "elsewhere" }), "INVALID_ARGUMENT"],
    ["dated after the entry's time", signedKeys(next, [es.jwk], { iat: NOW + 31 }), "INVALID_ARGUMENT"],
    ["with a private key", signedKeys(next, [{ ...es.jwk, d: "AAAA" }]), "INVALID_ARGUMENT"],
    ["not a JWS", Promise.resolve("not.a.jws"), "INVALID_ARGUMENT"],
  ];
  for (const [name, signed, reason] of cases) {
    const r = at(h, rotate(await signed));
    t.like(r, { ok: false, reason }, name);
    t.deepEqual(h.sm.issuers, keys, name);
  }
  const plain = new Harness(new VaultStateMachine({ clusterId: CLUSTER }));
  t.like(at(plain, rotate(applied)), { ok: false, reason: "INVALID_ARGUMENT" }, "a cluster without issuer keys has none to rotate");
  t.is(plain.sm.issuers, null);
});

// The cache of verified signatures (node/vault token-cache.ts) changes speed only.

async function context(c: Partial<TokenContext> = {}): Promise<TokenContext> {
  return { policy: await policy(), clusterId: CLUSTER, user: "tess", nowMs: T0, ...c };
}

test("the cache changes no verdict: every refusal and the valid token, uncached, on a miss and on a hit, at several times", async (t) => {
  const [es] = await signers;
  const cases = [...refusals.map((r) => ({ name: r.name, token: r.token })), { name: "valid", token: () => mint(es) }, { name: "valid, short-lived", token: () => mint(es, { exp: NOW + 60 }) }];
  for (const c of cases) {
    const token = await c.token();
    const cache = new VerifiedTokens();
    for (const nowMs of [T0, T0 + 89_999, T0 + 90_000, T0 + 400_000]) {
      const plain = tokenRefusal(token, await context({ nowMs }));
      t.deepEqual(tokenRefusal(token, await context({ nowMs, cache })), plain, `${c.name} at +${nowMs - T0} ms (first)`);
      t.deepEqual(tokenRefusal(token, await context({ nowMs, cache })), plain, `${c.name} at +${nowMs - T0} ms (again)`);
    }
  }
});

test("a refused token stays refused: a bad signature is never cached; a tampered copy of a cached token is refused", async (t) => {
  const [es, , stranger] = await signers;
  const cache = new VerifiedTokens();
  const forged = await mint({ ...stranger, kid: "es-1" });
  for (let i = 0; i < 3; i++) t.regex(tokenRefusal(forged, await context({ cache }))?.message ?? "", /signature does not verify/);
  t.is(cache.size, 0);
  const good = await mint(es);
  t.is(tokenRefusal(good, await context({ cache })), null);
  t.is(cache.size, 1);
  t.regex(tokenRefusal(tamper(good, { sub: "tess", exp: NOW + 3000 }), await context({ cache }))?.message ?? "", /signature does not verify/);
  t.like(tokenRefusal(good, await context({ cache, user: "mallory" })), { reason: "TOKEN_SUBJECT_MISMATCH" }, "sub is checked at each use");
  t.like(tokenRefusal(good, await context({ cache, clusterId: "elsewhere" })), { reason: "TOKEN_INVALID" }, "aud is checked at each use");
});

test("the cache follows the keys in force: a kid retired or given another key refuses a cached token; the same key kept still verifies", async (t) => {
  const [es, ed, stranger] = await signers;
  const cache = new VerifiedTokens();
  const token = await mint(es);
  t.is(tokenRefusal(token, await context({ cache })), null);
  const withKeys = (keys: IssuerPolicy["issuers"][number]["keys"]): IssuerPolicy => ({ clockSkewSec: 30, maxTokenLifetimeSec: 600, issuers: [{ iss: ISS, setTime: 1, keys }] });
  const retired = withKeys(keysFromJwks({ keys: [ed.jwk] }));
  t.regex(tokenRefusal(token, await context({ cache, policy: retired }))?.message ?? "", /has no key "es-1"/);
  const replaced = withKeys(keysFromJwks({ keys: [{ ...stranger.jwk, kid: "es-1" }, ed.jwk] }));
  t.regex(tokenRefusal(token, await context({ cache, policy: replaced }))?.message ?? "", /signature does not verify/);
  const kept = withKeys(keysFromJwks({ keys: [ed.jwk, es.jwk] })); // new objects, the same key
  t.is(tokenRefusal(token, await context({ cache, policy: kept })), null);
});

test("VerifiedTokens is bounded (oldest out) and drops a token once its exp + skew has passed", async (t) => {
  const [es] = await signers;
  const cache = new VerifiedTokens(2);
  const tokens = await Promise.all([0, 1, 2].map((i) => mint(es, { iat: NOW - 10 - i, exp: NOW + 60 + i })));
  for (const token of tokens) t.is(tokenRefusal(token, await context({ cache })), null);
  t.is(cache.size, 2);
  t.is(cache.get(tokens[0]!, T0, 30_000), undefined, "the oldest went first");
  t.not(cache.get(tokens[2]!, T0, 30_000), undefined);
  t.is(cache.get(tokens[1]!, T0 + 91_000, 30_000), undefined, "past exp + skew");
  t.is(cache.size, 1);
  t.is(cache.get(tokens[2]!, T0 + 92_000, 30_000), undefined);
  t.is(cache.size, 0);
  t.throws(() => new VerifiedTokens(0));
});

function tamper(token: string, payload: Record<string, unknown>): string {
  const [h, p, s] = token.split(".");
  return `${h}.${b64({ ...JSON.parse(Buffer.from(p ?? "", "base64url").toString()), ...payload })}.${s}`;
}

function swapAlg(token: string, alg: string): string {
  return withHeader(token, { alg });
}

function withHeader(token: string, fields: Record<string, unknown>): string {
  const [h, p, s] = token.split(".");
  return `${b64({ ...JSON.parse(Buffer.from(h ?? "", "base64url").toString()), ...fields })}.${p}.${s}`;
}

/** The same signature bytes with unused low bits set in the last character (64 bytes: 86 characters, 4 spare bits). */
function nonCanonical(token: string): string {
  const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  return token.slice(0, -1) + alphabet[alphabet.indexOf(token.slice(-1)) | 1];
}
