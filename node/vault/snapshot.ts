// The canonical snapshot of the vault state (docs/vault.md §4).
//
//   "bkvV" || u8 format (3) || lp16(cluster id) || u64 applied index || u32 request-id capacity
//   || lp16(cluster CA certificate, DER; empty: none; format 3 only)
//   || u32 record count || records, ascending by user id (UTF-8 bytes)
//   || u32 node count   || nodes, ascending by node id
//   || u32 request count || request entries, oldest first (FIFO order)
//   || SHA-256 of everything before (32)
//
//   record:  u8 state (0 active, 1 locked) || u8 attempts || u16 pending count
//            || pending × (u64 attempt id || B (33)) || record digest (32)
//            || u64 confirmed at (log index of the last confirmation; format 2 only)
//            || u32 length || body: active = record encoding v1 (with shares);
//               locked = wiped body (no shares, see writeWiped)
//   node:    u64 node id || lp16(address) || agreement key (65) || identity key (65) || signature (64)
//            || lp16(certificate, DER) || lp16(certificate signature) (format 3 only;
//               both empty for an announcement without certificate, kind 5)
//   request: request id (16) || fingerprint (32) || lp16(outcome, result.ts encoding)
//
// Equal states give equal bytes on every node; restore re-validates every
// field and invariant, so a snapshot that passes the checksum but was forged
// or produced by a bug is still refused. The checksum is also the state
// digest (digest.ts streams the same body into SHA-256).
//
// Formats 1 (before records kept their last confirmation index: confirmed
// at = 0) and 2 (before the cluster CA and certified announcements: no CA,
// no certificates) still decode; they are never written.
import { createHash } from "node:crypto";
import {
  COMPRESSED_POINT_LENGTH,
  DIGEST_LENGTH,
  ProtocolError,
  Reader,
  UnsupportedVersionError,
  Writer,
  decodePoint,
  decodeRecord,
  decodeWipedRecord,
  encodeWipedRecord,
  equalBytes,
  validateCaCertificate,
} from "../../proto/crypto/index.js";
import { REQUEST_ID_LENGTH, type NodeAnnouncement, readAnnouncement, readSafeU64, validateAnnouncement, writeAnnouncementFields } from "./commands.js";
import { FINGERPRINT_LENGTH, RequestTable } from "./dedupe.js";
import { decodeResult } from "./result.js";
import { type PendingAttempt, type StoredRecord, assertStoredRecord } from "./records.js";
import { announcementRefusal } from "./nodes.js";
import { CorruptSnapshotError, VaultInvariantError } from "./errors.js";

export const SNAPSHOT_MAGIC = Uint8Array.of(0x62, 0x6b, 0x76, 0x56); // "bkvV"
export const SNAPSHOT_FORMAT_VERSION = 3;
/** Format 1 records lack `confirmed at`; formats 1 and 2 lack the CA and node certificates. */
const SNAPSHOT_FORMATS = new Set([1, 2, SNAPSHOT_FORMAT_VERSION]);
const HEADER_LENGTH = SNAPSHOT_MAGIC.length + 1;

export interface VaultState {
  readonly clusterId: string;
  /** The cluster CA certificate (DER), fixed by the bootstrap snapshot; null in clusters bootstrapped before it. */
  readonly clusterCa: Uint8Array | null;
  appliedIndex: number;
  readonly records: Map<string, StoredRecord>;
  readonly nodes: Map<number, NodeAnnouncement>;
  readonly requests: RequestTable;
}

export function encodeSnapshot(s: VaultState): Uint8Array {
  const w = new Writer();
  const h = createHash("sha256");
  for (const piece of snapshotBody(s)) {
    w.fixed(piece);
    h.update(piece);
  }
  return w.fixed(h.digest()).bytes();
}

/**
 * The snapshot body (everything before the checksum) as consecutive pieces:
 * the header, then one piece per record, node and request entry, and the
 * counts. Concatenated, they are the canonical encoding of the state.
 */
export function* snapshotBody(s: VaultState): Generator<Uint8Array> {
  const head = new Writer().fixed(SNAPSHOT_MAGIC).u8(SNAPSHOT_FORMAT_VERSION).str(s.clusterId).u64(s.appliedIndex).u32(s.requests.capacity);
  yield head.lp16(s.clusterCa ?? new Uint8Array(0)).u32(s.records.size).bytes();
  for (const r of recordsInOrder(s.records)) {
    const w = new Writer();
    writeRecord(w, r);
    yield w.bytes();
  }
  const nodes = [...s.nodes.values()].sort((a, b) => a.nodeId - b.nodeId);
  yield new Writer().u32(nodes.length).bytes();
  for (const n of nodes) {
    const w = new Writer();
    writeNode(w, n);
    yield w.bytes();
  }
  yield new Writer().u32(s.requests.size).bytes();
  for (const e of s.requests.list()) yield new Writer().fixed(e.requestId).fixed(e.fingerprint).lp16(e.outcome).bytes();
}

/** Records ascending by the UTF-8 bytes of their user id (user ids are well-formed: validated on apply and restore). */
function recordsInOrder(records: ReadonlyMap<string, StoredRecord>): StoredRecord[] {
  const keyed = [...records.values()].map((r) => ({ r, key: Buffer.from(r.record.user, "utf8") }));
  keyed.sort((x, y) => Buffer.compare(x.key, y.key));
  return keyed.map((k) => k.r);
}

function writeRecord(w: Writer, s: StoredRecord): void {
  w.u8(s.locked ? 1 : 0).u8(s.attempts).u16(s.pending.length);
  for (const p of s.pending) w.u64(p.attemptId).fixed(p.blinded);
  w.fixed(s.digest).u64(s.confirmedAt);
  const body = s.encoded ?? encodeWipedRecord(s.record);
  w.u32(body.length).fixed(body);
}


function writeNode(w: Writer, n: NodeAnnouncement): void {
  const none = new Uint8Array(0);
  writeAnnouncementFields(w, n).lp16(n.certified?.certificate ?? none).lp16(n.certified?.signature ?? none);
}

/** Parses and fully validates a snapshot. Throws CorruptSnapshotError or UnsupportedVersionError. */
export function decodeSnapshot(clusterId: string, data: Uint8Array): VaultState {
  checkFrame(data);
  try {
    return readState(clusterId, new Reader(data.subarray(0, data.length - DIGEST_LENGTH), "vault snapshot"));
  } catch (err) {
    if (err instanceof CorruptSnapshotError) throw err;
    if (err instanceof ProtocolError || err instanceof VaultInvariantError) throw new CorruptSnapshotError(err.message);
    throw err;
  }
}

function checkFrame(data: Uint8Array): void {
  if (!(data instanceof Uint8Array) || data.length < HEADER_LENGTH + DIGEST_LENGTH) throw new CorruptSnapshotError(`truncated (${data?.length ?? 0} bytes)`);
  if (!equalBytes(data.subarray(0, SNAPSHOT_MAGIC.length), SNAPSHOT_MAGIC)) throw new CorruptSnapshotError("not a vault snapshot (bad magic)");
  const format = data[SNAPSHOT_MAGIC.length] ?? 0;
  if (!SNAPSHOT_FORMATS.has(format)) throw new UnsupportedVersionError("vault snapshot", format);
  const body = data.subarray(0, data.length - DIGEST_LENGTH);
  if (!equalBytes(createHash("sha256").update(body).digest(), data.subarray(data.length - DIGEST_LENGTH))) throw new CorruptSnapshotError("checksum mismatch (truncated or altered)");
}

function readState(clusterId: string, r: Reader): VaultState {
  const format = r.fixed(HEADER_LENGTH)[SNAPSHOT_MAGIC.length] ?? 0;
  const snapCluster = r.str();
  if (snapCluster !== clusterId) throw new CorruptSnapshotError(`it belongs to cluster ${JSON.stringify(snapCluster)}, not ${JSON.stringify(clusterId)}`);
  const appliedIndex = readSafeU64(r, "applied index");
  const requests = new RequestTable(r.u32());
  const clusterCa = format < 3 ? null : readCa(r);
  const state: VaultState = { clusterId, clusterCa, appliedIndex, records: new Map(), nodes: new Map(), requests };
  readRecords(r, state, format);
  readNodes(r, state, format);
  readRequests(r, state);
  r.end();
  return state;
}

function readRecords(r: Reader, state: VaultState, format: number): void {
  let prev: Buffer | null = null;
  for (let i = r.u32(); i > 0; i--) {
    const s = readRecord(r, state.appliedIndex, format);
    const key = Buffer.from(s.record.user, "utf8");
    if (prev !== null && Buffer.compare(prev, key) >= 0) throw new CorruptSnapshotError("records are not in ascending user id order");
    prev = key;
    state.records.set(s.record.user, s);
  }
}

function readRecord(r: Reader, appliedIndex: number, format: number): StoredRecord {
  const state = r.u8();
  if (state > 1) throw new CorruptSnapshotError(`unknown record state ${state}`);
  const attempts = r.u8();
  const pending = readPending(r, r.u16(), appliedIndex);
  const digest = r.fixed(DIGEST_LENGTH);
  const confirmedAt = format === 1 ? 0 : readSafeU64(r, "confirmed at");
  if (confirmedAt > appliedIndex) throw new CorruptSnapshotError(`a confirmation at ${confirmedAt} is not an applied index`);
  const body = r.fixed(r.u32());
  const s: StoredRecord =
    state === 0
      ? { record: decodeRecord(body), digest, encoded: body, attempts, locked: false, pending, confirmedAt }
      : { record: decodeWipedRecord(body), digest, encoded: null, attempts, locked: true, pending, confirmedAt };
  if (s.encoded !== null && !equalBytes(createHash("sha256").update(s.encoded).digest(), digest)) throw new CorruptSnapshotError(`record ${JSON.stringify(s.record.user)} does not match its digest`);
  assertStoredRecord(s);
  return s;
}

function readPending(r: Reader, count: number, appliedIndex: number): PendingAttempt[] {
  const out: PendingAttempt[] = [];
  for (let i = 0; i < count; i++) {
    const attemptId = readSafeU64(r, "attempt id");
    const blinded = r.fixed(COMPRESSED_POINT_LENGTH);
    decodePoint(blinded, "pending B");
    if (attemptId < 1 || attemptId > appliedIndex) throw new CorruptSnapshotError(`pending attempt ${attemptId} is not an applied index`);
    out.push({ attemptId, blinded });
  }
  return out;
}


function readCa(r: Reader): Uint8Array | null {
  const der = r.lp16();
  if (der.length === 0) return null;
  validateCaCertificate(der);
  return der;
}

/** Each node entry must pass the checks apply made (announcementRefusal), against the snapshot's own CA. */
function readNodes(r: Reader, state: VaultState, format: number): void {
  let prev = 0;
  for (let i = r.u32(); i > 0; i--) {
    const n = readAnnouncement(r);
    if (format >= 3) {
      const [certificate, signature] = [r.lp16(), r.lp16()];
      if (certificate.length + signature.length > 0) n.certified = { certificate, signature };
    }
    validateAnnouncement(n);
    if (n.nodeId <= prev) throw new CorruptSnapshotError("nodes are not in ascending id order");
    const refused = announcementRefusal(state.clusterId, state.clusterCa, n);
    if (refused !== undefined) throw new CorruptSnapshotError(`node ${n.nodeId}'s announcement does not verify: ${refused.message}`);
    prev = n.nodeId;
    state.nodes.set(n.nodeId, n);
  }
}

function readRequests(r: Reader, state: VaultState): void {
  const count = r.u32();
  if (count > state.requests.capacity) throw new CorruptSnapshotError(`${count} request ids exceed the capacity ${state.requests.capacity}`);
  // The table is the last section. It is copied once, and its entries are
  // views of that copy: one allocation instead of three per entry (a third
  // of the restore time with 100,000 ids). The copy lives until its last
  // entry is evicted: at most the size of the table section again.
  const table = new Reader(r.fixed(r.remaining), "vault snapshot request table");
  for (let i = 0; i < count; i++) {
    const entry = { requestId: table.view(REQUEST_ID_LENGTH), fingerprint: table.view(FINGERPRINT_LENGTH), outcome: table.view(table.u16()) };
    decodeResult(entry.outcome);
    state.requests.add(entry);
  }
  table.end();
}
