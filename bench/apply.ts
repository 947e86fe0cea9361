// The CPU a node spends applying an entry (issue 15), in process: real
// registrations, then BeginRecovery entries round-robin over the users
// (unconfirmed until the end: each record gains begins/users pending
// attempts; --users 2500 with --begins 20000 gives 8 each, as the cluster
// benches spend them between confirmations, bench/bkv.ts; the default 256
// keeps the earlier figures comparable), then one confirmation per user, each applied
// through the real VaultStateMachine on a real LmdbVaultStore with the audit
// log observing every entry, in batches of 64 (a Ready) with the store
// committed every 1,000 entries after the audit flush, as
// node/server/raft-loop.ts does. Entries carry the leader's time stamp;
// with --tokens the state holds an EdDSA issuer key and every register and
// begin carries a token for its user (one per user, as a client reuses it).
// Prints µs per applied entry of each kind: the synchronous apply and audit
// line, and the process CPU (the store's and the audit's writer threads
// included).
//
// Usage: npx tsx bench/apply.ts [--begins 20000] [--users 256] [--tokens] [--rounds 1]
// Profile: node --cpu-prof --cpu-prof-dir=DIR --import tsx bench/apply.ts …
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { SignJWT, exportJWK, generateKeyPair } from "jose";
import { AuditLog } from "../node/server/audit.js";
import { LmdbVaultStore } from "../node/storage/vault-store.js";
import { type Command, type IssuerPolicy, NO_THROTTLE, VaultStateMachine, encodeCommand, keysFromJwks, stampTime } from "../node/vault/index.js";
import { CLUSTER, VOTERS, confirmCmd, newRequestId, register, registerCmd } from "../testkit/vault.js";
import type { Registration } from "../proto/crypto/index.js";
import { distinctPoints, load } from "./drive.js";

const { values } = parseArgs({
  options: {
    begins: { type: "string", default: "20000" }, users: { type: "string", default: "256" },
    tokens: { type: "boolean", default: false }, rounds: { type: "string", default: "1" },
  },
});
const BEGINS = Number(values.begins);
const USERS = Number(values.users);
// Each user's confirmation names its last begin: every user needs one.
if (!Number.isSafeInteger(BEGINS) || !Number.isSafeInteger(USERS) || USERS < 1 || BEGINS < USERS || !(Number(values.rounds) >= 1)) {
  throw new Error("bench/apply: --users takes a positive integer, --begins an integer ≥ --users (every user begins once before its confirmation), --rounds ≥ 1");
}
const READY = 64;
const COMMIT_EVERY = 1000;
const T0 = Date.UTC(2026, 11, 4, 12);
const ISS = "bench-issuer";

interface Issuer { policy: IssuerPolicy; mint(user: string): Promise<string> }

async function issuer(): Promise<Issuer> {
  const { publicKey, privateKey } = await generateKeyPair("EdDSA", { crv: "Ed25519", extractable: true });
  const jwk = { ...(await exportJWK(publicKey)), kid: "ed-1" };
  const now = T0 / 1000;
  return {
    policy: { clockSkewSec: 30, maxTokenLifetimeSec: 600, issuers: [{ iss: ISS, setTime: 0, keys: keysFromJwks({ keys: [jwk] }) }] },
    mint: (sub) => new SignJWT({ iss: ISS, sub, aud: CLUSTER, iat: now - 10, exp: now + 590 }).setProtectedHeader({ alg: "EdDSA", kid: "ed-1", typ: "JWT" }).sign(privateKey),
  };
}

/** One node's apply path: the state machine on its store, the audit log, the pipelined store commits. */
class Node {
  index = 1; // the bootstrap is index 1
  private sinceCommit = 0;
  private readonly commits: Promise<void>[] = [];

  private constructor(readonly sm: VaultStateMachine, readonly store: LmdbVaultStore, readonly audit: AuditLog) {}

  static async open(dir: string, policy: IssuerPolicy | undefined): Promise<Node> {
    const store = await LmdbVaultStore.open(join(dir, "store"));
    const sm = new VaultStateMachine({ clusterId: CLUSTER, store, throttle: NO_THROTTLE, ...(policy !== undefined ? { issuers: policy } : {}) });
    await store.commit();
    return new Node(sm, store, AuditLog.open(join(dir, "audit.log"), 1));
  }

  /** Applies the entries as Readies of 64, yielding between them; returns [sync apply ms, CPU ms] including the commits. */
  async applyAll(entries: readonly Uint8Array[]): Promise<[number, number]> {
    const cpu0 = process.cpuUsage();
    let syncMs = 0;
    for (let i = 0; i < entries.length; i += READY) {
      const t0 = performance.now();
      for (const data of entries.slice(i, i + READY)) this.applyOne(data);
      this.sm.digest(); // the loop's per-Ready digest record (state-digests.ts)
      syncMs += performance.now() - t0;
      if (this.sinceCommit >= COMMIT_EVERY) this.commit();
      await new Promise((resolve) => setImmediate(resolve));
    }
    this.commit();
    await Promise.all(this.commits.splice(0));
    const cpu = process.cpuUsage(cpu0);
    return [syncMs, (cpu.user + cpu.system) / 1000];
  }

  private applyOne(data: Uint8Array): void {
    this.index += 1;
    const out = this.sm.apply(this.index, data, VOTERS);
    if (!out.result.ok) throw new Error(`entry ${this.index} refused: ${out.result.message}`);
    this.audit.record({ kind: "command", index: this.index, data, result: out.result, parsed: out });
    this.sinceCommit += 1;
  }

  private commit(): void {
    this.sinceCommit = 0;
    this.commits.push(this.store.commit(this.audit.flushFor(this.store))); // as raft-loop.ts: the chain head goes into the commit
  }

  async close(): Promise<void> {
    await this.audit.close();
    await this.store.close();
  }
}

async function round(dir: string, regs: readonly Registration[], iss: Issuer | undefined): Promise<void> {
  const node = await Node.open(dir, iss?.policy);
  const tokens = await Promise.all(regs.map((r) => iss?.mint(r.record.user)));
  const withToken = (c: Command, u: number): Uint8Array => encodeCommand(tokens[u] === undefined ? c : { ...c, token: tokens[u] } as Command);
  // Payloads are built ahead; indexes are known: entry k of the run is index 2 + k.
  const registers = regs.map((r, u) => withToken(registerCmd(r), u));
  const points = distinctPoints(BEGINS);
  const begins = points.map((blinded, i) => withToken({ kind: "begin", requestId: newRequestId(), user: regs[i % USERS]!.record.user, blinded }, i % USERS));
  const lastBegin = new Map<number, number>();
  begins.forEach((_, i) => lastBegin.set(i % USERS, 2 + regs.length + i));
  const confirms = regs.map((r, u) => encodeCommand(confirmCmd(r, lastBegin.get(u)!)));
  const stamped = (xs: Uint8Array[], from: number) => xs.map((x, i) => stampTime(x, T0 + from + i));
  const phases: [string, Uint8Array[]][] = [
    ["register", stamped(registers, 2)],
    ["begin", stamped(begins, 2 + regs.length)],
    ["confirm", stamped(confirms, 2 + regs.length + begins.length)],
  ];
  for (const [kind, entries] of phases) {
    const [syncMs, cpuMs] = await node.applyAll(entries);
    const us = (ms: number) => ((ms * 1000) / entries.length).toFixed(1);
    console.log(`${kind.padEnd(8)} n=${String(entries.length).padStart(6)}  µs/entry apply+audit (sync): ${us(syncMs).padStart(7)}  CPU: ${us(cpuMs).padStart(7)}  tokens: ${iss !== undefined ? "yes" : "no"}  load ${load()}`);
  }
  await node.close();
}

const regs = Array.from({ length: USERS }, (_, u) => register(`user-${u}`, { guessLimit: 255 }));
const iss = values.tokens ? await issuer() : undefined;
for (let r = 0; r < Number(values.rounds); r++) {
  const dir = mkdtempSync(join(tmpdir(), "bkv-apply-bench-"));
  try {
    await round(dir, regs, iss);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
