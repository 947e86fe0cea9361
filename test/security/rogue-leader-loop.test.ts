// Hostile Raft messages from one member that leads (it needs no election: a
// higher term makes it the leader of whoever accepts it) against an honest
// RaftLoop follower on real storage (DiskStorage, the lmdb vault store).
// onFatal is what main.ts wires to "log and exit", so a call to it is a
// remote crash.
import test from "ava";
import { join } from "node:path";
import { ConfChangeType, EntryType, MessageType, bootstrapSnapshot, encodeConfChange, message } from "../../node/raft/index.js";
import { DiskStorage, VaultFiles } from "../../node/storage/index.js";
import { VaultStateMachine, encodeCommand } from "../../node/vault/index.js";
import { jsonLogger } from "../../node/server/log.js";
import { RaftLoop } from "../../node/server/raft-loop.js";
import { encodeServerSnapshot } from "../../node/server/snapshot-data.js";
import { attestSnapshot } from "../../node/server/snapshot-attest.js";
import { AuditLog } from "../../node/server/audit.js";
import { recordedAuditHead } from "../../node/server/audit-head.js";
import { parseAuditLine, verifyAuditChain } from "../../proto/audit.js";
import { readFileSync } from "node:fs";
import { openVault } from "../../node/server/vault-open.js";
import { CLUSTER, Harness, beginCmd, blindedPoint, register, registerCmd } from "../../testkit/vault.js";
import { tempDir } from "../temp.js";

const quiet = jsonLogger("error", {}, () => ({}), () => {});
const PEERS = new Map([[1, "127.0.0.1:1"], [2, "127.0.0.1:2"], [3, "127.0.0.1:3"]]);

interface Follower {
  loop: RaftLoop;
  audit: AuditLog | null;
  files: VaultFiles;
  fatal: unknown[];
  links: string[];
  close(): Promise<void>;
}

interface Options {
  /** Serves the snapshot downloads (default: none). */
  fetch?: () => AsyncIterable<Uint8Array>;
  /** The digest nodes 2 and 3 report when asked to vouch (default: no attestation at all). */
  vouch?: () => Uint8Array;
  refusals?: string[];
  /** Keeps an audit log, `<dir>/audit.log`, as node.ts does (its head recorded with each store commit). */
  audit?: boolean;
}

/** Node 1 of voters 1–3 on `dir` (bootstrapped on first use); node 3 plays the rogue leader. */
async function follower(dir: string, o: Options = {}): Promise<Follower> {
  const storage = await DiskStorage.open(join(dir, "raft"));
  if (storage.snapshot().metadata.index === 0) {
    const vault = new VaultStateMachine({ clusterId: CLUSTER }).snapshot();
    await storage.saveSnapshot(bootstrapSnapshot([1, 2, 3], encodeServerSnapshot({ peers: PEERS, vault })));
  }
  const files = await VaultFiles.open(join(dir, "vault"));
  const sm = await openVault(files, storage.snapshot(), CLUSTER, quiet);
  const fatal: unknown[] = [];
  const links: string[] = [];
  const audit = o.audit === true ? AuditLog.open(join(dir, "audit.log"), storage.snapshot().metadata.index, recordedAuditHead(files.store)) : null;
  const loop = new RaftLoop({
    id: 1, clusterId: CLUSTER, storage, files, sm, tickMs: 50, electionTick: 1000, heartbeatTick: 1, snapshotInterval: 100_000,
    snapshotRetention: 2, proposalTimeoutMs: 30_000, log: quiet, onFatal: (err) => { fatal.push(err); },
    ...(audit === null ? {} : { onOutcome: audit.record, beforeStoreCommit: (store) => audit.flushFor(store) }),
    attest: o.vouch === undefined ? async () => {} : (candidate) => attestSnapshot({
      selfId: 1, threshold: 2, log: quiet, ask: async () => o.vouch!(), refused: (r) => { o.refusals?.push(r); }, retryDelaysMs: [],
    }, candidate),
  });
  loop.start({
    send: () => {}, addPeer: (id, a) => { links.push(`add ${id} ${a}`); }, removePeer: (id) => { links.push(`remove ${id}`); },
    fetchSnapshot: o.fetch ?? (() => { throw new Error("no snapshots here"); }),
  }, new Map());
  return { loop, audit, files, fatal, links, close: async () => { await loop.stop(); await audit?.close(); await storage.close(); await files.close(); } };
}

/** The rogue's MsgApp of term 5 appending membership entry `data` at index 2 and committing it. */
function confChangeEntry(data: Uint8Array) {
  return message({
    type: MessageType.App, from: 3, to: 1, term: 5, index: 1, logTerm: 1, commit: 2,
    entries: [{ index: 2, term: 5, type: EntryType.ConfChange, data }],
  });
}

async function appliedTo(f: Follower, index: number): Promise<void> {
  for (let i = 0; i < 100 && f.loop.vault.appliedIndex < index; i++) await new Promise((r) => setTimeout(r, 20));
}

test("a committed membership entry that does not decode changes nothing and stops no node, also at its restart", async (t) => {
  const dir = tempDir(t);
  const n = await follower(dir);
  n.loop.step(confChangeEntry(new Uint8Array([0xff])));
  await appliedTo(n, 2);
  t.is(n.loop.vault.appliedIndex, 2, "applied (as nothing)");
  t.deepEqual(n.fatal, [], "no fatal error: before the fix, ErrInvalidConfChange stopped the node");
  t.deepEqual(n.loop.voters, [1, 2, 3]);
  await n.close();
  const again = await follower(dir); // the entry is in the WAL: replayed at start
  await new Promise((r) => setTimeout(r, 200));
  t.deepEqual(again.fatal, [], "before the fix, every restart stopped again on the same entry");
  t.deepEqual(again.loop.voters, [1, 2, 3]);
  await again.close();
});

test("a committed membership change Raft ignores (adding voter 2 as a learner) leaves the transport's addresses alone", async (t) => {
  const n = await follower(tempDir(t));
  t.teardown(() => n.close());
  n.links.length = 0;
  n.loop.step(confChangeEntry(encodeConfChange({ type: ConfChangeType.AddLearner, nodeId: 2, context: new TextEncoder().encode("10.66.6.6:9999") })));
  await appliedTo(n, 2);
  t.is(n.loop.vault.appliedIndex, 2);
  t.deepEqual(n.loop.voters, [1, 2, 3], "Raft ignored the change");
  t.is(n.loop.peers.get(2), "127.0.0.1:2", "before the fix, node 2's address moved to the rogue's choice");
  t.deepEqual(n.links, []);
  t.deepEqual(n.fatal, []);
});

test("a committed membership change Raft takes still updates the transport", async (t) => {
  const n = await follower(tempDir(t));
  t.teardown(() => n.close());
  n.links.length = 0;
  n.loop.step(confChangeEntry(encodeConfChange({ type: ConfChangeType.AddLearner, nodeId: 4, context: new TextEncoder().encode("127.0.0.1:4") })));
  await appliedTo(n, 2);
  t.deepEqual(n.loop.learners, [4]);
  t.is(n.loop.peers.get(4), "127.0.0.1:4");
  t.deepEqual(n.links, ["add 4 127.0.0.1:4"]);
});

/** The rogue's MsgApp of term 5 appending membership entries `datas` from index 2 and committing them. */
function confChangeEntries(...datas: Uint8Array[]) {
  return message({
    type: MessageType.App, from: 3, to: 1, term: 5, index: 1, logTerm: 1, commit: 1 + datas.length,
    entries: datas.map((data, i) => ({ index: 2 + i, term: 5, type: EntryType.ConfChange, data })),
  });
}

/** Node 1's audit lines once it applied `index` (its log closed). */
async function auditLines(t: { true(v: boolean, m?: string): void }, dir: string, entries: ReturnType<typeof message>, index: number) {
  const file = join(dir, "audit.log");
  const n = await follower(dir, { audit: true });
  n.loop.step(entries);
  await appliedTo(n, index);
  await n.close();
  t.true(verifyAuditChain(readFileSync(file, "utf8")).ok);
  return readFileSync(file, "utf8").trim().split("\n").map(parseAuditLine).filter((l) => l.kind === "membership");
}

const addLearner = (nodeId: number) => encodeConfChange({ type: ConfChangeType.AddLearner, nodeId, context: new TextEncoder().encode(`127.0.0.1:${nodeId}`) });

test("audit: a membership change Raft ignores is audited as ignored with Raft's reason, one it takes as ok", async (t) => {
  const got = await auditLines(t, tempDir(t), confChangeEntries(addLearner(2), addLearner(4)), 3);
  t.deepEqual(got.map((l) => [l.index, l.change, l.node, l.outcome, l.reason]), [
    [2, "AddLearner", 2, "ignored", "node 2 is already a member"], // before the fix: outcome "ok"
    [3, "AddLearner", 4, "ok", undefined],
  ]);
});

test("audit: an undecodable membership entry gets a line: ignored, undecodable, no change or node", async (t) => {
  const got = await auditLines(t, tempDir(t), confChangeEntries(new Uint8Array([0xff]), addLearner(4)), 3);
  t.deepEqual(got.map((l) => [l.index, l.change, l.node, l.outcome, l.reason]), [
    [2, undefined, undefined, "ignored", "undecodable"], // before the fix: no line at all
    [3, "AddLearner", 4, "ok", undefined],
  ]);
});

const settle = () => new Promise((r) => setTimeout(r, 300));

/** The rogue's MsgSnap (index 10, term 4) under message term `term`, naming store state `store`. */
function snapshotMessage(term: number, store: { appliedIndex: number; digest: Uint8Array }) {
  const data = encodeServerSnapshot({ peers: PEERS, store });
  return message({
    type: MessageType.Snap, from: 3, to: 1, term,
    snapshot: { metadata: { index: 10, term: 4, confState: { voters: [1, 2, 3], learners: [] } }, totalSize: data.length, offset: 0, data, done: true },
  });
}

/**
 * Stages X's state at 10 on node 1 while Raft ignores the message that
 * asked for it: the rogue raises the term during the download, so the held
 * message is stale when stepped. Returns once staged.
 */
async function stageButNotInstall(t: { truthy(v: unknown, m?: string): void; is(a: unknown, b: unknown, m?: string): void }, n: Follower, release: () => void, x: Harness): Promise<void> {
  n.loop.step(snapshotMessage(5, { appliedIndex: 10, digest: x.sm.digest() }));
  await settle();
  n.loop.step(message({ type: MessageType.Heartbeat, from: 3, to: 1, term: 6, commit: 1 }));
  release();
  for (let i = 0; i < 100 && n.files.stagedAt(10) === undefined; i++) await settle();
  await settle();
  t.truthy(n.files.stagedAt(10), "staged at (10, 4)");
  t.is(n.loop.vault.appliedIndex, 0, "Raft ignored the stale message: nothing installed");
}

/** The leader's MsgApp of `term` appending begins at prev+1.. (after (prev, prevTerm)) and committing them. */
function begins(term: number, prev: number, prevTerm: number, count: number) {
  const entries = Array.from({ length: count }, (_, i) => ({ index: prev + 1 + i, term, type: EntryType.Normal, data: encodeCommand(beginCmd("nobody")) }));
  return message({ type: MessageType.App, from: 3, to: 1, term, index: prev, logTerm: prevTerm, commit: prev + count, entries });
}

test("audit: a snapshot installed from the leader starts a segment; no restart reports it as a gap, before or after the next commit", async (t) => {
  const dir = tempDir(t);
  const X = new Harness();
  while (X.index < 10) X.apply(beginCmd("nobody"));
  const fetch = () => (async function* () { yield X.sm.snapshot(); })();
  const n = await follower(dir, { audit: true, fetch });
  n.loop.step(begins(5, 1, 1, 3));
  await appliedTo(n, 4);
  await settle(); // a tick commits the store, which records the head at 4
  t.is(recordedAuditHead(n.files.store)?.index, 4);
  n.loop.step(snapshotMessage(6, { appliedIndex: 10, digest: X.sm.digest() }));
  for (let i = 0; i < 20 && n.loop.vault.appliedIndex < 10; i++) await settle();
  t.is(n.loop.vault.appliedIndex, 10, "installed");
  t.is(recordedAuditHead(n.files.store), undefined, "the installed store holds no head (not the leader's, not the old store's)");
  await n.close();
  const a = await follower(dir, { audit: true, fetch });
  t.is(a.audit?.gap, null, "a restart right after the install");
  a.loop.step(begins(6, 10, 4, 2));
  await appliedTo(a, 12);
  await a.close();
  const b = await follower(dir, { audit: true, fetch });
  t.is(b.audit?.gap, null, "a restart after the new store's first commit");
  t.deepEqual(recordedAuditHead(b.files.store)?.index, 12);
  await b.close();
  const file = readFileSync(join(dir, "audit.log"), "utf8");
  t.deepEqual(file.trim().split("\n").map(parseAuditLine).map((l) => [l.index, l.kind, l.from]), [
    [1, "segment", "bootstrap"], [2, "attempt", undefined], [3, "attempt", undefined], [4, "attempt", undefined],
    [10, "segment", "snapshot"], [11, "attempt", undefined], [12, "attempt", undefined],
  ]);
  const v = verifyAuditChain(file);
  t.deepEqual(v.ok ? v.gaps : null, []);
  t.deepEqual([n.fatal, a.fatal, b.fatal], [[], [], []]);
});

function gated(x: Harness): { fetch: () => AsyncIterable<Uint8Array>; release: () => void } {
  let release!: () => void;
  const gate = new Promise<void>((r) => { release = r; });
  return { release, fetch: () => (async function* () { await gate; yield x.sm.snapshot(); })() };
}

test("a staged snapshot is never installed under a later message naming another state (it wedged the node for good)", async (t) => {
  const dir = tempDir(t);
  const X = new Harness();
  while (X.index < 10) X.apply(beginCmd("nobody"));
  const { fetch, release } = gated(X);
  const n = await follower(dir, { fetch });
  await stageButNotInstall(t, n, release, X);
  n.loop.step(snapshotMessage(6, { appliedIndex: 11, digest: new Uint8Array(32) }));
  await settle();
  t.deepEqual(n.fatal, [], "dropped; before the fix: VaultInvariantError, and the node could not start again");
  t.is(n.loop.vault.appliedIndex, 0);
  n.loop.step(snapshotMessage(7, { appliedIndex: 10, digest: X.sm.digest() }));
  for (let i = 0; i < 20 && n.loop.vault.appliedIndex < 10; i++) await settle();
  t.is(n.loop.vault.appliedIndex, 10, "the message naming the staged state installs it");
  await n.close();
  const again = await follower(dir);
  t.is(again.loop.vault.appliedIndex, 10);
  await again.close();
});

test("a staged snapshot is judged again when the node applied entries since: attempts counted meanwhile are not taken back", async (t) => {
  const reg = register("victim", { guessLimit: 3 });
  const registration = encodeCommand(registerCmd(reg));
  // X's history (nodes 2 and 3 vouch for it): the registration at 2, fillers up to 10.
  const X = new Harness();
  X.apply(registration);
  while (X.index < 10) X.apply(beginCmd("nobody"));
  const { fetch, release } = gated(X);
  const refusals: string[] = [];
  const n = await follower(tempDir(t), { fetch, vouch: () => X.sm.digest(), refusals });
  t.teardown(() => n.close());
  await stageButNotInstall(t, n, release, X);
  // Y's fork, committed on node 1 meanwhile: the same registration at 2, three begins at 3..5, fillers to 9.
  const datas: Uint8Array[] = [registration];
  for (let i = 0; i < 3; i++) datas.push(encodeCommand(beginCmd("victim", blindedPoint(50 + i))));
  while (datas.length < 8) datas.push(encodeCommand(beginCmd("nobody")));
  n.loop.step(message({
    type: MessageType.App, from: 3, to: 1, term: 6, index: 1, logTerm: 1, commit: 9,
    entries: datas.map((data, i) => ({ index: 2 + i, term: 6, type: EntryType.Normal, data })),
  }));
  await settle();
  t.is(n.loop.vault.getRecord("victim")?.attempts, 3);
  n.loop.step(snapshotMessage(7, { appliedIndex: 10, digest: X.sm.digest() }));
  for (let i = 0; i < 20 && refusals.length === 0; i++) await settle();
  t.deepEqual(refusals, ["rollback"], "judged again against the state as it is now; before the fix it went straight to Raft");
  t.is(n.loop.vault.appliedIndex, 9);
  t.is(n.loop.vault.getRecord("victim")?.attempts, 3, "before the fix: 0");
  t.deepEqual(n.fatal, []);
});
