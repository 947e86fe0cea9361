// Legacy vault snapshots, formats 1-3 (the release before the store, docs/
// vault.md §4): a whole-state encoding that is no longer written. A node
// upgraded from that release converts its snapshot into the store once
// (importLegacySnapshot), with the request-id capacity it had, so that every
// node keeps evicting alike, and without throttling (the release before had
// none; every converted node must decide alike).
//
//   "bkvV" || u8 format (1-3) || lp16(cluster id) || u64 applied index || u32 request-id capacity
//   || lp16(cluster CA certificate, DER; empty: none; format 3 only)
//   || u32 record count || records (values.ts), ascending by user id (UTF-8 bytes)
//   || u32 node count   || nodes (values.ts), ascending by node id
//   || u32 request count || request entries, oldest first (FIFO order)
//   || SHA-256 of everything before (32)
//   request: request id (16) || fingerprint (32) || lp16(outcome, result.ts encoding)
//
// Format 1 records lack `confirmed at` (0); formats 1 and 2 lack the CA and
// node certificates.
import { createHash } from "node:crypto";
import { DIGEST_LENGTH, Reader, UnsupportedVersionError, equalBytes, validateCaCertificate } from "../../proto/crypto/index.js";
import { REQUEST_ID_LENGTH, readSafeU64 } from "./commands.js";
import { FINGERPRINT_LENGTH, RequestTable } from "./dedupe.js";
import { decodeResult } from "./result.js";
import { SNAPSHOT_MAGIC } from "./snapshot-stream.js";
import { StoreState } from "./state.js";
import { NO_THROTTLE } from "./throttle.js";
import type { VaultStore } from "./store.js";
import { corruptOnError, readNode, readRecord } from "./values.js";
import { CorruptSnapshotError } from "./errors.js";

const LEGACY_FORMATS = new Set([1, 2, 3]);
const HEADER_LENGTH = SNAPSHOT_MAGIC.length + 1;

/** The format byte of a vault snapshot (any format), or throws CorruptSnapshotError. */
export function snapshotFormat(data: Uint8Array): number {
  if (!(data instanceof Uint8Array) || data.length < HEADER_LENGTH) throw new CorruptSnapshotError(`truncated (${data?.length ?? 0} bytes)`);
  if (!equalBytes(data.subarray(0, SNAPSHOT_MAGIC.length), SNAPSHOT_MAGIC)) throw new CorruptSnapshotError("not a vault snapshot (bad magic)");
  return data[SNAPSHOT_MAGIC.length] ?? 0;
}

/** Converts a format 1-3 snapshot into an empty store; throws CorruptSnapshotError or UnsupportedVersionError. */
export function importLegacySnapshot(clusterId: string, data: Uint8Array, store: VaultStore): StoreState {
  const format = snapshotFormat(data);
  if (!LEGACY_FORMATS.has(format)) throw new UnsupportedVersionError("vault snapshot", format);
  if (data.length < HEADER_LENGTH + DIGEST_LENGTH) throw new CorruptSnapshotError(`truncated (${data.length} bytes)`);
  const body = data.subarray(0, data.length - DIGEST_LENGTH);
  if (!equalBytes(createHash("sha256").update(body).digest(), data.subarray(data.length - DIGEST_LENGTH))) throw new CorruptSnapshotError("checksum mismatch (truncated or altered)");
  return corruptOnError(() => readState(clusterId, new Reader(body.subarray(HEADER_LENGTH), "vault snapshot"), format, store));
}

function readState(clusterId: string, r: Reader, format: number, store: VaultStore): StoreState {
  const snapCluster = r.str();
  if (snapCluster !== clusterId) throw new CorruptSnapshotError(`it belongs to cluster ${JSON.stringify(snapCluster)}, not ${JSON.stringify(clusterId)}`);
  const appliedIndex = readSafeU64(r, "applied index");
  const requestIdCapacity = r.u32();
  const clusterCa = format < 3 ? null : readCa(r);
  const s = StoreState.create(store, { clusterId, clusterCa, requestIdCapacity, throttle: NO_THROTTLE, boundSharesOnly: false });
  s.setMetaU64("applied", (s.appliedIndex = appliedIndex));
  readRecords(r, s, format);
  readNodes(r, s, format);
  readRequests(r, s);
  r.end();
  s.flush();
  return s;
}

function readRecords(r: Reader, s: StoreState, format: number): void {
  let prev: Buffer | null = null;
  for (let i = r.u32(); i > 0; i--) {
    const rec = readRecord(r, s.appliedIndex, format as 1 | 2 | 3);
    const key = Buffer.from(rec.record.user, "utf8");
    if (prev !== null && Buffer.compare(prev, key) >= 0) throw new CorruptSnapshotError("records are not in ascending user id order");
    prev = key;
    s.setRecord(rec.record.user, undefined, rec);
  }
}

function readCa(r: Reader): Uint8Array | null {
  const der = r.lp16();
  if (der.length === 0) return null;
  validateCaCertificate(der);
  return der;
}

function readNodes(r: Reader, s: StoreState, format: number): void {
  let prev = 0;
  for (let i = r.u32(); i > 0; i--) {
    const n = readNode(r, s.clusterId, s.clusterCa, format >= 3);
    if (n.nodeId <= prev) throw new CorruptSnapshotError("nodes are not in ascending id order");
    prev = n.nodeId;
    s.setNode(n);
  }
}

function readRequests(r: Reader, s: StoreState): void {
  const table = new RequestTable(s);
  const count = r.u32();
  if (count > table.capacity) throw new CorruptSnapshotError(`${count} request ids exceed the capacity ${table.capacity}`);
  if (count > s.appliedIndex) throw new CorruptSnapshotError(`${count} request ids cannot have been applied by index ${s.appliedIndex}`);
  for (let i = 0; i < count; i++) {
    const [requestId, print, outcome] = [r.fixed(REQUEST_ID_LENGTH), r.fixed(FINGERPRINT_LENGTH), r.lp16()];
    decodeResult(outcome);
    table.add(requestId, print, outcome, i + 1);
  }
}
