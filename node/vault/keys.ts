// The key layout of the vault store (docs/vault.md §4). One byte of prefix
// names the table; every node's store holds the same bytes under the same
// keys at the same applied index. Integers in keys are big-endian so that
// byte order is numeric order.
//
//   "c" || user id (UTF-8)   u64 the attempt id the record's last confirmation confirmed
//                            (what the owner's reset key signed; below)
//   "m" || name              meta (below)
//   "n" || u64 node id       node announcement
//   "o" || u64 sequence      request id remembered at this sequence (FIFO order): the
//                            log index that applied it (legacy conversion: 1..n, below any)
//   "q" || request id (16)   fingerprint (32) || u64 sequence || outcome
//   "r" || user id (UTF-8)   stored record
//
// Meta: "mapplied" u64 applied index; "mcluster" cluster id (UTF-8); "mca"
// cluster CA (DER; absent: none); "mformat" u8 store format; "mreqcap" u32
// request-id capacity; "mreqcount" u64 request ids remembered; "mtime" u64
// the latest leader time applied (unix ms, never decreases); "mthrottle" the
// throttling schedule (throttle.ts); "missuers" the client-token issuer keys
// (issuers.ts; absent: tokens are not verified on apply); "mbound" u8 1: registrations
// take bound shares only (absent: a state from before bound shares, until an
// activation entry; proto/crypto/share-binding.ts); "mrecords" / "mlocked" u64 counts; "mdigest" the
// LtHash (digest.ts) over every pair but itself and the u64 counters (applied, time,
// reqcount, records, locked), which the reported digest covers by value; "mcontent"
// (layout 2 only: an LtHash of records and nodes) is removed by the upgrade on open.
//
// Confirmed attempts ("c"): written with the record by every verified
// confirmation, removed with the record's confirmation (a registration or an
// overwrite stores a fresh record) or with the record (a delete); so a key
// names a record whose confirmedAt > 0. A record confirmed before this table
// existed has none (no conversion: states and snapshots without it are
// valid). It names the evaluation ledger's epoch (node/storage/
// evaluation-ledger.ts): a confirmation replayed at another log index
// confirms the same attempt. A table beside the record, not a field of its
// value, so the record layout and its legacy conversions stay as they are.
export const PREFIX = { confirmation: 0x63, meta: 0x6d, node: 0x6e, order: 0x6f, request: 0x71, record: 0x72 } as const;

// Node-local pairs: keys that begin with LOCAL_PREFIX (0xff), outside ALL_KEYS
// = [empty, 0xff). They are never replicated and never in the digest: a
// snapshot is a scan of ALL_KEYS (snapshot-stream.ts), so is the digest's
// one full scan (state.ts, a layout upgrade), the LtHash otherwise follows
// StoreState's own writes, and the state machine never writes one. A store
// installed from a snapshot starts without any. The node writes them beside
// the state, in the same commits (node/server/audit-head.ts):
//
//   0xff || "audithead"      the audit log's chain head as of the commit
export const LOCAL_PREFIX = 0xff;

export type LocalName = "audithead";

export function localKey(name: LocalName): Uint8Array {
  return withPrefix(LOCAL_PREFIX, Buffer.from(name, "latin1"));
}

export type MetaName = "applied" | "cluster" | "ca" | "format" | "reqcap" | "reqcount" | "records" | "locked" | "time" | "throttle" | "issuers" | "bound" | "digest" | "content";

export function metaKey(name: MetaName): Uint8Array {
  return withPrefix(PREFIX.meta, Buffer.from(name, "latin1"));
}

export function recordKey(user: string): Uint8Array {
  return withPrefix(PREFIX.record, Buffer.from(user, "utf8"));
}

export function confirmationKey(user: string): Uint8Array {
  return withPrefix(PREFIX.confirmation, Buffer.from(user, "utf8"));
}

export function nodeKey(nodeId: number): Uint8Array {
  return withPrefix(PREFIX.node, u64(nodeId));
}

export function orderKey(sequence: number): Uint8Array {
  return withPrefix(PREFIX.order, u64(sequence));
}

export function requestKey(requestId: Uint8Array): Uint8Array {
  return withPrefix(PREFIX.request, requestId);
}

/** [start, end) of one table's keys. */
export function tableRange(prefix: number): readonly [Uint8Array, Uint8Array] {
  return [Uint8Array.of(prefix), Uint8Array.of(prefix + 1)];
}

/** Every key of the replicated state (node-local pairs, LOCAL_PREFIX, are past its end). */
export const ALL_KEYS: readonly [Uint8Array, Uint8Array] = [new Uint8Array(0), Uint8Array.of(0xff)];

export function u64(n: number): Uint8Array {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, BigInt(n));
  return b;
}

export function readU64(b: Uint8Array, offset = 0): number {
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength).getBigUint64(offset);
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new RangeError(`u64 ${v} is not a safe integer`);
  return Number(v);
}

function withPrefix(prefix: number, rest: Uint8Array): Uint8Array {
  const k = new Uint8Array(1 + rest.length);
  k[0] = prefix;
  k.set(rest, 1);
  return k;
}
