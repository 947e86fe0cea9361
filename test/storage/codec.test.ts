import test from "ava";
import { EntryType } from "../../node/raft/types.js";
import {
  ByteWriter,
  DecodeError,
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
} from "../../node/storage/codec.js";
import { crc32c } from "../../node/storage/crc32c.js";
import { EncodeError } from "../../node/storage/errors.js";

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
  t.throws(() => decodeHardState(hs.subarray(0, 23)), { instanceOf: DecodeError });
  t.throws(() => decodeHardState(Buffer.concat([hs, Buffer.of(0)])), { instanceOf: DecodeError });
  t.throws(() => decodeEntry(new Uint8Array(16)), { instanceOf: DecodeError });
  const badType = Buffer.from(encodeEntry({ term: 1, index: 1, type: EntryType.Normal, data: new Uint8Array(0) }));
  badType[16] = 9;
  t.throws(() => decodeEntry(badType), { instanceOf: DecodeError, message: /bad entry type 9/ });
  const huge = new ByteWriter(8).u32(0).u32(0x20_0000).finish();
  t.throws(() => decodeSnapshotMarker(Buffer.concat([huge, huge])), { instanceOf: DecodeError, message: /2\^53/ });
  const header = Buffer.from(encodeSegmentHeader({ seq: 0, firstIndex: 1 }));
  header[0] = 0;
  t.throws(() => decodeSegmentHeader(header), { instanceOf: DecodeError, message: /magic/ });
});

test("encoders refuse values outside the safe integer range", (t) => {
  t.throws(() => encodeHardState({ term: -1, vote: 0, commit: 0 }), { instanceOf: EncodeError });
  t.throws(() => encodeHardState({ term: 2 ** 53, vote: 0, commit: 0 }), { instanceOf: EncodeError });
  t.throws(() => encodeHardState({ term: 1.5, vote: 0, commit: 0 }), { instanceOf: EncodeError });
});

test("a frame is len | crc32c(type+payload) | type | payload", (t) => {
  const payload = Uint8Array.of(9, 8, 7);
  const f = frameRecord(RecordType.HardState, payload);
  t.is(f.length, FRAME_HEADER + 1 + payload.length);
  t.is(f.readUInt32LE(0), 1 + payload.length);
  t.is(f[FRAME_HEADER], RecordType.HardState);
  t.is(f.readUInt32LE(4), crc32c(f.subarray(FRAME_HEADER)));
});
