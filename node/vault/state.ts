// The replicated state as it lives in a VaultStore (keys.ts): typed access
// to the meta pairs, records and node announcements, with the incremental
// digests (digest.ts) kept in step with every write. The state machine
// reads and writes only through this class.
//
// Invariants: the cached meta fields equal their pairs in the store; the
// digests cover every pair but "mdigest" and "mcontent" ("mcontent" covers
// records and nodes only) and are written back by flush(). A store of layout
// 1 (digests as sums of SHA-256, digest.ts) is upgraded on open: its digest
// states are recomputed by one scan (the caller commits the writes).
import { validateCaCertificate, validateClusterId } from "../../proto/crypto/index.js";
import type { NodeAnnouncement } from "./commands.js";
import { LtHash, pairHash } from "./digest.js";
import { VaultInvariantError } from "./errors.js";
import { ALL_KEYS, type MetaName, PREFIX, metaKey, nodeKey, readU64, recordKey, tableRange, u64 } from "./keys.js";
import type { StoredRecord } from "./records.js";
import { type ThrottleSchedule, decodeSchedule, encodeSchedule } from "./throttle.js";
import { type IssuerPolicy, decodeIssuerPolicy, encodeIssuerPolicy } from "./issuers.js";
import type { VaultStore } from "./store.js";
import { decodeNode, decodeStoredRecord, encodeNode, encodeStoredRecord } from "./values.js";

/** The layout version written under "mformat" (2: LtHash digest states; 1: sums of SHA-256, upgraded on open). */
export const STORE_FORMAT = 2;
const SUM_DIGEST_FORMAT = 1;
/** The meta names of the two digest pairs, which the digests do not cover. */
const UNCOUNTED = new Set(["digest", "content"]);
/** Decoded records kept for reads (bounded; a cache only, the store is the truth). */
const RECORD_CACHE = 4096;

export interface NewState {
  readonly clusterId: string;
  readonly clusterCa: Uint8Array | null;
  readonly requestIdCapacity: number;
  readonly throttle: ThrottleSchedule;
  /** The client-token issuer keys (default none: tokens are not verified on apply). */
  readonly issuers?: IssuerPolicy | null;
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
  records: number;
  locked: number;
  private readonly digestSum: LtHash;
  private readonly contentSum: LtHash;
  private readonly cache = new Map<string, StoredRecord>();
  /** The pairHash of each meta pair's value as last written here: most entries rewrite a few meta pairs. */
  private readonly metaHashes = new Map<string, { readonly value: Uint8Array; readonly hash: Uint16Array }>();
  /** Every announcement, verified once when read from the store (a handful of nodes). */
  private readonly nodeMap = new Map<number, NodeAnnouncement>();

  private constructor(readonly store: VaultStore) {
    const cluster = store.get(metaKey("cluster"));
    if (cluster === undefined) throw new VaultInvariantError("the store holds no vault state");
    if (store.get(metaKey("format"))?.[0] === SUM_DIGEST_FORMAT) StoreState.recomputeDigests(store);
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
    this.records = readU64(this.meta("records"));
    this.locked = readU64(this.meta("locked"));
    this.digestSum = new LtHash(this.meta("digest"));
    this.contentSum = new LtHash(this.meta("content"));
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
    const put = (name: MetaName, v: Uint8Array) => { store.put(metaKey(name), v); sum.add(metaKey(name), v); };
    const cap = Buffer.alloc(4);
    cap.writeUInt32BE(n.requestIdCapacity);
    put("cluster", Buffer.from(n.clusterId, "utf8"));
    if (n.clusterCa !== null) put("ca", n.clusterCa.slice());
    put("format", Uint8Array.of(STORE_FORMAT));
    put("reqcap", new Uint8Array(cap));
    put("throttle", encodeSchedule(n.throttle));
    if (n.issuers !== undefined && n.issuers !== null) put("issuers", encodeIssuerPolicy(n.issuers));
    for (const name of ["applied", "reqcount", "records", "locked", "time"] as const) put(name, u64(0));
    store.put(metaKey("digest"), sum.state());
    store.put(metaKey("content"), new LtHash().state());
    return new StoreState(store);
  }

  /** Upgrades a layout-1 store: writes the current layout version, then both digest states from one scan. */
  private static recomputeDigests(store: VaultStore): void {
    store.put(metaKey("format"), Uint8Array.of(STORE_FORMAT));
    const [sum, content] = [new LtHash(), new LtHash()];
    for (const [k, v] of store.scan(...ALL_KEYS)) {
      if (StoreState.uncounted(k)) continue;
      sum.add(k, v);
      if (k[0] === PREFIX.record || k[0] === PREFIX.node) content.add(k, v);
    }
    store.put(metaKey("digest"), sum.state());
    store.put(metaKey("content"), content.state());
  }

  private meta(name: MetaName): Uint8Array {
    const v = this.store.get(metaKey(name));
    if (v === undefined) throw new VaultInvariantError(`the store lacks meta ${name}`);
    return v;
  }

  /** Writes (or, with null, deletes) one pair, keeping the digests in step. */
  write(key: Uint8Array, value: Uint8Array | null): void {
    const old = this.store.get(key);
    const content = key[0] === PREFIX.record || key[0] === PREFIX.node;
    if (old !== undefined) {
      const h = this.hashOf(key, old);
      this.digestSum.removeHash(h);
      if (content) this.contentSum.removeHash(h);
    }
    if (value === null) {
      this.store.delete(key);
      return;
    }
    const h = this.hashOf(key, value);
    this.digestSum.addHash(h);
    if (content) this.contentSum.addHash(h);
    this.store.put(key, value);
  }

  /** pairHash(key, value), remembered for the meta pairs (the last value per meta key; a hit is checked against the value). */
  private hashOf(key: Uint8Array, value: Uint8Array): Uint16Array {
    if (key[0] !== PREFIX.meta) return pairHash(key, value);
    const id = Buffer.from(key.buffer, key.byteOffset, key.byteLength).toString("latin1");
    const hit = this.metaHashes.get(id);
    if (hit !== undefined && Buffer.compare(hit.value, value) === 0) return hit.hash;
    const hash = pairHash(key, value);
    this.metaHashes.set(id, { value: value.slice(), hash });
    return hash;
  }

  setMetaU64(name: "applied" | "reqcount" | "records" | "locked" | "time", v: number): void {
    this.write(metaKey(name), u64(v));
  }

  /** Replaces the client-token issuer keys (a verified issuer-keys entry). */
  setIssuers(p: IssuerPolicy): void {
    const bytes = encodeIssuerPolicy(p);
    this.write(metaKey("issuers"), bytes);
    this.issuers = decodeIssuerPolicy(bytes); // the canonical order, as a restart reads it
  }

  /** Writes the digests back (after each applied entry). */
  flush(): void {
    this.store.put(metaKey("digest"), this.digestSum.state());
    this.store.put(metaKey("content"), this.contentSum.state());
  }

  /** The reported state digest (digest.ts). */
  get digest(): Uint8Array {
    return this.digestSum.digest();
  }

  get contentDigest(): Uint8Array {
    return this.contentSum.digest();
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

  /** Stores (or, with null, removes) a record and keeps the counts. */
  setRecord(user: string, prev: StoredRecord | undefined, next: StoredRecord | null): void {
    // Not cached from `next`: its fields may be views of a large entry
    // buffer (a batch from the leader); the next read decodes the store's own bytes.
    this.write(recordKey(user), next === null ? null : encodeStoredRecord(next));
    this.cache.delete(user);
    const records = this.records + (next === null ? 0 : 1) - (prev === undefined ? 0 : 1);
    const locked = this.locked + (next?.locked === true ? 1 : 0) - (prev?.locked === true ? 1 : 0);
    if (records !== this.records) this.setMetaU64("records", (this.records = records));
    if (locked !== this.locked) this.setMetaU64("locked", (this.locked = locked));
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

  /** True for the two digest pairs, which the digests do not cover. */
  static uncounted(key: Uint8Array): boolean {
    return key[0] === PREFIX.meta && UNCOUNTED.has(Buffer.from(key.subarray(1)).toString("latin1"));
  }
}

