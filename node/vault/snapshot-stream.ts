// The vault snapshot, format 4 (docs/vault.md §4): every pair of a
// consistent view of the store, in key order, as a stream.
//
//   "bkvV" || u8 4 || lp16(cluster id)
//   || pairs × (u32 key length (>= 1) || key || u32 value length || value)
//   || u32 0 || u64 pair count || SHA-256 of everything before (32)
//
// snapshotChunks encodes lazily, one chunk of about 64 KiB at a time, so a
// snapshot is never whole in memory and a caller can yield between chunks.
// SnapshotImporter parses chunks as they come into an empty store and
// refuses (CorruptSnapshotError) a stream whose checksum, key order, values
// (each decoded and checked as apply would) or stored digests are wrong.
import { createHash } from "node:crypto";
import { equalBytes } from "../../proto/crypto/index.js";
import { LtHash } from "./digest.js";
import { CorruptSnapshotError } from "./errors.js";
import { ALL_KEYS, PREFIX, readU64 } from "./keys.js";
import { FINGERPRINT_LENGTH } from "./dedupe.js";
import { decodeResult } from "./result.js";
import { STORE_FORMAT, StoreState } from "./state.js";
import { type VaultStore, firstPair } from "./store.js";
import { corruptOnError, decodeNode, decodeStoredRecord } from "./values.js";

export const SNAPSHOT_MAGIC = Uint8Array.of(0x62, 0x6b, 0x76, 0x56); // "bkvV"
export const SNAPSHOT_FORMAT_VERSION = 4;
export const SNAPSHOT_CHUNK_BYTES = 64 * 1024;
const MAX_KEY = 1024;
const MAX_VALUE = 16 * 1024 * 1024;
/** u64 pair count || SHA-256. */
const TRAILER = 8 + 32;

type Pair = readonly [Uint8Array, Uint8Array];

export function* snapshotChunks(clusterId: string, pairs: Iterable<Pair>, chunkBytes = SNAPSHOT_CHUNK_BYTES): Generator<Uint8Array> {
  const h = createHash("sha256");
  const out = new ChunkBuffer(chunkBytes, h);
  const id = Buffer.from(clusterId, "utf8");
  out.write(SNAPSHOT_MAGIC, Uint8Array.of(SNAPSHOT_FORMAT_VERSION), u16(id.length), id);
  let count = 0;
  for (const [k, v] of pairs) {
    out.write(u32(k.length), k, u32(v.length), v);
    count++;
    if (out.full) yield out.take();
  }
  const tail = Buffer.alloc(12);
  tail.writeBigUInt64BE(BigInt(count), 4);
  out.write(tail);
  const last = out.take();
  yield concat([last, h.digest()]);
}

/** The whole format-4 snapshot of a store (tests, the simulation, small states). */
export function encodeStoreSnapshot(clusterId: string, store: VaultStore): Uint8Array {
  return concat([...snapshotChunks(clusterId, store.scan(...ALL_KEYS))]);
}

class ChunkBuffer {
  private parts: Uint8Array[] = [];
  private size = 0;
  constructor(private readonly limit: number, private readonly h: ReturnType<typeof createHash>) {}

  write(...pieces: Uint8Array[]): void {
    for (const p of pieces) {
      this.parts.push(p);
      this.size += p.length;
      this.h.update(p);
    }
  }

  get full(): boolean {
    return this.size >= this.limit;
  }

  take(): Uint8Array {
    const c = concat(this.parts);
    this.parts = [];
    this.size = 0;
    return c;
  }
}

/** Parses a format-4 stream into an empty store; see the file comment. */
export class SnapshotImporter {
  private buf: Uint8Array = new Uint8Array(0);
  private readonly h = createHash("sha256");
  private headerRead = false;
  private ended = false;
  private count = 0;
  private prev: Uint8Array | null = null;
  private readonly check: PairChecker;

  constructor(private readonly clusterId: string, private readonly store: VaultStore) {
    if (firstPair(store, ...ALL_KEYS) !== undefined) throw new CorruptSnapshotError("the target store is not empty");
    this.check = new PairChecker(clusterId);
  }

  push(chunk: Uint8Array): void {
    this.buf = this.buf.length === 0 ? chunk : concat([this.buf, chunk]);
    let used = 0;
    for (;;) {
      const n = this.ended ? 0 : this.step(this.buf.subarray(used));
      if (n === 0) break;
      used += n;
    }
    this.buf = this.buf.subarray(used).slice();
    if (this.ended && this.buf.length > TRAILER) throw new CorruptSnapshotError("bytes after the end of the snapshot");
  }

  /** Checks the trailer and the digests; returns the state's applied index and digest. */
  finish(): { appliedIndex: number; digest: Uint8Array } {
    if (!this.ended || this.buf.length !== TRAILER) throw new CorruptSnapshotError("truncated (the stream ended early)");
    const count = readU64(this.buf, 0);
    this.h.update(this.buf.subarray(0, 8));
    if (count !== this.count) throw new CorruptSnapshotError(`the trailer counts ${count} pairs, the stream held ${this.count}`);
    if (!equalBytes(this.h.digest(), this.buf.subarray(8))) throw new CorruptSnapshotError("checksum mismatch (truncated or altered)");
    return corruptOnError(() => this.check.finish(this.store));
  }

  /** Consumes one header, pair or end marker from `b`; returns the bytes used (0: need more). */
  private step(b: Uint8Array): number {
    if (!this.headerRead) return this.readHeader(b);
    if (b.length < 4) return 0;
    const klen = readU32(b, 0);
    if (klen === 0) {
      this.h.update(b.subarray(0, 4));
      this.ended = true;
      return 4;
    }
    if (klen > MAX_KEY) throw new CorruptSnapshotError(`a key of ${klen} bytes`);
    if (b.length < 8 + klen) return 0;
    const vlen = readU32(b, 4 + klen);
    if (vlen > MAX_VALUE) throw new CorruptSnapshotError(`a value of ${vlen} bytes`);
    const total = 8 + klen + vlen;
    if (b.length < total) return 0;
    this.h.update(b.subarray(0, total));
    // Copies into Node's small-buffer pool (one allocation per 8 KiB, not per pair): an import holds
    // millions of pairs briefly, and an ArrayBuffer of its own for each costs most of its time in GC.
    this.addPair(Buffer.from(b.subarray(4, 4 + klen)), Buffer.from(b.subarray(8 + klen, total)));
    return total;
  }

  private readHeader(b: Uint8Array): number {
    if (b.length < 7) return 0;
    if (!equalBytes(b.subarray(0, 4), SNAPSHOT_MAGIC)) throw new CorruptSnapshotError("not a vault snapshot (bad magic)");
    if (b[4] !== SNAPSHOT_FORMAT_VERSION) throw new CorruptSnapshotError(`format ${String(b[4])} is not a streamed snapshot`);
    const len = (b[5] ?? 0) * 256 + (b[6] ?? 0);
    if (b.length < 7 + len) return 0;
    const id = Buffer.from(b.subarray(7, 7 + len)).toString("utf8");
    if (id !== this.clusterId) throw new CorruptSnapshotError(`it belongs to cluster ${JSON.stringify(id)}, not ${JSON.stringify(this.clusterId)}`);
    this.h.update(b.subarray(0, 7 + len));
    this.headerRead = true;
    return 7 + len;
  }

  private addPair(k: Uint8Array, v: Uint8Array): void {
    if (this.prev !== null && Buffer.compare(this.prev, k) >= 0) throw new CorruptSnapshotError("keys are not in ascending order");
    this.prev = k;
    this.count++;
    corruptOnError(() => this.check.pair(k, v));
    this.store.put(k, v);
  }
}

/**
 * Checks each pair as it arrives (meta sorts first, so the applied index and
 * the CA are known before any record or node) and the totals at the end.
 */
class PairChecker {
  private readonly sum = new LtHash();
  private readonly meta = new Map<string, Uint8Array>();
  private records = 0;
  private locked = 0;
  private requests = 0;
  private orders = 0;

  constructor(private readonly clusterId: string) {}

  pair(k: Uint8Array, v: Uint8Array): void {
    if (!StoreState.uncounted(k)) this.sum.add(k, v);
    switch (k[0]) {
      case PREFIX.meta: this.meta.set(Buffer.from(k.subarray(1)).toString("latin1"), v); return;
      case PREFIX.record: this.checkRecord(k, v); break;
      case PREFIX.node: decodeNode(v, this.clusterId, this.meta.get("ca") ?? null); return;
      case PREFIX.request: decodeResult(v.subarray(FINGERPRINT_LENGTH + 8)); this.requests++; return;
      case PREFIX.order: this.orders++; return;
      default: throw new CorruptSnapshotError(`a key with the unknown prefix ${String(k[0])}`);
    }
  }

  private checkRecord(k: Uint8Array, v: Uint8Array): void {
    const s = decodeStoredRecord(v, readU64(this.need("applied")));
    if (Buffer.from(k.subarray(1)).toString("utf8") !== s.record.user) throw new CorruptSnapshotError("a record under another user's key");
    this.records++;
    if (s.locked) this.locked++;
  }

  private need(name: string): Uint8Array {
    const v = this.meta.get(name);
    if (v === undefined) throw new CorruptSnapshotError(`meta ${name} is missing`);
    return v;
  }

  finish(store: VaultStore): { appliedIndex: number; digest: Uint8Array } {
    const layout = this.need("format")[0];
    if (layout !== STORE_FORMAT) throw new CorruptSnapshotError(`a store of layout ${String(layout)}, not ${STORE_FORMAT} (a node of another version: upgrade every node before snapshots flow)`);
    const s = StoreState.open(store, this.clusterId);
    const expect = (what: string, got: number, want: number) => {
      if (got !== want) throw new CorruptSnapshotError(`${what}: the stream holds ${got}, its meta says ${want}`);
    };
    expect("records", this.records, s.records);
    expect("locked records", this.locked, s.locked);
    expect("request ids", this.requests, s.reqCount);
    expect("request order entries", this.orders, s.reqCount);
    if (!equalBytes(this.sum.state(), this.need("digest"))) throw new CorruptSnapshotError("the state digest does not match the pairs");
    return { appliedIndex: s.appliedIndex, digest: s.digest };
  }
}

function u16(n: number): Uint8Array {
  return Uint8Array.of(n >>> 8, n & 0xff);
}

function u32(n: number): Uint8Array {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
}

function readU32(b: Uint8Array, at: number): number {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).readUInt32BE(at);
}

function concat(parts: readonly Uint8Array[]): Uint8Array {
  return new Uint8Array(Buffer.concat(parts));
}
