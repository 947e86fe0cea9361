import { readdirSync } from "node:fs";
import { join } from "node:path";
import test from "ava";
import { ErrCompacted } from "../../node/raft/types.js";
import { DiskStorage, InvalidSaveError, StorageFailedError } from "../../node/storage/index.js";
import { entries, quiet, tempDir } from "./helpers.js";

const cs = { voters: [1, 2, 3], learners: [4] };

async function reopen(dir: string, segmentBytes?: number): Promise<DiskStorage> {
  return DiskStorage.open(dir, { logger: quiet, ...(segmentBytes ? { segmentBytes } : {}) });
}

test("entries and hard state survive a reopen byte for byte", async (t) => {
  const dir = tempDir(t);
  const s = await reopen(dir);
  t.is(s.lastIndex(), 0);
  await s.save({ entries: entries(1, 10), hardState: { term: 1, vote: 2, commit: 5 }, mustSync: true });
  await s.save({ entries: entries(11, 20), hardState: { term: 1, vote: 2, commit: 15 }, mustSync: true });
  await s.save({ hardState: { term: 1, vote: 2, commit: 20 }, mustSync: false });
  await s.close();
  const r = await reopen(dir);
  t.is(r.firstIndex(), 1);
  t.is(r.lastIndex(), 20);
  t.deepEqual(r.entries(1, 21, Infinity), entries(1, 20));
  t.deepEqual(r.initialState().hardState, { term: 1, vote: 2, commit: 20 });
  t.is(r.openReport.truncatedBytes, 0);
  await r.close();
});

test("the log holds each entry's data in a buffer of its own, not a view of a WAL segment or a peer frame", async (t) => {
  const dir = tempDir(t);
  const s = await reopen(dir);
  const frame = new Uint8Array(64 * 1024); // as a decoded peer frame: entries are views into it
  const views = entries(1, 4).map((e, i) => ({ ...e, data: frame.subarray(i * 100, i * 100 + 10) }));
  await s.save({ entries: views, hardState: { term: 1, vote: 2, commit: 4 }, mustSync: true });
  const own = (d: Uint8Array) => d.byteOffset === 0 && d.buffer.byteLength === d.byteLength;
  t.true(s.entries(1, 5, Infinity).every((e) => own(e.data)), "after a save");
  await s.close();
  const r = await reopen(dir);
  t.true(r.entries(1, 5, Infinity).every((e) => own(e.data)), "after the WAL is read back at open");
  t.deepEqual(r.entries(1, 5, Infinity).map((e) => [...e.data]), views.map((e) => [...e.data]));
  await r.close();
});

test("a later entry at an existing index replaces the suffix (raft truncation)", async (t) => {
  const dir = tempDir(t);
  const s = await reopen(dir);
  await s.save({ entries: entries(1, 10, 1), mustSync: true });
  await s.save({ entries: entries(6, 8, 2), hardState: { term: 2, vote: 1, commit: 3 }, mustSync: true });
  t.is(s.lastIndex(), 8);
  await s.close();
  const r = await reopen(dir);
  t.is(r.lastIndex(), 8);
  t.deepEqual(r.entries(1, 9, Infinity), [...entries(1, 5, 1), ...entries(6, 8, 2)]);
  t.is(r.term(8), 2);
  await r.close();
});

test("saves that would leave a gap are refused before anything is written", async (t) => {
  const dir = tempDir(t);
  const s = await reopen(dir);
  await s.save({ entries: entries(1, 3), mustSync: true });
  await t.throwsAsync(s.save({ entries: entries(5, 6) }), { instanceOf: InvalidSaveError });
  await t.throwsAsync(s.save({ entries: [...entries(4, 4), ...entries(6, 6)] }), { instanceOf: InvalidSaveError });
  t.is(s.lastIndex(), 3);
  t.is(s.stats.appends, 1);
  await s.close();
  await t.throwsAsync(s.save({ entries: entries(4, 4) }), { instanceOf: StorageFailedError });
});

test("segments rotate at the size bound and all of them are replayed", async (t) => {
  const dir = tempDir(t);
  const s = await reopen(dir, 4096);
  for (let i = 1; i <= 200; i += 10) {
    await s.save({ entries: entries(i, i + 9), hardState: { term: 1, vote: 1, commit: i }, mustSync: true });
  }
  t.true(s.stats.rotations >= 3);
  const segs = s.walSegments();
  t.is(segs.length, s.stats.rotations + 1);
  t.deepEqual(readdirSync(join(dir, "wal")).sort(), segs);
  await s.close();
  const r = await reopen(dir, 4096);
  t.deepEqual(r.entries(1, 201, Infinity), entries(1, 200));
  t.deepEqual(r.initialState().hardState, { term: 1, vote: 1, commit: 191 });
  await r.close();
});

test("concurrent saves are group-committed: fewer fsyncs than saves, applied in call order", async (t) => {
  const dir = tempDir(t);
  const s = await reopen(dir);
  const before = s.stats.fsyncs;
  const saves = [];
  for (let i = 1; i <= 50; i++) saves.push(s.save({ entries: entries(i, i), hardState: { term: 1, vote: 1, commit: i } }));
  await Promise.all(saves);
  const fsyncs = s.stats.fsyncs - before;
  t.true(fsyncs >= 1);
  t.true(fsyncs < 50, `${fsyncs} fsyncs for 50 saves`);
  t.is(s.lastIndex(), 50);
  t.deepEqual(s.initialState().hardState.commit, 50);
  await s.close();
  const r = await reopen(dir);
  t.deepEqual(r.entries(1, 51, Infinity), entries(1, 50));
  await r.close();
});

test("createSnapshot persists the snapshot; after two, old segments are removed and restart uses the snapshot", async (t) => {
  const dir = tempDir(t);
  const s = await reopen(dir, 2048);
  for (let i = 1; i <= 300; i += 10) await s.save({ entries: entries(i, i + 9), hardState: { term: 1, vote: 1, commit: i + 9 } });
  const segsBefore = s.walSegments().length;
  const snap1 = await s.createSnapshot(100, cs, Buffer.from("state@100"));
  t.is(snap1.metadata.index, 100);
  t.is(s.walSegments().length, segsBefore, "one snapshot: nothing purged, it has no fallback yet");
  s.compact(100);
  t.throws(() => s.entries(100, 101, Infinity), { instanceOf: ErrCompacted });
  await s.createSnapshot(250, cs, Buffer.from("state@250"));
  const segsAfter = s.walSegments();
  t.true(segsAfter.length < segsBefore, `${segsAfter.length} < ${segsBefore}`);
  t.deepEqual(readdirSync(join(dir, "wal")).sort(), segsAfter);
  t.true(s.stats.purgedSegments > 0);
  await s.createSnapshot(280, cs, Buffer.from("state@280"));
  t.is(readdirSync(join(dir, "snap")).length, 2, "keeps the newest two snapshot files");
  await s.close();

  const r = await reopen(dir, 2048);
  t.is(r.openReport.snapshotIndex, 280);
  t.deepEqual(r.snapshot(), { metadata: { index: 280, term: 1, confState: cs }, data: new Uint8Array(Buffer.from("state@280")) });
  t.is(r.firstIndex(), 281);
  t.deepEqual(r.entries(281, 301, Infinity), entries(281, 300));
  t.deepEqual(r.initialState(), { hardState: { term: 1, vote: 1, commit: 300 }, confState: cs });
  await r.close();
});

test("a snapshot from the leader replaces the log, durably", async (t) => {
  const dir = tempDir(t);
  const s = await reopen(dir);
  await s.save({ entries: entries(1, 20, 1), hardState: { term: 1, vote: 1, commit: 5 } });
  const snap = { metadata: { index: 50, term: 3, confState: cs }, data: Uint8Array.of(5, 0) };
  const p1 = s.save({ snapshot: snap, hardState: { term: 3, vote: 0, commit: 50 }, mustSync: true });
  const p2 = s.save({ entries: entries(51, 55, 3), hardState: { term: 3, vote: 0, commit: 52 } });
  await Promise.all([p1, p2]);
  t.is(s.firstIndex(), 51);
  t.is(s.lastIndex(), 55);
  await s.close();
  const r = await reopen(dir);
  t.deepEqual(r.snapshot(), snap);
  t.is(r.firstIndex(), 51);
  t.deepEqual(r.entries(51, 56, Infinity), entries(51, 55, 3));
  t.deepEqual(r.initialState().hardState, { term: 3, vote: 0, commit: 52 });
  await t.throwsAsync(r.saveSnapshot(snap), { instanceOf: InvalidSaveError, message: /not newer/ });
  t.is(r.lastIndex(), 55);
  await r.close();
});

test("after a failed write every later save is refused and memory is untouched", async (t) => {
  const dir = tempDir(t);
  const s = await reopen(dir);
  await s.save({ entries: entries(1, 3) });
  // Inject an I/O failure: close the segment's file handle underneath the WAL.
  await (s as unknown as { wal: { fh: { close(): Promise<void> } } }).wal.fh.close();
  await t.throwsAsync(s.save({ entries: entries(4, 5) }), { instanceOf: StorageFailedError, message: /WAL write failed/ });
  await t.throwsAsync(s.save({ entries: entries(4, 5) }), { instanceOf: StorageFailedError });
  t.is(s.lastIndex(), 3);
  await s.close();
  const r = await reopen(dir);
  t.deepEqual(r.entries(1, 4, Infinity), entries(1, 3));
  await r.close();
});
