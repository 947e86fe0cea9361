// The state digest (docs/vault.md §4): SHA-256 of the canonical snapshot body
// of the whole replicated state — cluster id, applied index, request-id
// capacity, records (attempts, pending attempts, lock, record digest and
// body), node announcements and the request-id table in FIFO order. It is
// exactly the checksum that ends snapshot(): every node that applied the
// same log prefix has the same digest, whether it applied the entries or
// restored a snapshot, since the encoding sorts what a Map's insertion order
// could make differ (records by user id, nodes by id) and the request table's
// order is the log's order.
//
// Streaming: the body is hashed piece by piece through a 64 KiB buffer, so
// the digest never holds the whole encoding in memory.
import { createHash } from "node:crypto";
import { type VaultState, snapshotBody } from "./snapshot.js";

const BATCH_BYTES = 64 * 1024;

export function stateDigest(s: VaultState): Uint8Array {
  const h = createHash("sha256");
  const batch = new Uint8Array(BATCH_BYTES);
  let used = 0;
  for (const piece of snapshotBody(s)) {
    if (used + piece.length > BATCH_BYTES) {
      h.update(batch.subarray(0, used));
      used = 0;
    }
    if (piece.length > BATCH_BYTES) {
      h.update(piece);
      continue;
    }
    batch.set(piece, used);
    used += piece.length;
  }
  h.update(batch.subarray(0, used));
  return new Uint8Array(h.digest());
}
