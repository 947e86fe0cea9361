// An lmdb data file cut short (a copy or restore that did not finish, a
// file truncated by hand) is refused at open with a StorageError naming it;
// unchecked, lmdb maps it and the process dies of SIGBUS or SIGSEGV at the
// first read of a missing page, with no line saying why.
import { statSync, truncateSync } from "node:fs";
import { join } from "node:path";
import test from "ava";
import { EvaluationLedger, LmdbVaultStore, StorageError } from "../../node/storage/index.js";
import { checkLmdbDataFile } from "../../node/storage/lmdb-file.js";
import { tempDir } from "./helpers.js";

/** A closed store of `n` 1 KiB values; returns its data file's size. */
async function filledStore(dir: string, n: number): Promise<number> {
  const store = await LmdbVaultStore.open(dir);
  for (let i = 0; i < n; i++) store.put(new Uint8Array(Buffer.from(`key-${i}`)), new Uint8Array(1024).fill(i & 0xff));
  await store.commit();
  await store.close();
  return statSync(join(dir, "data.mdb")).size;
}

/** Opens the store and reads every key (where a file cut short would fault), then closes it. */
async function openAndRead(dir: string, n: number): Promise<void> {
  const store = await LmdbVaultStore.open(dir);
  try {
    for (let i = 0; i < n; i++) store.get(new Uint8Array(Buffer.from(`key-${i}`)));
  } finally {
    await store.close();
  }
}

test("a whole store file passes and reopens; a store file cut short is refused at open, naming the file", async (t) => {
  const dir = tempDir(t);
  const size = await filledStore(dir, 400);
  t.notThrows(() => checkLmdbDataFile(dir, "vault store"));
  await t.notThrowsAsync(openAndRead(dir, 400));
  truncateSync(join(dir, "data.mdb"), Math.floor(size / 2));
  const err = await t.throwsAsync(openAndRead(dir, 400), { instanceOf: StorageError });
  t.regex(err?.message ?? "", /vault store: .*data\.mdb is \d+ bytes, shorter than the \d+ its last commit uses \(truncated\)/);
  t.regex(err?.message ?? "", /rebuild this node from the cluster/);
});

test("an evaluation ledger file without its meta pages is refused; an absent or empty one is created", async (t) => {
  const dir = tempDir(t);
  await (await EvaluationLedger.open(dir)).close();
  truncateSync(join(dir, "data.mdb"), 100);
  await t.throwsAsync(EvaluationLedger.open(dir), { instanceOf: StorageError, message: /evaluation ledger: .*data\.mdb has no lmdb meta page/ });
  truncateSync(join(dir, "data.mdb"), 0);
  await t.notThrowsAsync(async () => (await EvaluationLedger.open(dir)).close());
  t.notThrows(() => checkLmdbDataFile(join(dir, "absent"), "evaluation ledger"));
});
