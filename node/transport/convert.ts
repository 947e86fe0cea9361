// Conversion between raft's Message (node/raft/types.ts) and the wire's
// RaftMessage (proto/bkv/v1/raft.proto). Outbound conversion trusts raft;
// inbound conversion trusts nothing: every field is range-checked and a bad
// message becomes a MalformedMessage error, never an exception that escapes.

import { create } from "@bufbuild/protobuf";
import {
  type ConfState, type Entry, type Message, type SnapshotChunk, type SnapshotMetadata,
  EntryType, MessageType,
} from "../raft/index.js";
import {
  type RaftConfState, type RaftEntry, type RaftMessage, type RaftSnapshotChunk,
  type RaftSnapshotMetadata,
  RaftEntryType, RaftMessageSchema, RaftMessageType,
} from "../../proto/gen/bkv/v1/raft_pb.js";

/** A message from a peer that violates the wire contract. */
export class MalformedMessage extends Error {
  override name = "MalformedMessage";
}

/** The message types that travel between nodes; the others are local to a node. */
export function isWireType(t: MessageType): boolean {
  return t >= MessageType.Prop && t <= MessageType.ReadIndexResp;
}

function u64(n: number): bigint {
  if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`${n} is not a non-negative safe integer`);
  return BigInt(n);
}

/** Encodes a raft message for the wire. Contract: `isWireType(m.type)`. */
export function toWire(m: Message): RaftMessage {
  if (!isWireType(m.type)) throw new RangeError(`message type ${m.type} is local, not for the wire`);
  return create(RaftMessageSchema, {
    type: m.type as number as RaftMessageType,
    from: u64(m.from), to: u64(m.to), term: u64(m.term), logTerm: u64(m.logTerm),
    index: u64(m.index), entries: m.entries.map(entryToWire), commit: u64(m.commit),
    reject: m.reject, rejectHint: u64(m.rejectHint),
    snapshot: m.snapshot === null ? undefined : chunkToWire(m.snapshot),
    context: m.context,
  });
}

function entryToWire(e: Entry): RaftEntry {
  return { $typeName: "bkv.v1.RaftEntry", term: u64(e.term), index: u64(e.index), type: e.type + 1, data: e.data };
}

function chunkToWire(c: SnapshotChunk): RaftSnapshotChunk {
  return {
    $typeName: "bkv.v1.RaftSnapshotChunk", metadata: metadataToWire(c.metadata),
    totalSize: u64(c.totalSize), offset: u64(c.offset), data: c.data, done: c.done,
  };
}

function metadataToWire(md: SnapshotMetadata): RaftSnapshotMetadata {
  const confState: RaftConfState = {
    $typeName: "bkv.v1.RaftConfState",
    voters: md.confState.voters.map(u64), learners: md.confState.learners.map(u64),
  };
  return { $typeName: "bkv.v1.RaftSnapshotMetadata", index: u64(md.index), term: u64(md.term), confState };
}

/** Decodes a wire message, or explains why it is malformed. */
export function fromWire(w: RaftMessage): Message | MalformedMessage {
  try {
    return decodeMessage(w);
  } catch (err) {
    if (err instanceof MalformedMessage) return err;
    throw err;
  }
}

function decodeMessage(w: RaftMessage): Message {
  const type = w.type as number as MessageType;
  if (!isWireType(type)) throw new MalformedMessage(`message type ${w.type} is not a wire type`);
  if ((type === MessageType.Snap) !== (w.snapshot !== undefined)) {
    throw new MalformedMessage("a snapshot chunk must come with, and only with, a Snap message");
  }
  return {
    type, from: nodeId(w.from, "from"), to: nodeId(w.to, "to"),
    term: safe(w.term, "term"), logTerm: safe(w.logTerm, "logTerm"), index: safe(w.index, "index"),
    entries: w.entries.map(decodeEntry), commit: safe(w.commit, "commit"),
    reject: w.reject, rejectHint: safe(w.rejectHint, "rejectHint"),
    snapshot: w.snapshot === undefined ? null : decodeChunk(w.snapshot),
    context: w.context,
  };
}

function decodeEntry(e: RaftEntry): Entry {
  let type: EntryType;
  switch (e.type) {
    case RaftEntryType.NORMAL: type = EntryType.Normal; break;
    case RaftEntryType.CONF_CHANGE: type = EntryType.ConfChange; break;
    default: throw new MalformedMessage(`entry type ${e.type} is unknown`);
  }
  return { term: safe(e.term, "entry.term"), index: safe(e.index, "entry.index"), type, data: e.data };
}

function decodeChunk(c: RaftSnapshotChunk): SnapshotChunk {
  if (c.metadata === undefined) throw new MalformedMessage("snapshot chunk without metadata");
  const totalSize = safe(c.totalSize, "snapshot.totalSize");
  const offset = safe(c.offset, "snapshot.offset");
  if (offset + c.data.byteLength > totalSize) {
    throw new MalformedMessage("snapshot chunk extends past the snapshot's total size");
  }
  return { metadata: decodeMetadata(c.metadata), totalSize, offset, data: c.data, done: c.done };
}

function decodeMetadata(md: RaftSnapshotMetadata): SnapshotMetadata {
  const cs = md.confState;
  const confState: ConfState = {
    voters: (cs?.voters ?? []).map((v) => nodeId(v, "voter")),
    learners: (cs?.learners ?? []).map((v) => nodeId(v, "learner")),
  };
  return { index: safe(md.index, "snapshot.index"), term: safe(md.term, "snapshot.term"), confState };
}

const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

function safe(v: bigint, field: string): number {
  if (v > MAX_SAFE) throw new MalformedMessage(`${field} is above 2^53-1`);
  return Number(v);
}

function nodeId(v: bigint, field: string): number {
  if (v === 0n) throw new MalformedMessage(`${field} is not a node id (0)`);
  return safe(v, field);
}

/** Approximate encoded size of a wire message, for batch limits. */
export function wireSize(m: Message): number {
  let size = 64 + m.context.byteLength;
  for (const e of m.entries) size += e.data.byteLength + 24;
  if (m.snapshot !== null) {
    const cs = m.snapshot.metadata.confState;
    size += m.snapshot.data.byteLength + 48 + 10 * (cs.voters.length + cs.learners.length);
  }
  return size;
}
