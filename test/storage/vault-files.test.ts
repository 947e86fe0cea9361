// VaultFiles: the current store survives reopening, a staged snapshot
// becomes current by promote() only, and what a crash leaves at each step
// (an unfinished staging, a staged snapshot not yet promoted, a promoted one
// whose predecessor was not deleted yet) is sorted out by open().
import { mkdirSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import test from "ava";
import { StorageError, VaultFiles } from "../../node/storage/index.js";
import type { LmdbVaultStore } from "../../node/storage/vault-store.js";
import { tempDir } from "./helpers.js";

const b = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, "latin1"));
const s = (u: Uint8Array | undefined): string | undefined => (u === undefined ? undefined : Buffer.from(u).toString("latin1"));
const DIGEST = new Uint8Array(32).fill(7);

async function fillWith(store: LmdbVaultStore, value: string): Promise<{ appliedIndex: number; digest: Uint8Array }> {
  store.put(b("k"), b(value));
  await store.commit();
  store.put(b("k2"), b(value));
  return { appliedIndex: 40, digest: DIGEST };
}

const generations = (dir: string): string[] => readdirSync(dir).filter((n) => /^[0-9a-f]{16}$/.test(n)).sort();

test("the current store keeps its committed state across reopening", async (t) => {
  const dir = tempDir(t);
  const a = await VaultFiles.open(dir);
  a.store.put(b("k"), b("v"));
  await a.store.commit();
  await a.close();
  const c = await VaultFiles.open(dir);
  t.teardown(() => c.close());
  t.is(s(c.store.get(b("k"))), "v");
  t.deepEqual(generations(dir), ["0000000000000001"]);
});

test("a staged snapshot becomes current only by promote(); the replaced store is deleted once retired", async (t) => {
  const dir = tempDir(t);
  const f = await VaultFiles.open(dir);
  t.teardown(() => f.close());
  f.store.put(b("k"), b("old"));
  await f.store.commit();
  const staged = await f.stage(40, 3, (st) => fillWith(st, "new"));
  t.like(staged, { index: 40, term: 3, appliedIndex: 40 });
  t.is(s(f.store.get(b("k"))), "old", "staging does not touch the current store");
  await t.throwsAsync(() => f.promote(41), { instanceOf: StorageError, message: /no staged snapshot at index 41/ });
  await f.promote(40);
  t.is(s(f.store.get(b("k"))), "new");
  t.is(s(f.store.get(b("k2"))), "new", "the fill's last writes were committed by stage()");
  t.is(generations(dir).length, 2, "the replaced store stays until retired");
  await f.closeRetired();
  t.deepEqual(generations(dir), ["0000000000000002"]);
});

test("a fill that throws leaves no store behind", async (t) => {
  const dir = tempDir(t);
  const f = await VaultFiles.open(dir);
  t.teardown(() => f.close());
  await t.throwsAsync(() => f.stage(40, 3, async (st) => { st.put(b("k"), b("x")); await st.commit(); throw new Error("digest mismatch"); }), { message: "digest mismatch" });
  t.deepEqual(generations(dir), ["0000000000000001"]);
  t.deepEqual(f.stagedIndices(), []);
});

test("crash after staging, before promote: reopening keeps the staged snapshot for the caller to promote", async (t) => {
  const dir = tempDir(t);
  const f = await VaultFiles.open(dir);
  await f.stage(40, 3, (st) => fillWith(st, "new"));
  await f.close();
  // An unfinished staging (no STAGED file) and a leftover CURRENT.tmp are removed.
  mkdirSync(join(dir, "00000000000000ff"));
  writeFileSync(join(dir, "00000000000000ff", "data.mdb"), "partial");
  writeFileSync(join(dir, "CURRENT.tmp"), "00000000000000ff\n");
  const g = await VaultFiles.open(dir);
  t.teardown(() => g.close());
  t.deepEqual(g.stagedIndices(), [40]);
  t.deepEqual(g.stagedAt(40)?.digest, DIGEST);
  t.is(g.store.get(b("k")), undefined);
  t.deepEqual(generations(dir), ["0000000000000001", "0000000000000002"]);
  await g.promote(40);
  t.is(s(g.store.get(b("k"))), "new");
});

test("crash after promote, before the old store is deleted: reopening uses the promoted store and deletes the old one", async (t) => {
  const dir = tempDir(t);
  const f = await VaultFiles.open(dir);
  await f.stage(40, 3, (st) => fillWith(st, "new"));
  await f.promote(40);
  t.is(generations(dir).length, 2);
  // The process "dies" with both generations on disk: close the stores without retiring.
  await (f as unknown as { retired: { store: LmdbVaultStore } }).retired.store.close();
  await f.store.close();
  const g = await VaultFiles.open(dir);
  t.teardown(() => g.close());
  t.is(s(g.store.get(b("k"))), "new");
  t.deepEqual(generations(dir), ["0000000000000002"]);
});

test("a CURRENT that names no generation is refused", async (t) => {
  const dir = tempDir(t);
  writeFileSync(join(dir, "CURRENT"), "not a generation\n");
  await t.throwsAsync(() => VaultFiles.open(dir), { instanceOf: StorageError, message: /does not name a generation/ });
});
