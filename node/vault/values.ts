// Encodings of the store's values (docs/vault.md §4), shared by the store
// layout and the legacy snapshot formats 1-3 (snapshot.ts):
//
//   record:  u8 state (0 active, 1 locked) || u8 attempts || u16 pending count
//            || pending × (u64 attempt id || B (33)) || record digest (32)
//            || u64 confirmed at (log index of the last confirmation; absent in format 1)
//            || u64 last begin at (leader time of the last counted begin, unix ms;
//               store values only: absent in the legacy formats 1-3)
//            || u32 length || body: active = record encoding v1 (with shares);
//               locked = wiped body (no shares, see encodeWipedRecord)
//   node:    u64 node id || lp16(address) || agreement key (65) || identity key (65) || signature (64)
//            || lp16(certificate, DER) || lp16(certificate signature) (absent before format 3;
//               both empty for an announcement without certificate, kind 5)
//
// Decoding checks the layout, the record digest (SHA-256 of the body) and
// every invariant of a stored record; a value that breaks one is refused
// (CorruptSnapshotError), never installed. The field values of a record body
// (curve points, ranges) are not decoded again (parseTrustedRecord): every
// node validated them when it applied the registration, and the digest and
// the snapshot checksum catch corruption since. A node that forges a
// snapshot can forge valid points as easily (docs/threat-model.md). The
// pending attempts' B are not decoded when a node reads its own store
// ("trusted": a node decoded each B when it applied the begin, and installs
// an imported snapshot only once `t` other nodes vouch for its digest, which
// makes it an honest node's store, docs/storage.md; a begin decoded every
// pending B of its record again, up to 255, issue 15).
import { createHash } from "node:crypto";
import {
  COMPRESSED_POINT_LENGTH,
  DIGEST_LENGTH,
  ProtocolError,
  Reader,
  Writer,
  decodePoint,
  parseTrustedRecord,
  decodeWipedRecord,
  encodeWipedRecord,
  equalBytes,
} from "../../proto/crypto/index.js";
import { type NodeAnnouncement, readAnnouncement, readSafeU64, validateAnnouncement, writeAnnouncementFields } from "./commands.js";
import { type PendingAttempt, type StoredRecord, assertStoredRecord } from "./records.js";
import { announcementRefusal } from "./nodes.js";
import { CorruptSnapshotError, VaultInvariantError } from "./errors.js";

export function writeRecord(w: Writer, s: StoredRecord): Writer {
  w.u8(s.locked ? 1 : 0).u8(s.attempts).u16(s.pending.length);
  for (const p of s.pending) w.u64(p.attemptId).fixed(p.blinded);
  w.fixed(s.digest).u64(s.confirmedAt).u64(s.lastBeginAt);
  const body = s.encoded ?? encodeWipedRecord(s.record);
  return w.u32(body.length).fixed(body);
}

export function encodeStoredRecord(s: StoredRecord): Uint8Array {
  const body = (s.encoded ?? encodeWipedRecord(s.record)).length; // a wiped body is encoded twice: locked records only
  const length = 4 + s.pending.length * (8 + COMPRESSED_POINT_LENGTH) + DIGEST_LENGTH + 8 + 8 + 4 + body;
  return writeRecord(new Writer("big-endian", length), s).bytes(); // exactly sized: no regrowth, no slack kept in the store
}

/**
 * A stored record value; `appliedIndex` bounds its attempt ids and
 * confirmation. `points` "trusted": the pending B are not decoded (this
 * node's own store, whose B were decoded on the way in).
 */
export function decodeStoredRecord(bytes: Uint8Array, appliedIndex: number, points: "check" | "trusted" = "check"): StoredRecord {
  return corruptOnError(() => {
    const r = new Reader(bytes, "stored record");
    const s = readRecord(r, appliedIndex, "store", points);
    r.end();
    return s;
  });
}

/** The fields of a stored record that only move forward along one history (rollback.ts). */
export interface RecordCounters {
  readonly locked: boolean;
  readonly attempts: number;
  /** The record digest: which registration this is. */
  readonly digest: Uint8Array;
  readonly confirmedAt: number;
  readonly lastBeginAt: number;
}

/** A store-layout record value's counters, read without its body or pending points (the value was checked when stored). */
export function recordCounters(bytes: Uint8Array): RecordCounters {
  return corruptOnError(() => {
    const r = new Reader(bytes, "stored record");
    const locked = r.u8() === 1;
    const attempts = r.u8();
    r.fixed(r.u16() * (8 + COMPRESSED_POINT_LENGTH));
    const digest = r.fixed(DIGEST_LENGTH);
    return { locked, attempts, digest, confirmedAt: readSafeU64(r, "confirmed at"), lastBeginAt: readSafeU64(r, "last begin at") };
  });
}

/** The body (record encoding v1, with its shares) of a store-layout record value, read without decoding it; null for a locked record (its shares are wiped). */
export function recordBody(bytes: Uint8Array): Uint8Array | null {
  return corruptOnError(() => {
    const r = new Reader(bytes, "stored record");
    if (r.u8() === 1) return null;
    r.u8();
    r.fixed(r.u16() * (8 + COMPRESSED_POINT_LENGTH) + DIGEST_LENGTH + 8 + 8);
    return r.fixed(r.u32());
  });
}

/** One record, as the store holds it or as a legacy snapshot format (1: no confirmed at; 2, 3: no last begin). */
export function readRecord(r: Reader, appliedIndex: number, layout: "store" | 1 | 2 | 3, points: "check" | "trusted" = "check"): StoredRecord {
  const state = r.u8();
  if (state > 1) throw new CorruptSnapshotError(`unknown record state ${state}`);
  const attempts = r.u8();
  const pending = readPending(r, r.u16(), appliedIndex, points);
  const digest = r.fixed(DIGEST_LENGTH);
  const confirmedAt = layout === 1 ? 0 : readSafeU64(r, "confirmed at");
  if (confirmedAt > appliedIndex) throw new CorruptSnapshotError(`a confirmation at ${confirmedAt} is not an applied index`);
  const lastBeginAt = layout === "store" ? readSafeU64(r, "last begin at") : 0;
  const body = r.fixed(r.u32());
  const s: StoredRecord =
    state === 0
      ? { record: parseTrustedRecord(body), digest, encoded: body, attempts, locked: false, pending, confirmedAt, lastBeginAt }
      : { record: decodeWipedRecord(body), digest, encoded: null, attempts, locked: true, pending, confirmedAt, lastBeginAt };
  if (s.encoded !== null && !equalBytes(createHash("sha256").update(s.encoded).digest(), digest)) throw new CorruptSnapshotError(`record ${JSON.stringify(s.record.user)} does not match its digest`);
  assertStoredRecord(s);
  return s;
}

function readPending(r: Reader, count: number, appliedIndex: number, points: "check" | "trusted"): PendingAttempt[] {
  const out: PendingAttempt[] = [];
  for (let i = 0; i < count; i++) {
    const attemptId = readSafeU64(r, "attempt id");
    const blinded = r.fixed(COMPRESSED_POINT_LENGTH);
    if (points === "check") decodePoint(blinded, "pending B");
    if (attemptId < 1 || attemptId > appliedIndex) throw new CorruptSnapshotError(`pending attempt ${attemptId} is not an applied index`);
    out.push({ attemptId, blinded });
  }
  return out;
}

export function writeNode(w: Writer, n: NodeAnnouncement): Writer {
  const none = new Uint8Array(0);
  return writeAnnouncementFields(w, n).lp16(n.certified?.certificate ?? none).lp16(n.certified?.signature ?? none);
}

export function encodeNode(n: NodeAnnouncement): Uint8Array {
  return writeNode(new Writer(), n).bytes();
}

/** A node value, checked as apply checked it (announcementRefusal against the state's CA). */
export function decodeNode(bytes: Uint8Array, clusterId: string, ca: Uint8Array | null): NodeAnnouncement {
  return corruptOnError(() => {
    const r = new Reader(bytes, "node announcement");
    const n = readNode(r, clusterId, ca, true);
    r.end();
    return n;
  });
}

/** One node; `withCertificate` false before snapshot format 3. */
export function readNode(r: Reader, clusterId: string, ca: Uint8Array | null, withCertificate: boolean): NodeAnnouncement {
  const n = readAnnouncement(r);
  if (withCertificate) {
    const [certificate, signature] = [r.lp16(), r.lp16()];
    if (certificate.length + signature.length > 0) n.certified = { certificate, signature };
  }
  validateAnnouncement(n);
  const refused = announcementRefusal(clusterId, ca, n);
  if (refused !== undefined) throw new CorruptSnapshotError(`node ${n.nodeId}'s announcement does not verify: ${refused.message}`);
  return n;
}

/** Runs a decoder; a malformed value becomes CorruptSnapshotError. */
export function corruptOnError<T>(f: () => T): T {
  try {
    return f();
  } catch (err) {
    if (err instanceof CorruptSnapshotError) throw err;
    if (err instanceof ProtocolError || err instanceof VaultInvariantError) throw new CorruptSnapshotError(err.message);
    throw err;
  }
}
