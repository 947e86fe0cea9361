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
// refuses (CorruptSnapshotError) a stream whose framing, checksum, key order
// or tables are wrong, whose counts differ from its meta, or whose stored
// LtHash is not the one of its pairs. It does not decode the values: the
// state it returns (applied index, and the digest over the recomputed LtHash
// and the counters) may be installed only once `t` other nodes vouch for that
// digest (node/server/snapshot-attest.ts), which makes the pairs exactly an
// honest node's, each validated when that node applied it (docs/storage.md,
// "What the importer checks, and why not more").
//
// The LtHash of the pairs (three SHAKE256 outputs of 2 KiB per record: most
// of an import's CPU) is summed by a PairHasher: in line by default (the
// simulation, the unit tests, a whole snapshot restored), or by worker
// threads that node/server injects while this thread parses and writes.
import { createHash } from "node:crypto";
import { equalBytes } from "../../proto/crypto/index.js";
import { LtHash } from "./digest.js";
import { CorruptSnapshotError, VaultInvariantError } from "./errors.js";
import { ALL_KEYS, PREFIX, readU64 } from "./keys.js";
import { COUNTERS, STORE_FORMAT, StoreState } from "./state.js";
import { type VaultStore, firstPair } from "./store.js";
import { corruptOnError } from "./values.js";

export const SNAPSHOT_MAGIC = Uint8Array.of(0x62, 0x6b, 0x76, 0x56); // "bkvV"
export const SNAPSHOT_FORMAT_VERSION = 4;
export const SNAPSHOT_CHUNK_BYTES = 64 * 1024;
const MAX_KEY = 1024;
const MAX_VALUE = 16 * 1024 * 1024;
/** u64 pair count || SHA-256. */
const TRAILER = 8 + 32;
/** Room past a chunk's limit for the pair that crosses it (a record is ~1 KiB; larger pairs grow the buffer). */
const SLACK = 16 * 1024;
/** The first byte of a locked record's value (values.ts). */
const LOCKED = 1;

type Pair = readonly [Uint8Array, Uint8Array];
/** An imported state: its applied index and digest (to be attested). */
type StoreRef = { appliedIndex: number; digest: Uint8Array };

/** Sums the LtHash of the pairs an import counts (LtHash addition is commutative: any split and order give one sum). */
export interface PairHasher {
  /** Adds a pair's hash; the bytes may be reused once it returns (a hasher that keeps them copies them). */
  add(key: Uint8Array, value: Uint8Array): void;
  /** The LtHash state (2048 bytes) of every pair added; a promise when they are hashed elsewhere (it rejects if that failed). */
  total(): Uint8Array | Promise<Uint8Array>;
}

/** The default PairHasher: an LtHash summed on the calling thread. */
export class InlinePairHasher implements PairHasher {
  private readonly sum = new LtHash();

  add(key: Uint8Array, value: Uint8Array): void {
    this.sum.add(key, value);
  }

  total(): Uint8Array {
    return this.sum.state();
  }
}

export function* snapshotChunks(clusterId: string, pairs: Iterable<Pair>, chunkBytes = SNAPSHOT_CHUNK_BYTES): Generator<Uint8Array> {
  const h = createHash("sha256");
  const out = new ChunkWriter(chunkBytes, h);
  const id = Buffer.from(clusterId, "utf8");
  out.bytes(SNAPSHOT_MAGIC);
  out.bytes(Uint8Array.of(SNAPSHOT_FORMAT_VERSION, id.length >>> 8, id.length & 0xff));
  out.bytes(id);
  let count = 0;
  for (const [k, v] of pairs) {
    out.u32(k.length);
    out.bytes(k);
    out.u32(v.length);
    out.bytes(v);
    count++;
    if (out.full) yield out.take();
  }
  const tail = Buffer.alloc(12);
  tail.writeBigUInt64BE(BigInt(count), 4);
  out.bytes(tail);
  const last = out.take();
  yield concat([last, h.digest()]);
}

/** The whole format-4 snapshot of a store (tests, the simulation, small states). */
export function encodeStoreSnapshot(clusterId: string, store: VaultStore): Uint8Array {
  return concat([...snapshotChunks(clusterId, store.scan(...ALL_KEYS))]);
}

/** Bytes copied into one chunk-sized buffer (hashed once per chunk); a chunk ends past `limit` by at most one pair. */
class ChunkWriter {
  private buf: Buffer;
  private at = 0;
  constructor(private readonly limit: number, private readonly h: ReturnType<typeof createHash>) {
    this.buf = Buffer.alloc(limit + SLACK); // zeroed: a chunk's ArrayBuffer reaches the transport
  }

  bytes(p: Uint8Array): void {
    this.room(p.length);
    this.buf.set(p, this.at);
    this.at += p.length;
  }

  u32(n: number): void {
    this.room(4);
    this.buf.writeUInt32BE(n, this.at);
    this.at += 4;
  }

  get full(): boolean {
    return this.at >= this.limit;
  }

  /** The chunk written so far (its own memory: the next one gets a new buffer). */
  take(): Uint8Array {
    const c = new Uint8Array(this.buf.buffer, this.buf.byteOffset, this.at);
    this.h.update(c);
    this.buf = Buffer.alloc(this.limit + SLACK);
    this.at = 0;
    return c;
  }

  private room(n: number): void {
    if (this.at + n <= this.buf.length) return;
    const bigger = Buffer.alloc(Math.max(2 * this.buf.length, this.at + n));
    bigger.set(this.buf.subarray(0, this.at));
    this.buf = bigger;
  }
}

/** Parses a format-4 stream into an empty store; see the file comment. */
export class SnapshotImporter {
  /** The bytes not consumed yet: a partial header, pair or trailer. */
  private buf: Buffer = Buffer.alloc(0);
  private readonly h = createHash("sha256");
  private headerRead = false;
  private ended = false;
  private count = 0;
  private prev: Uint8Array | null = null;
  private readonly check: PairChecker;

  constructor(private readonly clusterId: string, private readonly store: VaultStore, private readonly hasher: PairHasher = new InlinePairHasher()) {
    this.check = new PairChecker(hasher);
    if (firstPair(store, ...ALL_KEYS) !== undefined) throw new CorruptSnapshotError("the target store is not empty");
  }

  push(chunk: Uint8Array): void {
    const b = this.buf.length === 0 ? Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength) : Buffer.concat([this.buf, chunk]);
    let at = 0;
    for (let next = this.step(b, at); next > at; next = this.step(b, at)) at = next;
    this.h.update(b.subarray(0, at));
    this.buf = Buffer.from(b.subarray(at)); // a copy: the chunk is not held for the few bytes left of it
    if (this.ended && this.buf.length > TRAILER) throw new CorruptSnapshotError("bytes after the end of the snapshot");
  }

  /** Checks the trailer and the stored state; returns the state's applied index and digest (to be attested). An in-line hasher only. */
  finish(): StoreRef {
    this.checkTrailer();
    const sum = this.hasher.total();
    if (!(sum instanceof Uint8Array)) throw new VaultInvariantError("the pairs are hashed elsewhere: finishHashed(), not finish()");
    return this.verify(sum);
  }

  /** finish() for any hasher: waits for the sum of the pairs hashed elsewhere. */
  async finishHashed(): Promise<StoreRef> {
    this.checkTrailer();
    return this.verify(await this.hasher.total());
  }

  private verify(sum: Uint8Array): StoreRef {
    return corruptOnError(() => this.check.finish(this.store, this.clusterId, sum));
  }

  private checkTrailer(): void {
    if (!this.ended || this.buf.length !== TRAILER) throw new CorruptSnapshotError("truncated (the stream ended early)");
    const count = readU64(this.buf, 0);
    this.h.update(this.buf.subarray(0, 8));
    if (count !== this.count) throw new CorruptSnapshotError(`the trailer counts ${count} pairs, the stream held ${this.count}`);
    if (!equalBytes(this.h.digest(), this.buf.subarray(8))) throw new CorruptSnapshotError("checksum mismatch (truncated or altered)");
  }

  /** Consumes one header, pair or end marker of `b` at `at`; returns where the next begins (`at`: need more bytes). */
  private step(b: Buffer, at: number): number {
    if (this.ended) return at;
    if (!this.headerRead) return at + this.readHeader(b.subarray(at));
    if (b.length < at + 4) return at;
    const klen = b.readUInt32BE(at);
    if (klen === 0) {
      this.ended = true;
      return at + 4;
    }
    if (klen > MAX_KEY) throw new CorruptSnapshotError(`a key of ${klen} bytes`);
    if (b.length < at + 8 + klen) return at;
    const vlen = b.readUInt32BE(at + 4 + klen);
    if (vlen > MAX_VALUE) throw new CorruptSnapshotError(`a value of ${vlen} bytes`);
    const end = at + 8 + klen + vlen;
    if (b.length < end) return at;
    // Copies into Node's small-buffer pool (one allocation per 8 KiB, not per pair): an import holds
    // millions of pairs briefly, and an ArrayBuffer of its own for each costs most of its time in GC.
    this.addPair(Buffer.from(b.subarray(at + 4, at + 4 + klen)), Buffer.from(b.subarray(at + 8 + klen, end)));
    return end;
  }

  private readHeader(b: Uint8Array): number {
    if (b.length < 7) return 0;
    if (!equalBytes(b.subarray(0, 4), SNAPSHOT_MAGIC)) throw new CorruptSnapshotError("not a vault snapshot (bad magic)");
    if (b[4] !== SNAPSHOT_FORMAT_VERSION) throw new CorruptSnapshotError(`format ${String(b[4])} is not a streamed snapshot`);
    const len = (b[5] ?? 0) * 256 + (b[6] ?? 0);
    if (b.length < 7 + len) return 0;
    const id = Buffer.from(b.subarray(7, 7 + len)).toString("utf8");
    if (id !== this.clusterId) throw new CorruptSnapshotError(`it belongs to cluster ${JSON.stringify(id)}, not ${JSON.stringify(this.clusterId)}`);
    this.headerRead = true;
    return 7 + len;
  }

  private addPair(k: Uint8Array, v: Uint8Array): void {
    if (this.prev !== null && Buffer.compare(this.prev, k) >= 0) throw new CorruptSnapshotError("keys are not in ascending order");
    this.prev = k;
    this.count++;
    this.check.pair(k, v);
    this.store.put(k, v);
  }
}

const COUNTER_NAMES = new Set<string>(COUNTERS);

/**
 * The local checks of an imported state, on the pairs as they arrive and
 * on the totals at the end: known tables, counters and confirmed attempts of
 * 8 bytes (the digest covers their values), the counts the meta claims, the
 * stored LtHash recomputed, and a new state (applied index 0: the
 * bootstrap's, which holds only meta) empty. Values are not decoded (the
 * file comment says why); nor is a confirmed attempt looked up beside its
 * record (its keys come before the records', so that would be a scan at the
 * end, without event-loop turns: the attestation makes the pairs an honest
 * node's). A state written before the confirmed-attempt table ("c",
 * keys.ts) simply has none.
 */
class PairChecker {
  private readonly meta = new Map<string, Uint8Array>();
  private records = 0;
  private locked = 0;
  private requests = 0;
  private orders = 0;
  private nodes = 0;

  constructor(private readonly sum: PairHasher) {}

  pair(k: Uint8Array, v: Uint8Array): void {
    if (k[0] === PREFIX.meta) return this.metaPair(k, v);
    this.sum.add(k, v);
    switch (k[0]) {
      case PREFIX.record:
        this.records++;
        if (v[0] === LOCKED) this.locked++;
        return;
      case PREFIX.node: this.nodes++; return;
      case PREFIX.request: this.requests++; return;
      case PREFIX.order: this.orders++; return;
      case PREFIX.confirmation:
        if (v.length !== 8) throw new CorruptSnapshotError(`a confirmed attempt of ${v.length} bytes, not a u64`);
        return;
      default: throw new CorruptSnapshotError(`a key with the unknown prefix ${String(k[0])}`);
    }
  }

  private metaPair(k: Uint8Array, v: Uint8Array): void {
    const name = Buffer.from(k.subarray(1)).toString("latin1");
    this.meta.set(name, v);
    if (!StoreState.uncounted(k)) this.sum.add(k, v);
    else if (COUNTER_NAMES.has(name) && v.length !== 8) throw new CorruptSnapshotError(`meta ${name} holds ${v.length} bytes, not a u64`);
  }

  private need(name: string): Uint8Array {
    const v = this.meta.get(name);
    if (v === undefined) throw new CorruptSnapshotError(`meta ${name} is missing`);
    return v;
  }

  /** `sum`: the LtHash state of the counted pairs. */
  finish(store: VaultStore, clusterId: string, sum: Uint8Array): StoreRef {
    const layout = this.need("format")[0];
    if (layout !== STORE_FORMAT) throw new CorruptSnapshotError(`a store of layout ${String(layout)}, not ${STORE_FORMAT} (a node of another version: upgrade every node before snapshots flow)`);
    const s = StoreState.open(store, clusterId);
    const expect = (what: string, got: number, want: number) => {
      if (got !== want) throw new CorruptSnapshotError(`${what}: the stream holds ${got}, its meta says ${want}`);
    };
    expect("records", this.records, s.records);
    expect("locked records", this.locked, s.locked);
    expect("request ids", this.requests, s.reqCount);
    expect("request order entries", this.orders, s.reqCount);
    if (!equalBytes(sum, this.need("digest"))) throw new CorruptSnapshotError("the state digest does not match the pairs");
    if (s.appliedIndex === 0 && (this.records + this.nodes + this.requests > 0 || s.time !== 0)) {
      throw new CorruptSnapshotError("a state at applied index 0 (a new one: the bootstrap's, only meta) holds records, nodes, request ids or a time");
    }
    return { appliedIndex: s.appliedIndex, digest: s.digest };
  }
}

function concat(parts: readonly Uint8Array[]): Uint8Array {
  return new Uint8Array(Buffer.concat(parts));
}
