// openVault on real data dirs (DiskStorage + VaultFiles on lmdb): a restart
// resumes from the store; a data dir of the release before the store (Raft
// snapshot format 1, the vault state inline in legacy format 3) is converted
// without losing a record (its records and announcements keep their
// content digest); a store of layout 2 is upgraded and committed on start;
// a crash between saving an installed snapshot and swapping its store in is
// finished on the next start; a store behind its snapshot is refused.
import { join } from "node:path";
import test from "ava";
import { bootstrapSnapshot } from "../../node/raft/index.js";
import { DiskStorage, StorageError, VaultFiles } from "../../node/storage/index.js";
import { type VaultStateMachine, SnapshotImporter, snapshotChunks, ALL_KEYS } from "../../node/vault/index.js";
import { encodeServerSnapshot } from "../../node/server/snapshot-data.js";
import { jsonLogger } from "../../node/server/log.js";
import { openVault } from "../../node/server/vault-open.js";
import { CLUSTER, Harness, NODES, legacyHarness, beginCmd, hex, register, registerCmd, contentDigest } from "../../testkit/vault.js";
import { RegistrationCloner } from "../../testkit/clones.js";
import { encodeLegacySnapshot, rewriteAsLayout2 } from "../../testkit/vault-store.js";
import { metaKey } from "../../node/vault/keys.js";
import { tempDir } from "../storage/helpers.js";

const quiet = jsonLogger("error", {}, () => ({}), () => {});
const PEERS = new Map([[1, "127.0.0.1:1"], [2, "127.0.0.1:2"], [3, "127.0.0.1:3"]]);
const CONF = { voters: [1, 2, 3], learners: [] };

/** A state with `n` records and a begun attempt on the first, applied to index n + 2. */
function stateWith(n: number): Harness {
  const h = legacyHarness(); // the source of legacy snapshots: their formats carry no bound-shares flag
  const clones = new RegistrationCloner(CLUSTER, NODES, 2);
  for (let i = 0; i < n; i++) h.apply(registerCmd(clones.registration(`user-${i}`, "unbound")));
  h.apply(beginCmd("user-0"));
  return h;
}

/** A new member's data dir: the bootstrap snapshot (format 1, a new state inline). */
async function bootstrap(dir: string): Promise<void> {
  const boot = await DiskStorage.open(join(dir, "raft"));
  await boot.saveSnapshot(bootstrapSnapshot([1, 2, 3], encodeServerSnapshot({ peers: PEERS, vault: new Harness().sm.snapshot() })));
  await boot.close();
}

async function open(dir: string): Promise<{ storage: DiskStorage; files: VaultFiles; sm: VaultStateMachine; close(): Promise<void> }> {
  const storage = await DiskStorage.open(join(dir, "raft"));
  const files = await VaultFiles.open(join(dir, "vault"));
  try {
    const sm = await openVault(files, storage.snapshot(), CLUSTER, quiet);
    return { storage, files, sm, close: async () => { await storage.close(); await files.close(); } };
  } catch (err) {
    await storage.close();
    await files.close();
    throw err;
  }
}

test("a data dir of the release before the store is converted on first start: every record, the same content digest", async (t) => {
  const dir = tempDir(t);
  const h = stateWith(50);
  const old = await DiskStorage.open(join(dir, "raft"));
  const index = h.index;
  const snap = { metadata: { index, term: 2, confState: CONF }, data: encodeServerSnapshot({ peers: PEERS, vault: encodeLegacySnapshot(h.sm) }) };
  await old.saveSnapshot(snap);
  await old.close();
  const a = await open(dir);
  t.is(a.sm.appliedIndex, h.sm.appliedIndex);
  // The request-id table is re-keyed by the conversion (node/vault); records and announcements are kept exactly.
  t.is(hex(contentDigest(a.sm)), hex(contentDigest(h.sm)));
  t.is(a.sm.stats().records, 50);
  for (let i = 0; i < 50; i++) t.deepEqual(a.sm.getRecord(`user-${i}`), h.sm.getRecord(`user-${i}`));
  const converted = hex(a.sm.digest());
  await a.close();
  // The second start opens the converted store as it is (the inline bytes are not read again).
  const b = await open(dir);
  t.is(hex(b.sm.digest()), converted);
  await b.close();
});

/** A new member's data dir, opened, with alice registered and one attempt begun (applied, not committed). */
async function openWithAlice(dir: string): Promise<{ a: Awaited<ReturnType<typeof open>>; h: Harness }> {
  await bootstrap(dir);
  const a = await open(dir);
  const h = new Harness(a.sm);
  h.apply(registerCmd(register("alice")));
  h.apply(beginCmd("alice"));
  return { a, h };
}

test("a restart resumes from the store at its applied index, past the Raft snapshot", async (t) => {
  const dir = tempDir(t);
  const { a, h } = await openWithAlice(dir);
  await a.files.store.commit();
  h.apply(registerCmd(register("bob"))); // applied, never committed: a crash here loses it from the store (Raft replays it)
  const durable = { index: h.index - 1, records: 1 };
  await a.close();
  const b = await open(dir);
  t.is(b.sm.appliedIndex, durable.index);
  t.is(b.sm.stats().records, durable.records);
  t.truthy(b.sm.getRecord("alice"));
  t.is(b.sm.getRecord("bob"), undefined);
  await b.close();
});

test("a store of layout 2 on disk is upgraded on start and the upgrade committed: the digest the same entries give now", async (t) => {
  const dir = tempDir(t);
  const { a } = await openWithAlice(dir);
  const want = hex(a.sm.digest());
  rewriteAsLayout2(a.files.store); // as the release before kept this state
  await a.files.store.commit();
  await a.close();
  const b = await open(dir);
  t.is(hex(b.sm.digest()), want);
  await b.close();
  const files = await VaultFiles.open(join(dir, "vault"));
  t.deepEqual([...(files.store.get(metaKey("format")) ?? [])], [3], "the upgrade was committed");
  t.is(files.store.get(metaKey("content")), undefined);
  await files.close();
});

/** Stages the state of `h` in `files` as Raft snapshot (index, term), as a follower's download does. */
async function stage(files: VaultFiles, h: Harness, index: number, term: number): Promise<void> {
  await files.stage(index, term, async (store) => {
    const importer = new SnapshotImporter(CLUSTER, store);
    for (const c of snapshotChunks(CLUSTER, h.sm.store.scan(...ALL_KEYS), 4096)) importer.push(c);
    return importer.finish();
  });
}

test("a crash after an installed snapshot was saved and before its store was swapped in: the next start swaps it in", async (t) => {
  const dir = tempDir(t);
  await bootstrap(dir);
  const a = await open(dir);
  const leader = stateWith(20);
  await stage(a.files, leader, leader.index, 3);
  const descriptor = encodeServerSnapshot({ peers: PEERS, store: { appliedIndex: leader.index, digest: leader.sm.digest() } });
  await a.storage.saveSnapshot({ metadata: { index: leader.index, term: 3, confState: CONF }, data: descriptor });
  await a.close(); // the crash: no promote
  const b = await open(dir);
  t.is(b.sm.appliedIndex, leader.index);
  t.is(hex(b.sm.digest()), hex(leader.sm.digest()));
  t.deepEqual(b.files.stagedIndices(), []);
  await b.close();
});

test("a staged snapshot Raft never saved is discarded on start; the store stays as it was", async (t) => {
  const dir = tempDir(t);
  await bootstrap(dir);
  const a = await open(dir);
  const leader = stateWith(5);
  await stage(a.files, leader, leader.index, 3);
  await a.close();
  const b = await open(dir);
  t.is(b.sm.appliedIndex, 0);
  t.deepEqual(b.files.stagedIndices(), []);
  await b.close();
});

test("a store behind the state its Raft snapshot names is refused (the log before the snapshot is gone)", async (t) => {
  const dir = tempDir(t);
  const leader = stateWith(3);
  const storage = await DiskStorage.open(join(dir, "raft"));
  const descriptor = encodeServerSnapshot({ peers: PEERS, store: { appliedIndex: leader.index, digest: leader.sm.digest() } });
  await storage.saveSnapshot({ metadata: { index: leader.index, term: 3, confState: CONF }, data: descriptor });
  await storage.close();
  await t.throwsAsync(() => open(dir), { instanceOf: StorageError, message: /names a store state but the vault store .* is empty/ });
});
