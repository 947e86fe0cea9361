// The import's pair hashers (node/server/pair-hashers.ts): the worker
// threads give the in-line LtHash byte for byte, refuse what the in-line
// path refuses, fail an import when a thread fails, and leave no thread
// behind (serial: hashThreadsAlive() counts the whole process's threads).
import { join } from "node:path";
import test from "ava";
import { sha256 } from "@noble/hashes/sha2.js";
import { MessageType, message } from "../../node/raft/index.js";
import { VaultFiles } from "../../node/storage/index.js";
import { CorruptSnapshotError, InlinePairHasher, MemoryStore, SnapshotImporter, snapshotChunks, ALL_KEYS } from "../../node/vault/index.js";
import { recordKey } from "../../node/vault/keys.js";
import { encodeServerSnapshot } from "../../node/server/snapshot-data.js";
import { jsonLogger } from "../../node/server/log.js";
import { WorkerPairHasher, hashThreadsAlive } from "../../node/server/pair-hashers.js";
import { SnapshotStager } from "../../node/server/store-snapshots.js";
import { CLUSTER, Harness, NODES, hex, registerCmd } from "../../testkit/vault.js";
import { RegistrationCloner } from "../../testkit/clones.js";
import { tempDir } from "../storage/helpers.js";

/** A state of `records` records (~1 KiB each: enough for several batches of the worker hasher). */
function leaderState(records: number): Harness {
  const h = new Harness();
  const clones = new RegistrationCloner(CLUSTER, NODES, 2);
  for (let i = 0; i < records; i++) h.apply(registerCmd(clones.registration(`user-${i}`)));
  return h;
}

const until = async (cond: () => boolean): Promise<void> => {
  for (let i = 0; i < 1000 && !cond(); i++) await new Promise((r) => setTimeout(r, 10));
};

/** Imports `snap` (4 KiB chunks) into a new MemoryStore with a worker hasher of `threads`; the hasher is closed whatever happens. */
async function importWithWorkers(snap: Uint8Array, threads: number): Promise<{ appliedIndex: number; digest: Uint8Array }> {
  const hasher = new WorkerPairHasher(threads);
  try {
    const importer = new SnapshotImporter(CLUSTER, new MemoryStore(), hasher);
    for (let at = 0; at < snap.length; at += 4096) {
      importer.push(snap.subarray(at, at + 4096));
      await hasher.ready();
    }
    return await importer.finishHashed();
  } finally {
    await hasher.close();
  }
}

test.serial("the worker hasher's sum is the in-line LtHash, byte for byte, on a real snapshot (1 and 2 threads)", async (t) => {
  const h = leaderState(700);
  const snap = h.sm.snapshot();
  t.true(snap.length > 3 * 256 * 1024, `several batches (${snap.length} bytes)`);
  const small = new WorkerPairHasher(2);
  small.add(Uint8Array.of(1, 2), Uint8Array.of(3));
  const one = new InlinePairHasher();
  one.add(Uint8Array.of(1, 2), Uint8Array.of(3));
  t.is(hex(await small.total()), hex(one.total()));
  t.is(hashThreadsAlive(), 0, "less than a batch is hashed in line: no thread started");
  await small.close();
  const inline = new InlinePairHasher();
  const importer = new SnapshotImporter(CLUSTER, new MemoryStore(), inline);
  importer.push(snap);
  const want = importer.finish();
  t.is(hex(want.digest), hex(h.sm.digest()));
  for (const threads of [1, 2]) {
    const got = await importWithWorkers(snap, threads);
    t.is(got.appliedIndex, want.appliedIndex);
    t.is(hex(got.digest), hex(want.digest), `${threads} thread(s)`);
  }
  t.is(hashThreadsAlive(), 0);
});

test.serial("a pair altered under a resealed checksum is refused with the worker hasher, as in line", async (t) => {
  const h = leaderState(40);
  const snap = h.sm.snapshot();
  const key = recordKey("user-7");
  const at = Buffer.from(snap).indexOf(Buffer.from(key)) + key.length + 4 + 200; // a byte inside user-7's value
  const body = snap.slice(0, snap.length - 32);
  body[at] = (body[at] ?? 0) ^ 0x01;
  const forged = Uint8Array.of(...body, ...sha256(body));
  const inline = new SnapshotImporter(CLUSTER, new MemoryStore());
  inline.push(forged);
  t.throws(() => inline.finish(), { instanceOf: CorruptSnapshotError, message: /state digest does not match the pairs/ });
  await t.throwsAsync(importWithWorkers(forged, 2), { instanceOf: CorruptSnapshotError, message: /state digest does not match the pairs/ });
  t.is(hashThreadsAlive(), 0);
});

test.serial("a hash thread that dies fails the sum (not a wrong digest), and close() stops the rest", async (t) => {
  const hasher = new WorkerPairHasher(2);
  const v = new Uint8Array(1000);
  for (let i = 0; i < 1000; i++) hasher.add(Uint8Array.of(1, i & 0xff, i >> 8), v);
  t.is(hashThreadsAlive(), 2);
  const threads = (hasher as unknown as { threads: Array<{ worker: { terminate(): Promise<number> } }> }).threads;
  await threads[0]!.worker.terminate();
  await t.throwsAsync(async () => {
    for (let i = 1000; i < 2000; i++) hasher.add(Uint8Array.of(1, i & 0xff, i >> 8), v);
    await hasher.total();
  }, { message: /hash thread/ });
  await hasher.close();
  t.is(hashThreadsAlive(), 0);
});

test.serial("an import aborted mid-download leaves no hash thread behind, and nothing staged", async (t) => {
  const h = leaderState(400); // ~440 KiB: the download stops past one batch (256 KiB), so threads are started
  const files = await VaultFiles.open(join(tempDir(t), "vault"));
  t.teardown(() => files.close());
  const warnings: string[] = [];
  let sent = 0;
  let hung = false;
  const stager = new SnapshotStager({
    clusterId: CLUSTER, files, log: jsonLogger("warn", {}, () => ({}), (line) => void warnings.push(line)), appliedIndex: () => 0, term: () => 0,
    step: () => t.fail("an aborted import must not be stepped"), attest: () => Promise.resolve(),
    fetch: async function* (_from, _index, _term, signal) {
      for (const c of snapshotChunks(CLUSTER, h.sm.store.scan(...ALL_KEYS), 4096)) {
        if (sent > 300 * 1024 && !hung) {
          hung = true;
          await new Promise((_, reject) => signal.addEventListener("abort", () => reject(new Error("aborted")), { once: true }));
        }
        sent += c.length;
        yield c;
      }
    },
  });
  const data = encodeServerSnapshot({ peers: new Map([[1, "a:1"]]), store: { appliedIndex: h.index, digest: h.sm.digest() } });
  const m = message({ type: MessageType.Snap, from: 1, to: 2, term: 3, snapshot: { metadata: { index: h.index, term: 3, confState: { voters: [1, 2, 3], learners: [] } }, totalSize: data.length, offset: 0, data, done: true } });
  t.true(stager.intercept(m));
  await until(() => hung);
  t.true(hashThreadsAlive() > 0, "the import hashes in threads");
  stager.stop();
  await until(() => warnings.some((l) => l.includes("snapshot not staged")) && hashThreadsAlive() === 0);
  t.is(hashThreadsAlive(), 0);
  t.deepEqual(files.stagedIndices(), []);
});
