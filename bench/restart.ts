// The parts of a restart and of a catch-up alone (issue 12), on one node's
// data dir filled directly with the vault's own code: one real registration
// applied, then cloned under N user ids through StoreState (digests, counts
// and the request-id table kept as apply keeps them), a Raft WAL of W
// stamped register entries after an older snapshot, and an audit log of N
// lines. The fill is cached in $TMPDIR/bkv-restart-<N> (remove it to refill);
// it stops after --fill-seconds and the next run goes on where it stopped.
//
// Then, in this one process, with the event-loop delay monitored as the
// node's metrics do (monitorEventLoopDelay, nodejs_eventloop_lag_max_seconds):
//   restart: DiskStorage.open, VaultFiles.open, openVault, AuditLog.open, a
//     RaftLoop handing over the committed log (entries the store holds are
//     skipped), until it has applied the commit index;
//   catch-up: a pinned view streamed with snapshotChunks into SnapshotStager
//     (the receiver's import, commit and checks) as a MsgSnap would be.
// Each phase prints its seconds and its longest stall. Not a cluster: no TLS,
// no HSM, no network.
//
// --hasher inline hashes the import's pairs on the main thread (as before the
// worker threads), workers (the default) as the node does.
//
// Usage: tsx bench/restart.ts [--records 200000] [--wal 30000] [--phase restart,catch-up] [--hasher workers|inline]
import { createHash, randomBytes } from "node:crypto";
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { monitorEventLoopDelay } from "node:perf_hooks";
import { parseArgs } from "node:util";
import { GENESIS_HASH, auditLine } from "../proto/audit.js";
import { encodeRecord } from "../proto/crypto/index.js";
import { type Entry, EntryType, type Message, MessageType } from "../node/raft/index.js";
import { DiskStorage, VaultFiles } from "../node/storage/index.js";
import { ALL_KEYS, VaultStateMachine, encodeCommand, snapshotChunks, stampTime } from "../node/vault/index.js";
import { StoreState } from "../node/vault/state.js";
import { RequestTable, fingerprint } from "../node/vault/dedupe.js";
import { encodeResult } from "../node/vault/result.js";
import { AuditLog } from "../node/server/audit.js";
import { recordedAuditHead } from "../node/server/audit-head.js";
import { RaftLoop } from "../node/server/raft-loop.js";
import { encodeServerSnapshot } from "../node/server/snapshot-data.js";
import { SnapshotStager } from "../node/server/store-snapshots.js";
import { inlineImportHasher } from "../node/server/pair-hashers.js";
import { openVault } from "../node/server/vault-open.js";
import type { Logger } from "../node/server/log.js";
import { CLUSTER, NODES, VOTERS, register, registerCmd } from "../testkit/vault.js";
import { RegistrationCloner } from "../testkit/clones.js";
import { load } from "./drive.js";

const { values: args } = parseArgs({
  options: {
    records: { type: "string", default: "200000" },
    wal: { type: "string", default: "30000" },
    phase: { type: "string", default: "restart,catch-up" },
    "fill-seconds": { type: "string", default: "240" },
    hasher: { type: "string", default: "workers" },
  },
});
const N = Number(args.records);
const W = Number(args.wal);
const DIR = join(tmpdir(), `bkv-restart-${N}`);
const TERM = 2;
const quiet: Logger = { debug: () => {}, info: () => {}, warn: (m, f) => console.warn(m, f ?? ""), error: (m, f) => console.error(m, f ?? "") };

/** The longest event-loop delay over `f`, as the node's metrics see it. */
async function measured<T>(name: string, f: () => Promise<T>): Promise<T> {
  const h = monitorEventLoopDelay({ resolution: 10 });
  h.enable();
  const t0 = performance.now();
  const out = await f();
  const s = (performance.now() - t0) / 1000;
  await new Promise((r) => setImmediate(r));
  h.disable();
  console.log(`${name}: ${s.toFixed(2)} s, stall-max ${(h.max / 1e6).toFixed(0)} ms (load ${load()})`);
  return out;
}

/** A stamped register entry of user `user` (the kind a loaded log holds). */
function registerEntry(clones: RegistrationCloner, user: string, index: number): Entry {
  const cmd = registerCmd(clones.registration(user), new Uint8Array(randomBytes(16)));
  return { type: EntryType.Normal, term: TERM, index, data: stampTime(encodeCommand(cmd), Date.now()) };
}

/** Fills the store for --fill-seconds at most; true once it holds N records, the WAL and the audit log. */
async function fill(): Promise<boolean> {
  mkdirSync(DIR, { recursive: true });
  const t0 = performance.now();
  const seed = register("seed");
  const files = await VaultFiles.open(join(DIR, "vault"));
  const store = files.store;
  const sm = new VaultStateMachine({ clusterId: CLUSTER, store });
  const out = sm.appliedIndex === 0 ? sm.apply(2, encodeCommand(registerCmd(seed)), VOTERS) : null;
  await store.commit();
  const s = StoreState.open(store, CLUSTER);
  const requests = new RequestTable(s);
  const stored = s.getRecord("seed")!;
  if (out !== null) writeFileSync(join(DIR, "RESULT"), encodeResult(out.result));
  const result = readFileSync(join(DIR, "RESULT"));
  const budget = Number(args["fill-seconds"]) * 1000;
  let i = s.appliedIndex - 2; // record i is applied at index i + 3
  for (; i < N && performance.now() - t0 < budget; i++) {
    const index = i + 3;
    const user = `s${i}`;
    const record = { ...stored.record, user };
    const encoded = encodeRecord(record);
    s.setRecord(user, undefined, { ...stored, record, encoded, digest: createHash("sha256").update(encoded).digest() });
    const id = new Uint8Array(randomBytes(16));
    requests.add(id, fingerprint(id), result, index);
    if (i % 2000 === 1999 || i === N - 1) {
      s.setMetaU64("applied", (s.appliedIndex = index));
      s.flush();
      await store.commit();
    }
    if (i % 100_000 === 99_999) console.log(`  filled ${i + 1} records, ${((performance.now() - t0) / 1000).toFixed(0)} s`);
  }
  const applied = s.appliedIndex;
  const digest = s.digest;
  await files.close();
  if (applied < N + 2) {
    console.log(`filled ${applied - 2} of ${N} records; run again to go on`);
    return false;
  }
  fillAudit(applied);
  await fillRaft(new RegistrationCloner(CLUSTER, NODES, 2), applied, digest);
  writeFileSync(join(DIR, "FILLED"), `${applied}\n`);
  console.log(`filled ${N} records (applied ${applied}), ${W} WAL entries and the audit log`);
  return true;
}

/** An audit log of one register line per record (the restart reads only its tail). */
function fillAudit(applied: number): void {
  const audit = openSync(join(DIR, "audit.log"), "w");
  let prev = GENESIS_HASH;
  const line = (event: Parameters<typeof auditLine>[0]) => {
    const l = auditLine(event, prev);
    writeSync(audit, `${l.text}\n`);
    prev = l.hash;
  };
  line({ index: 1, kind: "segment", from: "bootstrap" });
  for (let index = 3; index <= applied; index++) {
    line({ index, kind: "register", requestId: randomBytes(16).toString("hex"), outcome: "ok", user: `s${index - 3}`, version: 1 });
  }
  closeSync(audit);
}

/**
 * The Raft side: a snapshot at applied - W (an older state, as the bootstrap
 * or an older local snapshot leaves it), the W entries up to the store's
 * applied index in the WAL, a local snapshot at applied - W/3 (the store is
 * ahead of the newest Raft snapshot, as between two snapshots), commit = applied.
 */
async function fillRaft(clones: RegistrationCloner, applied: number, digest: Uint8Array): Promise<void> {
  const storage = await DiskStorage.open(join(DIR, "raft"));
  const peers = new Map(VOTERS.map((id) => [id, `127.0.0.1:${7000 + id}`]));
  const base = applied - W;
  const confState = { voters: [...VOTERS], learners: [], votersOutgoing: [], learnersNext: [], autoLeave: false };
  await storage.saveSnapshot({ metadata: { index: base, term: TERM, confState }, data: encodeServerSnapshot({ peers, store: { appliedIndex: base, digest } }) });
  for (let at = base + 1; at <= applied; at += 256) {
    const ents: Entry[] = [];
    for (let i = at; i <= Math.min(applied, at + 255); i++) ents.push(registerEntry(clones, `s${i - 3}`, i));
    await storage.save({ entries: ents, hardState: { term: TERM, vote: 1, commit: ents.at(-1)!.index } });
  }
  const mid = applied - Math.floor(W / 3);
  await storage.createSnapshot(mid, confState, encodeServerSnapshot({ peers, store: { appliedIndex: mid, digest } }));
  await storage.close();
}

async function restart(): Promise<void> {
  const storage = await DiskStorage.open(join(DIR, "raft"));
  const files = await VaultFiles.open(join(DIR, "vault"));
  const sm = await openVault(files, storage.snapshot(), CLUSTER, quiet);
  const audit = AuditLog.open(join(DIR, "audit.log"), storage.snapshot().metadata.index, recordedAuditHead(files.store));
  const loop = new RaftLoop({
    id: 1, clusterId: CLUSTER, storage, files, sm, tickMs: 100, electionTick: 1000, heartbeatTick: 1, snapshotInterval: 10_000,
    snapshotRetention: 2, proposalTimeoutMs: 5000, log: quiet, onFatal: (err) => { console.error("fatal", err); process.exit(1); }, attest: async () => {},
    beforeStoreCommit: (store) => audit.flushFor(store), onOutcome: audit.record,
  });
  const link = { send: () => {}, addPeer: () => {}, removePeer: () => {}, fetchSnapshot: () => { throw new Error("no peers here"); } };
  loop.start(link, new Map());
  const commit = loop.commitIndex;
  while ((loop as unknown as { appliedEntry: number }).appliedEntry < commit) await new Promise((r) => setTimeout(r, 5));
  await loop.stop();
  await audit.close();
  await storage.close();
  await files.close();
}

async function catchUp(): Promise<void> {
  const source = await VaultFiles.open(join(DIR, "vault"));
  const sm = new VaultStateMachine({ clusterId: CLUSTER, store: source.store });
  const view = source.store.view();
  const peers = new Map(VOTERS.map((id) => [id, `127.0.0.1:${7000 + id}`]));
  const target = join(DIR, "catch-up");
  rmSync(target, { recursive: true, force: true });
  const files = await VaultFiles.open(target);
  const index = sm.appliedIndex;
  let bytes = 0;
  let done!: () => void;
  const stepped = new Promise<void>((r) => { done = r; });
  // A variable, not a literal: `attest` (the install gate of wt-attest) is not in every version's StagerContext.
  const ctx = {
    clusterId: CLUSTER, files, log: quiet, appliedIndex: () => 0, term: () => 0, step: () => done(), attest: () => Promise.resolve(),
    ...(args.hasher === "inline" ? { pairHasher: inlineImportHasher } : {}),
    fetch: async function* () {
      for (const c of snapshotChunks(CLUSTER, view.scan(...ALL_KEYS))) {
        bytes += c.length;
        yield c;
        await new Promise((r) => setImmediate(r)); // a network read between chunks
      }
    },
  };
  const stager = new SnapshotStager(ctx);
  const data = encodeServerSnapshot({ peers, store: { appliedIndex: index, digest: sm.digest() } });
  const confState = { voters: [...VOTERS], learners: [], votersOutgoing: [], learnersNext: [], autoLeave: false };
  const m: Message = {
    type: MessageType.Snap, from: 2, to: 4, term: TERM, logTerm: TERM, index, entries: [], commit: index, reject: false, rejectHint: 0,
    snapshot: { metadata: { index, term: TERM, confState }, totalSize: data.length, offset: 0, data, done: true }, context: new Uint8Array(0),
  };
  if (!stager.intercept(m)) throw new Error("the stager did not take the snapshot");
  await stepped;
  console.log(`  streamed ${(bytes / 2 ** 20).toFixed(0)} MiB`);
  view.release();
  await files.close();
  await source.close();
  rmSync(target, { recursive: true, force: true });
}

if (!existsSync(join(DIR, "FILLED")) && !(await fill())) process.exit(0);
const phases = args.phase.split(",");
if (phases.includes("restart")) await measured(`restart (${N} records, ${W} WAL entries)`, restart);
if (phases.includes("catch-up")) await measured(`catch-up (${N} records, hasher ${args.hasher})`, catchUp);
console.log(`rss MiB ${(process.memoryUsage().rss / 2 ** 20).toFixed(0)}`);
