// The replicated state as it lives in a VaultStore (keys.ts): typed access
// to the meta pairs, records (and the attempt each one's last confirmation
// confirmed) and node announcements, with the incremental
// digests (digest.ts) kept in step with every write. The state machine
// reads and writes only through this class.
//
// Invariants: the cached meta fields equal their pairs in the store; the
// LtHash ("mdigest", written back by flush()) covers every pair but itself
// and the counters (COUNTERS), which the reported digest covers by value
// (docs/vault.md §4, "State digest"). Older layouts are upgraded on open
// (the caller commits the writes): layout 2 (the counters in the LtHash, a
// second LtHash "mcontent" over records and nodes) by subtracting the
// counters' hashes, layout 1 (sums of SHA-256) by one scan.
import { validateCaCertificate, validateClusterId } from "../../proto/crypto/index.js";
import type { NodeAnnouncement } from "./commands.js";
import { LtHash } from "./digest.js";
import { VaultInvariantError } from "./errors.js";
import { ALL_KEYS, type MetaName, PREFIX, confirmationKey, metaKey, nodeKey, readU64, recordKey, tableRange, u64 } from "./keys.js";
import type { StoredRecord } from "./records.js";
import { type ThrottleSchedule, decodeSchedule, encodeSchedule } from "./throttle.js";
import { type IssuerPolicy, decodeIssuerPolicy, encodeIssuerPolicy } from "./issuers.js";
import type { VaultStore } from "./store.js";
import { decodeNode, decodeStoredRecord, encodeNode, encodeStoredRecord } from "./values.js";

/** The layout version written under "mformat" (3; 2: counters in the LtHash and "mcontent"; 1: sums of SHA-256: both upgraded on open). */
export const STORE_FORMAT = 3;
const SUM_DIGEST_FORMAT = 1;
const CONTENT_DIGEST_FORMAT = 2;
/**
 * The u64 meta pairs that entries rewrite as a matter of course, in the
 * order the reported digest covers their values; the LtHash leaves them out
 * (hashing them cost 2-3 SHAKE256 outputs of 2 KiB per entry).
 */
export const COUNTERS = ["applied", "time", "reqcount", "records", "locked"] as const;
export type Counter = (typeof COUNTERS)[number];
/** The value of "mbound". */
const BOUND_META_VALUE = Uint8Array.of(1);
/** The meta names the LtHash does not cover: itself and the counters. */
const UNCOUNTED = new Set<string>(["digest", ...COUNTERS]);
/** Decoded records kept for reads (bounded; a cache only, the store is the truth). */
const RECORD_CACHE = 4096;

export interface NewState {
  readonly clusterId: string;
  readonly clusterCa: Uint8Array | null;
  readonly requestIdCapacity: number;
  readonly throttle: ThrottleSchedule;
  /** The client-token issuer keys (default none: tokens are not verified on apply). */
  readonly issuers?: IssuerPolicy | null;
  /** Registrations must carry bound shares (wrap blob v2) only: every new cluster; false for a state converted from a legacy snapshot. */
  readonly boundSharesOnly: boolean;
}

export class StoreState {
  readonly clusterId: string;
  readonly clusterCa: Uint8Array | null;
  readonly requestIdCapacity: number;
  appliedIndex: number;
  /** Request ids remembered. */
  reqCount: number;
  /** The latest leader time applied (unix ms; 0 before the first stamped entry). */
  time: number;
  readonly throttle: ThrottleSchedule;
  /** The client-token issuer keys ("missuers"); null: tokens are not verified on apply. */
  issuers: IssuerPolicy | null;
  /** "mbound" present: registrations with an unbound share (wrap blob v1) are refused (proto/crypto/share-binding.ts). Never unset. */
  boundSharesOnly: boolean;
  records: number;
  locked: number;
  private readonly digestSum: LtHash;
  private readonly cache = new Map<string, StoredRecord>();
  /** Every announcement, verified once when read from the store (a handful of nodes). */
  private readonly nodeMap = new Map<number, NodeAnnouncement>();

  private constructor(readonly store: VaultStore) {
    const cluster = store.get(metaKey("cluster"));
    if (cluster === undefined) throw new VaultInvariantError("the store holds no vault state");
    StoreState.upgrade(store);
    const format = store.get(metaKey("format"))?.[0];
    if (format !== STORE_FORMAT) throw new VaultInvariantError(`the store's layout version ${String(format)} is not ${STORE_FORMAT}`);
    this.clusterId = Buffer.from(cluster).toString("utf8");
    this.clusterCa = store.get(metaKey("ca"))?.slice() ?? null;
    this.requestIdCapacity = Buffer.from(this.meta("reqcap")).readUInt32BE(0);
    this.appliedIndex = readU64(this.meta("applied"));
    this.reqCount = readU64(this.meta("reqcount"));
    this.time = readU64(this.meta("time"));
    this.throttle = decodeSchedule(this.meta("throttle"));
    const issuers = store.get(metaKey("issuers"));
    this.issuers = issuers === undefined ? null : decodeIssuerPolicy(issuers);
    this.boundSharesOnly = store.get(metaKey("bound")) !== undefined;
    this.records = readU64(this.meta("records"));
    this.locked = readU64(this.meta("locked"));
    this.digestSum = new LtHash(this.meta("digest"));
    const [start, end] = tableRange(PREFIX.node);
    for (const [, v] of store.scan(start, end)) {
      const n = decodeNode(v, this.clusterId, this.clusterCa);
      this.nodeMap.set(n.nodeId, n);
    }
  }

  /** Opens the state a store holds; throws VaultInvariantError if it holds none or another cluster's. */
  static open(store: VaultStore, clusterId: string): StoreState {
    const s = new StoreState(store);
    if (s.clusterId !== clusterId) throw new VaultInvariantError(`the store belongs to cluster ${JSON.stringify(s.clusterId)}, not ${JSON.stringify(clusterId)}`);
    return s;
  }

  /** Writes an empty state (applied index 0) into an empty store and opens it. */
  static create(store: VaultStore, n: NewState): StoreState {
    validateClusterId(n.clusterId);
    if (n.clusterCa !== null) validateCaCertificate(n.clusterCa);
    if (!Number.isSafeInteger(n.requestIdCapacity) || n.requestIdCapacity < 1 || n.requestIdCapacity > 0xffffffff) {
      throw new VaultInvariantError(`request id capacity ${String(n.requestIdCapacity)} must be in [1, 2^32-1]`);
    }
    if (store.get(metaKey("cluster")) !== undefined) throw new VaultInvariantError("the store already holds a vault state");
    const sum = new LtHash();
    const put = (name: MetaName, v: Uint8Array) => { store.put(metaKey(name), v); if (!UNCOUNTED.has(name)) sum.add(metaKey(name), v); };
    const cap = Buffer.alloc(4);
    cap.writeUInt32BE(n.requestIdCapacity);
    put("cluster", Buffer.from(n.clusterId, "utf8"));
    if (n.clusterCa !== null) put("ca", n.clusterCa.slice());
    put("format", Uint8Array.of(STORE_FORMAT));
    put("reqcap", new Uint8Array(cap));
    put("throttle", encodeSchedule(n.throttle));
    if (n.issuers !== undefined && n.issuers !== null) put("issuers", encodeIssuerPolicy(n.issuers));
    if (n.boundSharesOnly) put("bound", BOUND_META_VALUE);
    for (const name of COUNTERS) put(name, u64(0));
    store.put(metaKey("digest"), sum.state());
    return new StoreState(store);
  }

  /** Brings a store of layout 1 or 2 to the current one (writes the caller commits); no-op for others. */
  private static upgrade(store: VaultStore): void {
    const format = store.get(metaKey("format"))?.[0];
    if (format !== SUM_DIGEST_FORMAT && format !== CONTENT_DIGEST_FORMAT) return;
    store.put(metaKey("format"), Uint8Array.of(STORE_FORMAT));
    store.delete(metaKey("content"));
    const sum = format === SUM_DIGEST_FORMAT ? StoreState.scanned(store) : StoreState.withoutCounters(store);
    store.put(metaKey("digest"), sum.state());
  }

  /** The LtHash of a store's pairs, by one scan. */
  private static scanned(store: VaultStore): LtHash {
    const sum = new LtHash();
    for (const [k, v] of store.scan(...ALL_KEYS)) if (!StoreState.uncounted(k)) sum.add(k, v);
    return sum;
  }

  /** A layout-2 LtHash (every pair but the two digests) without the counters, with the new layout version. */
  private static withoutCounters(store: VaultStore): LtHash {
    const sum = new LtHash(store.get(metaKey("digest")));
    sum.remove(metaKey("format"), Uint8Array.of(CONTENT_DIGEST_FORMAT));
    sum.add(metaKey("format"), Uint8Array.of(STORE_FORMAT));
    for (const name of COUNTERS) {
      const v = store.get(metaKey(name));
      if (v !== undefined) sum.remove(metaKey(name), v);
    }
    return sum;
  }

  private meta(name: MetaName): Uint8Array {
    const v = this.store.get(metaKey(name));
    if (v === undefined) throw new VaultInvariantError(`the store lacks meta ${name}`);
    return v;
  }

  /** Writes (or, with null, deletes) one pair the LtHash covers, keeping it in step. */
  write(key: Uint8Array, value: Uint8Array | null): void {
    if (StoreState.uncounted(key)) throw new VaultInvariantError(`meta ${Buffer.from(key.subarray(1)).toString("latin1")} is not written through write()`);
    const old = this.store.get(key);
    if (old !== undefined) this.digestSum.remove(key, old);
    if (value === null) {
      this.store.delete(key);
      return;
    }
    this.digestSum.add(key, value);
    this.store.put(key, value);
  }

  /** Writes a counter; the caller has set its field (the digest reads the fields). */
  setMetaU64(name: Counter, v: number): void {
    this.store.put(metaKey(name), u64(v));
  }

  /** Replaces the client-token issuer keys (a verified issuer-keys entry). */
  setIssuers(p: IssuerPolicy): void {
    const bytes = encodeIssuerPolicy(p);
    this.write(metaKey("issuers"), bytes);
    this.issuers = decodeIssuerPolicy(bytes); // the canonical order, as a restart reads it
  }

  /** From now on, registrations take bound shares only (a verified activation entry); a no-op once set. */
  requireBoundShares(): void {
    if (this.boundSharesOnly) return;
    this.write(metaKey("bound"), BOUND_META_VALUE);
    this.boundSharesOnly = true;
  }

  /** Writes the LtHash back (after each applied entry). */
  flush(): void {
    this.store.put(metaKey("digest"), this.digestSum.state());
  }

  /** The reported state digest: the LtHash's, over it and the counters' values (digest.ts). */
  get digest(): Uint8Array {
    return this.digestSum.digest(counterBytes([this.appliedIndex, this.time, this.reqCount, this.records, this.locked]));
  }

  getRecord(user: string): StoredRecord | undefined {
    const hit = this.cache.get(user);
    if (hit !== undefined) return hit;
    const v = this.store.get(recordKey(user));
    if (v === undefined) return undefined;
    const s = decodeStoredRecord(v, this.appliedIndex, "trusted");
    this.remember(user, s);
    return s;
  }

  /**
   * Stores (or, with null, removes) a record and keeps the counts and its
   * confirmed attempt: `confirmedAttempt` is given by an applied
   * confirmation only (records.ts Transition).
   */
  setRecord(user: string, prev: StoredRecord | undefined, next: StoredRecord | null, confirmedAttempt?: number): void {
    this.write(recordKey(user), next === null ? null : encodeStoredRecord(next));
    this.keepConfirmedAttempt(user, prev, next, confirmedAttempt);
    // A begin or a confirmation keeps the body `prev` was read with (views
    // of the store's own bytes), and a begin's new B is the entry reader's
    // copy (Reader.fixed): `next` is then what reading its bytes back gives.
    // Any other change (a registration: fields of the entry; a lock; a
    // delete) is decoded from the store's bytes at the next read.
    if (next !== null && prev !== undefined && next.record === prev.record && next.encoded === prev.encoded) this.remember(user, next);
    else this.cache.delete(user);
    const records = this.records + (next === null ? 0 : 1) - (prev === undefined ? 0 : 1);
    const locked = this.locked + (next?.locked === true ? 1 : 0) - (prev?.locked === true ? 1 : 0);
    if (records !== this.records) this.setMetaU64("records", (this.records = records));
    if (locked !== this.locked) this.setMetaU64("locked", (this.locked = locked));
  }

  /**
   * The attempt id the record's last confirmation confirmed (keys.ts "c");
   * 0 if it has none, or was confirmed before the table existed.
   */
  confirmedAttempt(user: string): number {
    const v = this.store.get(confirmationKey(user));
    return v === undefined ? 0 : readU64(v);
  }

  /**
   * "c" || user follows the record's confirmation: written by a
   * confirmation; removed when a record that had one (confirmedAt > 0) is
   * replaced by a fresh one (a registration or an overwrite: confirmedAt 0)
   * or deleted. Begins and locks keep it. A key exists only beside a record
   * with confirmedAt > 0, so no other change needs a read of it.
   */
  private keepConfirmedAttempt(user: string, prev: StoredRecord | undefined, next: StoredRecord | null, confirmedAttempt: number | undefined): void {
    if (confirmedAttempt !== undefined) {
      if (next === null || next.confirmedAt === 0) throw new VaultInvariantError(`a confirmed attempt of ${JSON.stringify(user)} without a confirmed record`);
      this.write(confirmationKey(user), u64(confirmedAttempt));
    } else if ((prev?.confirmedAt ?? 0) > 0 && (next === null || next.confirmedAt === 0)) {
      this.write(confirmationKey(user), null);
    }
  }

  private remember(user: string, s: StoredRecord): void {
    if (this.cache.size >= RECORD_CACHE) this.cache.delete(this.cache.keys().next().value as string);
    this.cache.set(user, s);
  }

  getNode(nodeId: number): NodeAnnouncement | undefined {
    return this.nodeMap.get(nodeId);
  }

  setNode(n: NodeAnnouncement): void {
    this.write(nodeKey(n.nodeId), encodeNode(n));
    this.nodeMap.set(n.nodeId, n);
  }

  /** Node announcements ascending by id. */
  nodes(): NodeAnnouncement[] {
    return [...this.nodeMap.values()].sort((a, b) => a.nodeId - b.nodeId);
  }

  /** True for the pairs the LtHash does not cover: itself and the counters. */
  static uncounted(key: Uint8Array): boolean {
    return key[0] === PREFIX.meta && UNCOUNTED.has(Buffer.from(key.buffer, key.byteOffset + 1, key.byteLength - 1).toString("latin1"));
  }
}

/** The counters' values in COUNTERS order, u64 big-endian each. */
function counterBytes(values: readonly number[]): Uint8Array {
  const b = Buffer.alloc(8 * values.length);
  values.forEach((v, i) => b.writeBigUInt64BE(BigInt(v), 8 * i));
  return b;
}

