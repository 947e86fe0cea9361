import { appendFileSync, readFileSync, readdirSync, truncateSync, unlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import test, { type ExecutionContext } from "ava";
import { DiskStorage, WalCorruptError, WalInconsistentError } from "../../node/storage/index.js";
import { RecordType, frameRecord } from "../../node/storage/codec.js";
import { SnapshotKind, Snapshotter } from "../../node/storage/snapshotter.js";
import { entries, quiet, recordingLogger, tempDir } from "./helpers.js";

const cs = { voters: [1, 2, 3], learners: [] };

/** Start offsets of the framed records in a segment file. */
function recordOffsets(buf: Buffer): number[] {
  const out: number[] = [];
  for (let off = 0; off < buf.length; off += 8 + buf.readUInt32LE(off)) out.push(off);
  return out;
}

async function writeLog(dir: string, last: number, segmentBytes = 64 * 1024 * 1024): Promise<string[]> {
  const s = await DiskStorage.open(dir, { logger: quiet, segmentBytes });
  for (let i = 1; i <= last; i += 5) {
    await s.save({ entries: entries(i, Math.min(i + 4, last)), hardState: { term: 1, vote: 1, commit: i } });
  }
  const segs = s.walSegments().map((n) => join(dir, "wal", n));
  await s.close();
  return segs;
}

test("a partial record at the end of the last segment is truncated and the log stays usable", async (t) => {
  const dir = tempDir(t);
  const [seg] = await writeLog(dir, 30);
  const clean = readFileSync(seg!);
  const lastRecord = clean.subarray(recordOffsets(clean).at(-1)!);
  appendFileSync(seg!, lastRecord.subarray(0, 11)); // a torn write of a copy of a record
  const log = recordingLogger();
  const s = await DiskStorage.open(dir, { logger: log });
  t.is(s.openReport.truncatedBytes, 11);
  t.regex(log.messages.join("\n"), /torn WAL tail of 11 bytes/);
  t.deepEqual(readFileSync(seg!), clean, "file truncated back to its last complete record");
  t.deepEqual(s.entries(1, 31, Infinity), entries(1, 30));
  await s.save({ entries: entries(31, 31) });
  await s.close();
  const r = await DiskStorage.open(dir, { logger: quiet });
  t.is(r.openReport.truncatedBytes, 0);
  t.deepEqual(r.entries(1, 32, Infinity), entries(1, 31));
  await r.close();
});

test("zero fill and a cut-short last record at the tail are torn tails", async (t) => {
  const dir = tempDir(t);
  const [seg] = await writeLog(dir, 30);
  const size = readFileSync(seg!).length;
  truncateSync(seg!, size - 10); // the last record (a hard state, 33 bytes) loses its last 10 bytes
  appendFileSync(seg!, Buffer.alloc(4096));
  const s = await DiskStorage.open(dir, { logger: quiet });
  t.is(s.openReport.truncatedBytes, 33 - 10 + 4096);
  t.deepEqual(s.entries(1, 31, Infinity), entries(1, 30));
  t.deepEqual(s.initialState().hardState, { term: 1, vote: 1, commit: 21 });
  await s.close();
});

test("a bit flipped in the middle of the last segment refuses to open, naming file and offset", async (t) => {
  const dir = tempDir(t);
  const [seg] = await writeLog(dir, 30);
  const buf = readFileSync(seg!);
  const victim = recordOffsets(buf)[10]!;
  buf[victim + 12]! ^= 0x04;
  writeFileSync(seg!, buf);
  const err = await t.throwsAsync(DiskStorage.open(dir, { logger: quiet }), { instanceOf: WalCorruptError });
  t.is(err?.file, seg!);
  t.is(err?.offset, victim);
  t.regex(err?.message ?? "", new RegExp(`${seg!}.*offset ${victim}.*CRC32C mismatch; valid records follow`));
  t.deepEqual(readFileSync(seg!), buf, "a refused WAL is not modified");
});

test("a damaged length field in the middle is corruption, not a torn tail", async (t) => {
  const dir = tempDir(t);
  const [seg] = await writeLog(dir, 30);
  const buf = readFileSync(seg!);
  const victim = recordOffsets(buf)[5]!;
  buf.writeUInt32LE(1_000_000, victim); // now runs past the end of the file
  writeFileSync(seg!, buf);
  const err = await t.throwsAsync(DiskStorage.open(dir, { logger: quiet }), { instanceOf: WalCorruptError });
  t.is(err?.offset, victim);
});

test("damage at the end of an earlier segment is corruption", async (t) => {
  const dir = tempDir(t);
  const segs = await writeLog(dir, 200, 2048);
  t.true(segs.length >= 3);
  const first = segs[0]!;
  const buf = readFileSync(first);
  const lastOff = recordOffsets(buf).at(-1)!;
  truncateSync(first, buf.length - 2);
  const err = await t.throwsAsync(DiskStorage.open(dir, { logger: quiet }), { instanceOf: WalCorruptError });
  t.is(err?.file, first);
  t.is(err?.offset, lastOff);
  t.regex(err?.message ?? "", /not the last segment/);
});

test("a missing segment in the middle is refused", async (t) => {
  const dir = tempDir(t);
  const segs = await writeLog(dir, 200, 2048);
  unlinkSync(segs[1]!);
  await t.throwsAsync(DiskStorage.open(dir, { logger: quiet }), { instanceOf: WalInconsistentError, message: /segment missing/ });
});

test("a last segment created but never written (crash during rotation) is removed", async (t) => {
  const dir = tempDir(t);
  const segs = await writeLog(dir, 200, 2048);
  const name = segs.at(-1)!.split("/").at(-1)!;
  const nextSeq = (parseInt(name.slice(0, 16), 16) + 1).toString(16).padStart(16, "0");
  const orphan = join(dir, "wal", `${nextSeq}-${"f".padStart(16, "0")}.wal`);
  writeFileSync(orphan, Buffer.alloc(0));
  const s = await DiskStorage.open(dir, { logger: quiet, segmentBytes: 2048 });
  t.false(readdirSync(join(dir, "wal")).includes(orphan.split("/").at(-1)!));
  t.deepEqual(s.entries(1, 201, Infinity), entries(1, 200));
  await s.save({ entries: entries(201, 260) });
  await s.close();
  const r = await DiskStorage.open(dir, { logger: quiet, segmentBytes: 2048 });
  t.is(r.lastIndex(), 260);
  await r.close();
});

test("a corrupt newest snapshot falls back to the older one and the WAL fills the gap", async (t) => {
  const dir = tempDir(t);
  const s = await DiskStorage.open(dir, { logger: quiet, segmentBytes: 2048 });
  await s.save({ entries: entries(1, 300), hardState: { term: 1, vote: 1, commit: 300 } });
  await s.createSnapshot(100, cs, Buffer.from("at 100"));
  await s.createSnapshot(200, cs, Buffer.from("at 200"));
  await s.close();
  const snapDir = join(dir, "snap");
  const newest = readdirSync(snapDir).sort().at(-1)!;
  const path = join(snapDir, newest);
  const buf = readFileSync(path);
  buf[buf.length - 40]! ^= 0x01;
  writeFileSync(path, buf);
  const log = recordingLogger();
  const r = await DiskStorage.open(dir, { logger: log, segmentBytes: 2048 });
  t.is(r.openReport.snapshotIndex, 100);
  t.deepEqual(r.snapshot().data, new Uint8Array(Buffer.from("at 100")));
  t.deepEqual(r.entries(101, 301, Infinity), entries(101, 300));
  t.regex(log.messages.join("\n"), /snapshot corrupt: .*SHA-256 mismatch/);
  t.true(readdirSync(snapDir).includes(`${newest}.corrupt`));
  await r.close();
});

test("a snapshot installed from the leader whose WAL marker was lost in a crash still resets the log", async (t) => {
  const dir = tempDir(t);
  await writeLog(dir, 40);
  // The crash window: the snapshot file is durable, the WAL marker is not.
  const snap = { metadata: { index: 90, term: 4, confState: cs }, data: Uint8Array.of(9) };
  await new Snapshotter(join(dir, "snap"), quiet.warn).save(snap, SnapshotKind.Installed);
  const s = await DiskStorage.open(dir, { logger: quiet });
  t.deepEqual(s.snapshot(), snap);
  t.is(s.firstIndex(), 91);
  t.is(s.lastIndex(), 90, "entries written before the install are gone");
  t.deepEqual(s.initialState().hardState, { term: 4, vote: 0, commit: 90 }, "hard state raised to cover the snapshot");
  await s.close();
});

test("a corrupt installed snapshot that the log cannot replace is refused", async (t) => {
  const dir = tempDir(t);
  const s = await DiskStorage.open(dir, { logger: quiet });
  await s.save({ entries: entries(1, 10) });
  await s.saveSnapshot({ metadata: { index: 500, term: 3, confState: cs }, data: Uint8Array.of(1) });
  await s.save({ entries: entries(501, 510, 3) });
  await s.close();
  const snapDir = join(dir, "snap");
  const file = join(snapDir, readdirSync(snapDir)[0]!);
  const buf = readFileSync(file);
  buf[10]! ^= 0xff;
  writeFileSync(file, buf);
  await t.throwsAsync(DiskStorage.open(dir, { logger: quiet }), {
    instanceOf: WalInconsistentError,
    message: /snapshot installed at index 500 term 3/,
  });
});

test("a record with a valid checksum but an undecodable payload is refused", async (t) => {
  const dir = tempDir(t);
  const [seg] = await writeLog(dir, 10);
  const offset = readFileSync(seg!).length;
  appendFileSync(seg!, frameRecord(RecordType.Entry, new Uint8Array(3)));
  const err = await t.throwsAsync(DiskStorage.open(dir, { logger: quiet }), { instanceOf: WalCorruptError, message: /undecodable/ });
  t.is(err?.offset, offset);
});

/** A data dir holding a snapshot at 10 and no WAL segment. */
async function snapshotWithoutWal(t: ExecutionContext): Promise<string> {
  const dir = tempDir(t);
  const s = await DiskStorage.open(dir, { logger: quiet });
  await s.save({ entries: entries(1, 10), hardState: { term: 2, vote: 1, commit: 10 } });
  await s.createSnapshot(10, cs, Uint8Array.of(1));
  await s.close();
  for (const f of readdirSync(join(dir, "wal"))) unlinkSync(join(dir, "wal", f));
  return dir;
}

test("snapshots without a WAL are refused (the hard state would be lost)", async (t) => {
  const dir = await snapshotWithoutWal(t);
  await t.throwsAsync(DiskStorage.open(dir, { logger: quiet }), { instanceOf: WalInconsistentError, message: /hard state is lost/ });
});

test("a corrupt snapshot without a WAL is refused too, and stays refused once renamed .corrupt (not opened as a new, empty member)", async (t) => {
  const dir = await snapshotWithoutWal(t);
  const [snap] = readdirSync(join(dir, "snap")).filter((f) => f.endsWith(".snap"));
  const path = join(dir, "snap", snap!);
  const bytes = readFileSync(path);
  bytes[bytes.length - 1]! ^= 0xff;
  writeFileSync(path, bytes);
  for (let open = 0; open < 2; open++) {
    await t.throwsAsync(DiskStorage.open(dir, { logger: quiet }), { instanceOf: WalInconsistentError, message: /hard state is lost/ }, `open ${open + 1}`);
  }
  t.deepEqual(readdirSync(join(dir, "snap")).filter((f) => f.endsWith(".corrupt")), [`${snap}.corrupt`]);
});

test("a corrupt installed snapshot is replaced by the log when the log still covers it", async (t) => {
  const dir = tempDir(t);
  const s = await DiskStorage.open(dir, { logger: quiet });
  await s.save({ entries: entries(1, 60, 1), hardState: { term: 1, vote: 1, commit: 60 } });
  await s.createSnapshot(10, cs, Uint8Array.of(10));
  await s.saveSnapshot({ metadata: { index: 50, term: 1, confState: cs }, data: Uint8Array.of(50) });
  await s.save({ entries: entries(51, 55, 2), hardState: { term: 2, vote: 0, commit: 55 } });
  await s.close();
  const snapDir = join(dir, "snap");
  const newest = join(snapDir, readdirSync(snapDir).sort().at(-1)!);
  const buf = readFileSync(newest);
  buf[buf.length - 1]! ^= 0x80;
  writeFileSync(newest, buf);
  const r = await DiskStorage.open(dir, { logger: quiet });
  t.is(r.openReport.snapshotIndex, 10);
  t.deepEqual(r.entries(11, 56, Infinity), [...entries(11, 50, 1), ...entries(51, 55, 2)]);
  t.deepEqual(r.initialState().hardState, { term: 2, vote: 0, commit: 55 });
  await r.close();
});
