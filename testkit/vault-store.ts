// Test-only tools over the vault store: forge a snapshot by editing its
// pairs (digests kept consistent, as a rogue node would), and write what
// older releases kept (the upgrade paths' inputs): the store layout 2, and
// the legacy whole-state format 3 of the release before the store.
import { createHash } from "node:crypto";
import { Writer, encodeWipedRecord } from "../proto/crypto/index.js";
import { decodeStoredRecord } from "../node/vault/values.js";
import type { StoredRecord } from "../node/vault/records.js";
import { MemoryStore, VaultStateMachine, type VaultStore } from "../node/vault/index.js";
import { LtHash } from "../node/vault/digest.js";
import { StoreState } from "../node/vault/state.js";
import { encodeStoreSnapshot } from "../node/vault/snapshot-stream.js";
import { ALL_KEYS, PREFIX, metaKey, requestKey, tableRange } from "../node/vault/keys.js";

/**
 * Restores `snapshot` into a fresh store, lets `edit` change it through
 * StoreState (the digests follow, as a rogue node would make them), and
 * re-encodes it without checking the result.
 */
export function editSnapshot(clusterId: string, snapshot: Uint8Array, edit: (s: StoreState) => void): Uint8Array {
  const store = new MemoryStore();
  VaultStateMachine.restore({ clusterId, store }, snapshot);
  const s = StoreState.open(store, clusterId);
  edit(s);
  s.flush();
  return encodeStoreSnapshot(clusterId, store);
}

/**
 * Rewrites a store of the current layout as layout 2 kept the same state
 * (the upgrade path's input): format 2, the LtHash over every pair but the
 * two digests (the counters included), "mcontent" the LtHash of the records
 * and nodes.
 */
export function rewriteAsLayout2(store: VaultStore): void {
  store.put(metaKey("format"), Uint8Array.of(2));
  const [sum, content] = [new LtHash(), new LtHash()];
  for (const [k, v] of store.scan(...ALL_KEYS)) {
    if (k[0] === PREFIX.meta && Buffer.from(k).toString("latin1") === "mdigest") continue;
    sum.add(k, v);
    if (k[0] === PREFIX.record || k[0] === PREFIX.node) content.add(k, v);
  }
  store.put(metaKey("digest"), sum.state());
  store.put(metaKey("content"), content.state());
}

/** The legacy format-3 snapshot of a state machine's state (what the release before the store wrote). */
export function encodeLegacySnapshot(sm: VaultStateMachine): Uint8Array {
  const s = StoreState.open(sm.store, sm.clusterId);
  const w = new Writer().fixed(Uint8Array.of(0x62, 0x6b, 0x76, 0x56)).u8(3).str(s.clusterId).u64(s.appliedIndex).u32(s.requestIdCapacity);
  w.lp16(s.clusterCa ?? new Uint8Array(0));
  const records = [...sm.store.scan(...tableRange(PREFIX.record))];
  w.u32(records.length);
  for (const [, v] of records) writeLegacyRecord(w, decodeStoredRecord(v, s.appliedIndex));
  const nodes = [...sm.store.scan(...tableRange(PREFIX.node))];
  w.u32(nodes.length);
  for (const [, v] of nodes) w.fixed(v);
  const order = [...sm.store.scan(...tableRange(PREFIX.order))];
  w.u32(order.length);
  for (const [, id] of order) {
    const q = sm.store.get(requestKey(id));
    if (q === undefined) throw new Error("request table inconsistent");
    w.fixed(id).fixed(q.subarray(0, 32)).lp16(q.subarray(40));
  }
  const body = w.bytes();
  return new Uint8Array(Buffer.concat([body, createHash("sha256").update(body).digest()]));
}

/** A record in the legacy layout (formats 2 and 3): the store's value without `last begin at`. */
function writeLegacyRecord(w: Writer, r: StoredRecord): void {
  w.u8(r.locked ? 1 : 0).u8(r.attempts).u16(r.pending.length);
  for (const p of r.pending) w.u64(p.attemptId).fixed(p.blinded);
  const body = r.encoded ?? encodeWipedRecord(r.record);
  w.fixed(r.digest).u64(r.confirmedAt).u32(body.length).fixed(body);
}
