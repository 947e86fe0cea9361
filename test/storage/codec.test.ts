import test from "ava";
import { EntryType } from "../../node/raft/types.js";
import { InvalidArgumentError, InvalidEncodingError } from "../../proto/crypto/index.js";
import {
  FRAME_HEADER,
  RecordType,
  decodeEntry,
  decodeHardState,
  decodeSegmentHeader,
  decodeSnapshotMarker,
  encodeEntry,
  encodeHardState,
  encodeSegmentHeader,
  encodeSnapshotMarker,
  frameRecord,
  storageWriter,
} from "../../node/storage/codec.js";
import { crc32c } from "../../node/storage/crc32c.js";

test("entries, hard states, markers and headers round-trip", (t) => {
  const e = { term: 2 ** 40, index: 2 ** 53 - 1, type: EntryType.ConfChange, data: Uint8Array.of(1, 2, 3) };
  t.deepEqual(decodeEntry(encodeEntry(e)), e);
  const empty = { term: 1, index: 1, type: EntryType.Normal, data: new Uint8Array(0) };
  t.deepEqual(decodeEntry(encodeEntry(empty)), empty);
  const hs = { term: 7, vote: 3, commit: 99 };
  t.deepEqual(decodeHardState(encodeHardState(hs)), hs);
  t.deepEqual(decodeSnapshotMarker(encodeSnapshotMarker({ index: 5, term: 2 })), { index: 5, term: 2 });
  t.deepEqual(decodeSegmentHeader(encodeSegmentHeader({ seq: 4, firstIndex: 100 })), { seq: 4, firstIndex: 100 });
});

test("decoders refuse truncated, oversized and malformed payloads", (t) => {
  const hs = encodeHardState({ term: 1, vote: 1, commit: 1 });
  t.throws(() => decodeHardState(hs.subarray(0, 23)), { instanceOf: InvalidEncodingError });
  t.throws(() => decodeHardState(Buffer.concat([hs, Buffer.of(0)])), { instanceOf: InvalidEncodingError });
  t.throws(() => decodeEntry(new Uint8Array(16)), { instanceOf: InvalidEncodingError });
  const badType = Buffer.from(encodeEntry({ term: 1, index: 1, type: EntryType.Normal, data: new Uint8Array(0) }));
  badType[16] = 9;
  t.throws(() => decodeEntry(badType), { instanceOf: InvalidEncodingError, message: /bad entry type 9/ });
  const huge = storageWriter(8).u32(0).u32(0x20_0000).bytes();
  t.throws(() => decodeSnapshotMarker(Buffer.concat([huge, huge])), { instanceOf: InvalidEncodingError, message: /2\^53/ });
  const header = Buffer.from(encodeSegmentHeader({ seq: 0, firstIndex: 1 }));
  header[0] = 0;
  t.throws(() => decodeSegmentHeader(header), { instanceOf: InvalidEncodingError, message: /magic/ });
});

test("encoders refuse values outside the safe integer range", (t) => {
  t.throws(() => encodeHardState({ term: -1, vote: 0, commit: 0 }), { instanceOf: InvalidArgumentError });
  t.throws(() => encodeHardState({ term: 2 ** 53, vote: 0, commit: 0 }), { instanceOf: InvalidArgumentError });
  t.throws(() => encodeHardState({ term: 1.5, vote: 0, commit: 0 }), { instanceOf: InvalidArgumentError });
});

test("a frame is len | crc32c(type+payload) | type | payload", (t) => {
  const payload = Uint8Array.of(9, 8, 7);
  const f = frameRecord(RecordType.HardState, payload);
  t.is(f.length, FRAME_HEADER + 1 + payload.length);
  t.is(f.readUInt32LE(0), 1 + payload.length);
  t.is(f[FRAME_HEADER], RecordType.HardState);
  t.is(f.readUInt32LE(4), crc32c(f.subarray(FRAME_HEADER)));
});

// The on-disk layout is fixed: these bytes are what every WAL written since
// version 1 holds, so a change of codec must reproduce them exactly.
const hex = (b: Uint8Array): string => Buffer.from(b).toString("hex");

test("WAL payloads keep their little-endian byte layout (golden bytes)", (t) => {
  const entry = { term: 0x01_0203_0405, index: 6, type: EntryType.ConfChange, data: Uint8Array.of(0xaa, 0xbb) };
  const entryHex = "0504030201000000" + "0600000000000000" + "01" + "aabb";
  t.is(hex(encodeEntry(entry)), entryHex);
  t.deepEqual(decodeEntry(Buffer.from(entryHex, "hex")), entry);

  const hs = { term: 1, vote: 2, commit: 2 ** 40 };
  const hsHex = "0100000000000000" + "0200000000000000" + "0000000000010000";
  t.is(hex(encodeHardState(hs)), hsHex);
  t.deepEqual(decodeHardState(Buffer.from(hsHex, "hex")), hs);

  const markerHex = "0900000000000000" + "0300000000000000";
  t.is(hex(encodeSnapshotMarker({ index: 9, term: 3 })), markerHex);

  const headerHex = "4257414c" + "0100" + "0300000000000000" + "0001000000000000"; // "BWAL", v1, seq 3, first index 256
  t.is(hex(encodeSegmentHeader({ seq: 3, firstIndex: 256 })), headerHex);
  t.deepEqual(decodeSegmentHeader(Buffer.from(headerHex, "hex")), { seq: 3, firstIndex: 256 });
});
