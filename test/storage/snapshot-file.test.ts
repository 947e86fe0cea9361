import { createHash } from "node:crypto";
import test from "ava";
import { SnapshotKind, decodeSnapshotFile } from "../../node/storage/snapshotter.js";

// A snapshot file written by version 1, byte by byte: the layout on disk is
// fixed, so a change of codec must still read it (and refuse a damaged one).
const BODY_HEX =
  "42534e50" + // magic "BSNP" as u32 LE
  "0100" + // version 1
  "01" + // kind: Installed
  "0700000000000000" + // index 7
  "0200000000000000" + // term 2
  "02000000" + "0100000000000000" + "0200000000000000" + // 2 voters: 1, 2
  "01000000" + "0300000000000000" + // 1 learner: 3
  "0300000000000000" + "c0ffee"; // 3 data bytes

function file(bodyHex: string): Buffer {
  const body = Buffer.from(bodyHex, "hex");
  return Buffer.concat([body, createHash("sha256").update(body).digest()]);
}

test("a version 1 snapshot file decodes", (t) => {
  const s = decodeSnapshotFile(file(BODY_HEX), "x.snap");
  t.is(s.kind, SnapshotKind.Installed);
  t.deepEqual(s.snapshot.metadata, { index: 7, term: 2, confState: { voters: [1, 2], learners: [3] } });
  t.deepEqual([...s.snapshot.data], [0xc0, 0xff, 0xee]);
});

test("a snapshot file with a short data field or a trailing byte is corrupt", (t) => {
  t.throws(() => decodeSnapshotFile(file(BODY_HEX.slice(0, -2)), "x.snap"), { name: "SnapshotCorruptError" });
  t.throws(() => decodeSnapshotFile(file(BODY_HEX + "00"), "x.snap"), { name: "SnapshotCorruptError" });
});
