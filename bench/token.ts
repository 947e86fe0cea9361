// The CPU a client token costs the node that accepts a BeginRecovery (issue
// 15), in process: the client port's check (ClientGate.admit: admission
// buckets, then the token), the check before proposing (none since issue 15;
// before it, vault-service.ts withToken verified again) and the check on
// apply (node/vault jwt.ts), each in µs of CPU per call.
// Two kinds of client: one that reuses its token until near expiry (what an
// app does, and what the SDK's providers do) and one that sends a fresh token
// per call (a pool minted ahead, so minting is not counted). EdDSA is what
// the development issuer signs; ES256 what many account services do.
// Not run by tests: the lead runs it and records docs/benchmarks.md.
// Run: npx tsx bench/token.ts [--calls N] [--rounds R]
//      node --import tsx --cpu-prof --cpu-prof-dir DIR bench/token.ts
import { cpus, loadavg } from "node:os";
import { parseArgs } from "node:util";
import { Metadata } from "@grpc/grpc-js";
import { type CryptoKey, type JWK, SignJWT, exportJWK, generateKeyPair } from "jose";
import { Admission } from "../node/server/admission.js";
import { ClientGate } from "../node/server/auth.js";
import { Metrics } from "../node/server/metrics.js";
import { type IssuerPolicy, VerifiedTokens, keysFromJwks, tokenRefusal } from "../node/vault/index.js";

const CLUSTER = "bench-token";
const ISS = "bench-issuer";
const USER = "bench-user";
const SKEW_SEC = 60;
const LIFETIME_SEC = 3600;
const OPEN_LIMITS = { userPerSec: 1e9, userBurst: 1e9, addressPerSec: 1e9, addressBurst: 1e9, maxMessageBytes: 1 << 20, maxConcurrentStreams: 100 };

type Alg = "EdDSA" | "ES256";
interface Signer { alg: Alg; key: CryptoKey; jwk: JWK }

async function signer(alg: Alg): Promise<Signer> {
  const { publicKey, privateKey } = await generateKeyPair(alg, { extractable: true, ...(alg === "EdDSA" ? { crv: "Ed25519" } : {}) });
  return { alg, key: privateKey, jwk: { ...(await exportJWK(publicKey)), kid: `k-${alg}` } };
}

function mint(s: Signer, jti: number): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ jti: String(jti) }).setProtectedHeader({ alg: s.alg, kid: s.jwk.kid!, typ: "JWT" })
    .setIssuer(ISS).setAudience(CLUSTER).setSubject(USER).setIssuedAt(now).setExpirationTime(now + 300).sign(s.key);
}

/** What one accepting node does with a BeginRecovery's token, stage by stage. */
interface Node {
  port(metadata: Metadata): Promise<void>;
  prePropose(token: string): void;
  apply(token: string, entryMs: number): void;
}

/** A node as it runs now: the gate and the apply each verify once, with a cache each (node/vault token-cache.ts); nothing before proposing. */
function node(signers: readonly Signer[]): Node {
  const policy: IssuerPolicy = { clockSkewSec: SKEW_SEC, maxTokenLifetimeSec: LIFETIME_SEC, issuers: [{ iss: ISS, setTime: 0, keys: keysFromJwks({ keys: signers.map((s) => s.jwk) }) }] };
  const gate = new ClientGate({ clusterId: CLUSTER, authenticating: true, admission: new Admission(OPEN_LIMITS), issuers: () => policy });
  const applied = new VerifiedTokens(); // the state machine's
  return {
    port: (metadata) => gate.admit("127.0.0.1:5000", metadata, USER),
    prePropose: () => {},
    apply: (token, entryMs) => {
      const refused = tokenRefusal(token, { policy, clusterId: CLUSTER, user: USER, nowMs: entryMs, cache: applied });
      if (refused !== null) throw new Error(refused.message);
    },
  };
}

function bearer(token: string): Metadata {
  const m = new Metadata();
  m.set("authorization", `Bearer ${token}`);
  return m;
}

function cpuUs(): number {
  const c = process.cpuUsage();
  return c.user + c.system;
}

/** µs of CPU per call of each stage over `tokens` (one call per token, in order). */
async function stages(n: Node, tokens: readonly string[]): Promise<{ port: number; prePropose: number; apply: number }> {
  const metadata = tokens.map(bearer);
  let c0 = cpuUs();
  for (const m of metadata) await n.port(m);
  const port = (cpuUs() - c0) / tokens.length;
  c0 = cpuUs();
  for (const t of tokens) n.prePropose(t);
  const prePropose = (cpuUs() - c0) / tokens.length;
  const entryMs = Date.now();
  c0 = cpuUs();
  for (const t of tokens) n.apply(t, entryMs);
  const apply = (cpuUs() - c0) / tokens.length;
  return { port, prePropose, apply };
}

/** µs of CPU per call of the two admission buckets alone (address, then user): the port's cost without a token. */
async function bucketsOnly(calls: number): Promise<number> {
  const admission = new Admission(OPEN_LIMITS);
  const c0 = cpuUs();
  for (let i = 0; i < calls; i++) {
    await admission.address("127.0.0.1");
    await admission.user(USER);
  }
  return (cpuUs() - c0) / calls;
}

/** µs of CPU per call of recording a call's metrics (counter and latency histogram by method and code). */
function metricsOnly(calls: number): number {
  const metrics = new Metrics(() => null, { node: "1" });
  const c0 = cpuUs();
  for (let i = 0; i < calls; i++) metrics.request("BeginRecovery", "OK", 1.5);
  return (cpuUs() - c0) / calls;
}

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { calls: { type: "string", default: "2000" }, rounds: { type: "string", default: "3" } } });
  const calls = Number(values.calls);
  const rounds = Number(values.rounds);
  const signers = await Promise.all([signer("EdDSA"), signer("ES256")]);
  console.log(`machine: ${cpus().length} × ${cpus()[0]?.model ?? "?"}, node ${process.version}, load ${loadavg()[0]?.toFixed(1)}`);
  console.log("\n| token | client | round | port µs | pre-propose µs | apply µs | total µs |\n|---|---|---:|---:|---:|---:|---:|");
  for (let round = 1; round <= rounds; round++) {
    for (const s of signers) {
      const fresh = await Promise.all(Array.from({ length: calls }, (_, i) => mint(s, i)));
      const reused = new Array<string>(calls).fill(fresh[0]!);
      for (const [client, tokens] of [["reuses its token", reused], ["fresh token per call", fresh]] as const) {
        const r = await stages(node(signers), tokens);
        const total = r.port + r.prePropose + r.apply;
        console.log(`| ${s.alg} | ${client} | ${round} | ${r.port.toFixed(0)} | ${r.prePropose.toFixed(0)} | ${r.apply.toFixed(0)} | ${total.toFixed(0)} |`);
      }
    }
  }
  console.log(`\nadmission buckets alone (address + user): ${(await bucketsOnly(calls)).toFixed(0)} µs per call`);
  console.log(`metrics of a call alone (count + histogram): ${metricsOnly(calls * 10).toFixed(1)} µs per call`);
}

await main();
