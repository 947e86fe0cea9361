import test from "ava";
import { create, fromBinary, toBinary, type MessageInitShape } from "@bufbuild/protobuf";
import { fromWire, isWireType, MalformedMessage, toWire } from "../../node/transport/convert.js";
import { MessageType, message, type Message } from "../../node/raft/types.js";
import {
  RaftMessageSchema, RaftMessageType, RaftEntryType, RaftSnapshotChunkSchema, RaftEntrySchema,
  RaftSnapshotMetadataSchema, RaftConfStateSchema, type RaftMessage,
} from "../../proto/gen/bkv/v1/raft_pb.js";
import { everyWireMessage } from "./helpers.js";

const viaBytes = (m: Message): RaftMessage => fromBinary(RaftMessageSchema, toBinary(RaftMessageSchema, toWire(m)));

test("every wire message type survives encode, serialize, parse, decode unchanged", (t) => {
  const all = everyWireMessage(1, 2);
  const types = new Set(all.map((m) => m.type));
  for (let ty = MessageType.Prop; ty <= MessageType.ReadIndexResp; ty++) t.true(types.has(ty), `type ${ty} covered`);
  for (const m of all) t.deepEqual(fromWire(viaBytes(m)), m);
});

test("numbers raft should never produce (negative, fractional, unsafe) are refused on the way out", (t) => {
  for (const term of [-1, 1.5, 2 ** 53, Number.NaN]) {
    t.throws(() => toWire(message({ type: MessageType.Heartbeat, from: 1, to: 2, term })), { instanceOf: RangeError });
  }
});

test("local message types are refused on the way out", (t) => {
  for (const type of [MessageType.Hup, MessageType.Beat, MessageType.Unreachable, MessageType.SnapStatus, MessageType.CheckQuorum]) {
    t.false(isWireType(type));
    t.throws(() => toWire(message({ type, from: 1, to: 2 })), { instanceOf: RangeError });
  }
});

function wire(fields: MessageInitShape<typeof RaftMessageSchema>): RaftMessage {
  return create(RaftMessageSchema, { type: RaftMessageType.HEARTBEAT, from: 1n, to: 2n, term: 1n, ...fields });
}

const chunk = (fields: object) => create(RaftSnapshotChunkSchema, {
  metadata: create(RaftSnapshotMetadataSchema, { index: 5n, term: 1n, confState: create(RaftConfStateSchema, { voters: [1n] }) }),
  totalSize: 10n, offset: 0n, data: new Uint8Array(4), ...fields,
});

const malformed: Array<[string, RaftMessage]> = [
  ["unspecified type", wire({ type: RaftMessageType.UNSPECIFIED })],
  ["a local type number", wire({ type: 1 as RaftMessageType })],
  ["a type past the last", wire({ type: 20 as RaftMessageType })],
  ["from 0", wire({ from: 0n })],
  ["to 0", wire({ to: 0n })],
  ["term above 2^53-1", wire({ term: 1n << 53n })],
  ["commit at 2^64-1", wire({ commit: (1n << 64n) - 1n })],
  ["entry of unspecified type", wire({ type: RaftMessageType.APP, entries: [create(RaftEntrySchema, { term: 1n, index: 1n })] })],
  ["entry of unknown type", wire({ type: RaftMessageType.APP, entries: [create(RaftEntrySchema, { term: 1n, index: 1n, type: 7 as RaftEntryType })] })],
  ["entry index above 2^53-1", wire({ type: RaftMessageType.APP, entries: [create(RaftEntrySchema, { index: 1n << 60n, type: RaftEntryType.NORMAL })] })],
  ["Snap without a chunk", wire({ type: RaftMessageType.SNAP })],
  ["a chunk on a non-Snap message", wire({ snapshot: chunk({}) })],
  ["a chunk without metadata", wire({ type: RaftMessageType.SNAP, snapshot: chunk({ metadata: undefined }) })],
  ["a chunk past the total size", wire({ type: RaftMessageType.SNAP, snapshot: chunk({ offset: 8n }) })],
  ["voter id 0", wire({ type: RaftMessageType.SNAP, snapshot: chunk({ metadata: create(RaftSnapshotMetadataSchema, { confState: create(RaftConfStateSchema, { voters: [0n] }) }) }) })],
];

for (const [name, w] of malformed) {
  test(`malformed wire message is rejected, not thrown: ${name}`, (t) => {
    const parsed = fromBinary(RaftMessageSchema, toBinary(RaftMessageSchema, w));
    t.true(fromWire(parsed) instanceof MalformedMessage);
  });
}

test("a well-formed heartbeat decodes (control for the malformed cases)", (t) => {
  t.deepEqual(fromWire(wire({})), message({ type: MessageType.Heartbeat, from: 1, to: 2, term: 1 }));
});
