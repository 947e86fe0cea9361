// LmdbVaultStore: read-your-writes over the overlay, commit durability and
// atomicity (also across SIGKILL), consistent views, byte order of keys.
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import test from "ava";
import { LmdbVaultStore, MAX_READERS } from "../../node/storage/vault-store.js";
import { StorageFailedError } from "../../node/storage/index.js";
import { VaultStateMachine, encodeCommand, rollbackFrom } from "../../node/vault/index.js";
import { CLUSTER, Harness, beginCmd, blindedPoint, expectOk, register, registerCmd, runToEnd } from "../../testkit/vault.js";
import { batchKey, prng, tempDir } from "./helpers.js";

const b = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, "latin1"));
const s = (u: Uint8Array | undefined): string | undefined => (u === undefined ? undefined : Buffer.from(u).toString("latin1"));
const pairs = (it: Iterable<readonly [Uint8Array, Uint8Array]>): string[] => [...it].map(([k, v]) => `${s(k)}=${s(v)}`);
const ALL: [Uint8Array, Uint8Array] = [new Uint8Array(0), Uint8Array.of(0xff)];

test("reads see uncommitted puts and deletes; scan merges them over the committed pairs in byte order", async (t) => {
  const store = await LmdbVaultStore.open(tempDir(t));
  t.teardown(() => store.close());
  store.put(b("b"), b("1"));
  store.put(b("d"), b("1"));
  store.put(Uint8Array.of(0x80), b("high"));
  await store.commit();
  store.put(b("a"), b("2"));
  store.put(b("c"), b("2"));
  store.delete(b("d"));
  store.put(b("b"), b("2"));
  t.is(s(store.get(b("b"))), "2");
  t.is(store.get(b("d")), undefined);
  t.deepEqual(pairs(store.scan(...ALL)), ["a=2", "b=2", "c=2", `${s(Uint8Array.of(0x80))}=high`]);
  t.deepEqual(pairs(store.scan(b("b"), b("d"))), ["b=2", "c=2"]);
  await store.commit();
  t.deepEqual(pairs(store.scan(...ALL)), ["a=2", "b=2", "c=2", `${s(Uint8Array.of(0x80))}=high`]);
  t.is((await store.stats()).overlayEntries, 0);
});

test("load() writes at the next commit, outside the overlay: counted as uncommitted, read once committed; a put of the same key wins", async (t) => {
  const dir = tempDir(t);
  const store = await LmdbVaultStore.open(dir);
  store.load(b("b"), b("loaded"));
  store.load(b("c"), b("loaded"));
  store.put(b("c"), b("put"));
  store.load(b("a"), b("loaded"));
  t.is(store.uncommitted, 4);
  t.is(store.get(b("b")), undefined, "not in the overlay: a load is read only once committed");
  t.throws(() => store.load(new Uint8Array(0), b("x")), { instanceOf: RangeError });
  await store.commit();
  t.is(store.uncommitted, 0);
  t.deepEqual(pairs(store.scan(...ALL)), ["a=loaded", "b=loaded", "c=put"]);
  await store.close();
  const again = await LmdbVaultStore.open(dir);
  t.teardown(() => again.close());
  t.deepEqual(pairs(again.scan(...ALL)), ["a=loaded", "b=loaded", "c=put"], "durable");
});

test("a reopened store holds exactly the committed writes", async (t) => {
  const dir = tempDir(t);
  const a = await LmdbVaultStore.open(dir);
  a.put(b("k1"), b("v1"));
  a.put(b("k2"), b("v2"));
  await a.commit();
  a.delete(b("k1"));
  a.put(b("k3"), b("never committed"));
  await a.close();
  const c = await LmdbVaultStore.open(dir);
  t.teardown(() => c.close());
  t.deepEqual(pairs(c.scan(...ALL)), ["k1=v1", "k2=v2"]);
  t.is((await c.stats()).entries, 2);
});

test("pipelined commits apply in call order; a later write of a key wins over an earlier commit", async (t) => {
  const store = await LmdbVaultStore.open(tempDir(t));
  t.teardown(() => store.close());
  const done: number[] = [];
  const commits: Promise<void>[] = [];
  for (let i = 0; i < 20; i++) {
    store.put(b("x"), b(String(i)));
    store.put(b(`k${String(i).padStart(2, "0")}`), b("v"));
    if (i % 2 === 0) store.delete(b(`k${String(i).padStart(2, "0")}`));
    commits.push(store.commit().then(() => void done.push(i)));
    t.is(s(store.get(b("x"))), String(i), "the newest write is read while older commits are in flight");
  }
  await Promise.all(commits);
  t.deepEqual(done, [...Array(20).keys()]);
  t.is(s(store.get(b("x"))), "19");
  t.is([...store.scan(b("k"), b("l"))].length, 10);
});

test("commit(after) seals its batch now and writes it once `after` resolved; later commits wait their turn; a rejected `after` fails the store", async (t) => {
  const store = await LmdbVaultStore.open(tempDir(t));
  t.teardown(() => store.close());
  let release!: () => void;
  const gate = new Promise<void>((r) => { release = r; });
  store.put(b("a"), b("1"));
  const first = store.commit(gate);
  store.put(b("b"), b("2")); // the next batch, not the sealed one
  const second = store.commit();
  await new Promise((r) => setTimeout(r, 50));
  const before = store.view();
  t.deepEqual(pairs(before.scan(...ALL)), [], "nothing is written while `after` is pending");
  before.release();
  t.is(s(store.get(b("a"))), "1", "reads still see the sealed batch");
  release();
  await Promise.all([first, second]);
  const after = store.view();
  t.deepEqual(pairs(after.scan(...ALL)), ["a=1", "b=2"]);
  after.release();
  store.put(b("c"), b("3"));
  await t.throwsAsync(store.commit(Promise.reject(new Error("the audit flush failed"))), { instanceOf: StorageFailedError });
  t.throws(() => store.put(b("d"), b("4")), { instanceOf: StorageFailedError });
});

test("a view reads the state of the last commit before it, whatever is written or committed after", async (t) => {
  const store = await LmdbVaultStore.open(tempDir(t));
  t.teardown(() => store.close());
  for (let i = 0; i < 100; i++) store.put(b(`r${String(i).padStart(3, "0")}`), b(`v${i}`));
  await store.commit();
  store.put(b("r000"), b("uncommitted"));
  const view = store.view();
  t.is(s(view.get(b("r000"))), "v0", "the overlay is not part of a view");
  await store.commit();
  store.delete(b("r001"));
  store.put(b("r999"), b("new"));
  await store.commit();
  const seen = pairs(view.scan(...ALL));
  t.is(seen.length, 100);
  t.is(seen[0], "r000=v0");
  t.is(s(store.get(b("r000"))), "uncommitted");
  t.is((await store.stats()).views, 1);
  const scan = view.scan(...ALL)[Symbol.iterator]();
  t.is(s(scan.next().value?.[0]), "r000");
  view.release();
  view.release();
  t.throws(() => scan.next(), { message: /after release/ }, "a scan in progress ends at release");
  t.is((await store.stats()).views, 0);
  t.throws(() => view.get(b("r000")), { message: /after release/ });
});

test("keys compare as unsigned bytes, prefixes first; large values round-trip", async (t) => {
  const store = await LmdbVaultStore.open(tempDir(t));
  t.teardown(() => store.close());
  const rand = prng(7);
  const keys = Array.from({ length: 300 }, () => Uint8Array.from({ length: 1 + rand(12) }, (_, i) => rand(i === 0 ? 255 : 256)));
  const big = Uint8Array.from({ length: 70_000 }, (_, i) => i & 0xff);
  for (const k of keys) store.put(k, big);
  store.put(Uint8Array.of(0x72, ...Buffer.from("ü".repeat(200))), b("long key"));
  await store.commit();
  const got = [...store.scan(...ALL)].map(([k]) => Buffer.from(k));
  const want = [...new Set([...keys, Uint8Array.of(0x72, ...Buffer.from("ü".repeat(200)))].map((k) => Buffer.from(k).toString("hex")))]
    .map((h) => Buffer.from(h, "hex")).sort(Buffer.compare);
  t.deepEqual(got.map((k) => k.toString("hex")), want.map((k) => k.toString("hex")));
  t.deepEqual(new Uint8Array(store.get(keys[0]!)!), big);
});

test("an empty key is refused; a closed store refuses use", async (t) => {
  const store = await LmdbVaultStore.open(tempDir(t));
  t.throws(() => store.put(new Uint8Array(0), b("x")), { instanceOf: RangeError });
  await store.close();
  t.throws(() => store.get(b("a")), { instanceOf: StorageFailedError });
});

const WRITER = fileURLToPath(new URL("./fixtures/vault-store-writer.ts", import.meta.url));

/** Runs the writer from batch `first`, SIGKILLs it `killAfterMs` after its first durable batch; returns the highest one reported. */
async function runAndKill(dir: string, first: number, killAfterMs: number): Promise<number> {
  const child = spawn(process.execPath, ["--import", "tsx", WRITER, dir, String(first)], { stdio: ["ignore", "pipe", "pipe"] });
  let max = 0;
  let stderr = "";
  let timer: NodeJS.Timeout | undefined;
  const guard = setTimeout(() => child.kill("SIGKILL"), 30_000);
  child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
  child.stdout.on("data", (d: Buffer) => {
    for (const l of d.toString().split("\n")) if (l !== "") max = Math.max(max, Number(l));
    timer ??= setTimeout(() => child.kill("SIGKILL"), killAfterMs);
  });
  const signal = await new Promise<string | null>((resolve) => child.on("exit", (_c, sig) => resolve(sig)));
  clearTimeout(guard);
  clearTimeout(timer);
  if (signal !== "SIGKILL") throw new Error(`writer exited by itself: ${stderr}`);
  return max;
}


test("SIGKILL between and during commits keeps every resolved commit whole and no part of a later one", async (t) => {
  const dir = tempDir(t);
  const rand = prng(20261204);
  let first = 1;
  for (let iter = 0; iter < 4; iter++) {
    const reported = await runAndKill(dir, first, 50 + rand(400));
    const store = await LmdbVaultStore.open(dir);
    try {
      const raw = store.get(b("applied"));
      const applied = raw === undefined ? 0 : Buffer.from(raw).readUInt32BE(0);
      t.true(applied >= reported, `iteration ${iter}: applied ${applied} < durable ${reported}`);
      for (let i = first; i <= applied + 3; i++) {
        const present = Array.from({ length: 20 }, (_, j) => store.get(batchKey(i, j)) !== undefined);
        const deletedBy = i + 3 <= applied; // batch i+3 deleted key (i, 0)
        const want = i <= applied ? present.map((_, j) => !(j === 0 && deletedBy)) : present.map(() => false);
        if (JSON.stringify(present) !== JSON.stringify(want)) t.fail(`iteration ${iter}: batch ${i} is ${JSON.stringify(present)} at applied ${applied}`);
      }
      first = applied + 1;
    } finally {
      await store.close();
    }
  }
  t.true(first > 1, "some batch became durable");
});

// A node died of MDB_READERS_FULL once its request-id table was full: each entry evicted the oldest id with a scan
// left open (next() once), and every open iteration held an LMDB read transaction across the commits that followed.
test("a full request-id table evicting one id per entry does not exhaust the store's readers", async (t) => {
  const store = await LmdbVaultStore.open(tempDir(t));
  t.teardown(() => store.close());
  const h = new Harness(new VaultStateMachine({ clusterId: CLUSTER, store, requestIdCapacity: 4 }));
  const users = ["reader-a", "reader-b"];
  for (const user of users) expectOk(t, h.result(registerCmd(register(user, { guessLimit: 255 }))), "register");
  await store.commit();
  let most = 0;
  for (let i = 0; i < 400; i++) {
    expectOk(t, h.result(beginCmd(users[i % 2]!, blindedPoint(i + 3))), "begin"); // each begin is remembered, evicting one id
    await store.commit();
    most = Math.max(most, store.readers());
  }
  t.is(h.sm.rememberedRequests, 4);
  t.true(most <= 2, `at most ${most} LMDB readers open at once (of ${MAX_READERS})`);
});

test("rollbackFrom reads two LMDB stores as the stager hands them over: attempts this store counted, missing from the other, are named", async (t) => {
  const [mine, theirs] = [await LmdbVaultStore.open(tempDir(t)), await LmdbVaultStore.open(tempDir(t))];
  t.teardown(async () => { await mine.close(); await theirs.close(); });
  const [a, b] = [mine, theirs].map((store) => new Harness(new VaultStateMachine({ clusterId: CLUSTER, store })));
  const entry = encodeCommand(registerCmd(register("carol", { guessLimit: 5 })));
  for (const h of [a!, b!]) h.apply(entry);
  a!.apply(beginCmd("carol", blindedPoint(3)));
  b!.apply(beginCmd("nobody", blindedPoint(4)));
  await Promise.all([mine.commit(), theirs.commit()]);
  t.is(runToEnd(rollbackFrom(mine, theirs)), 'the record of "carol" counts 0 attempts, not 1');
  t.is(runToEnd(rollbackFrom(theirs, mine)), null);
});
