// The PairHashers of a snapshot import (node/vault/snapshot-stream.ts). The
// LtHash of the pairs is most of an import's CPU (three SHAKE256 outputs of
// 2 KiB per record); WorkerPairHasher moves it to worker threads while the
// main thread parses, checks and writes the store (docs/storage.md, "How the
// import hashes"). Pairs are copied into batches of BATCH_BYTES, framed as
// in the stream; a full batch is transferred (not copied) to the worker with
// the fewest batches in flight, which answers with the batch's partial LtHash
// sum; the partial sums are added here (LtHash addition is commutative, so
// the total is the in-line one, byte for byte). At most IN_FLIGHT_PER_THREAD
// batches per thread are in flight: ready() makes the importer wait.
import { availableParallelism } from "node:os";
import type { Worker } from "node:worker_threads";
import { moduleWorker } from "../hsm/index.js";
import { InlinePairHasher, LtHash, type PairHasher } from "../vault/index.js";

export interface HashRequest { id: number; batch: ArrayBuffer; length: number }
export type HashReply = { id: number; sum: Uint8Array } | { id: number; error: string };

/** A PairHasher an import waits on (bounded work in flight) and closes at its end, whatever the end. */
export interface ImportHasher extends PairHasher {
  /** Resolves once the hasher takes more pairs; rejects once hashing failed. */
  ready(): Promise<void>;
  /** Stops every thread it started (idempotent); its total() is no longer awaited. */
  close(): Promise<void>;
}

/** Bytes of pairs per batch (~250 records: a few ms of SHAKE256 in a thread). */
const BATCH_BYTES = 256 * 1024;
const IN_FLIGHT_PER_THREAD = 4;

/**
 * Hash threads for an import: one per core, at most 2. Two on 2 cores: the
 * main thread is the import's other stage and waits on the network and the
 * store part of the time; with one thread the import waited on it for
 * most of a transfer (docs/benchmarks.md, "Catch-up: the transfer's flow control").
 */
export function defaultHashThreads(): number {
  return Math.min(2, availableParallelism()); // availableParallelism() is at least 1
}

/** The in-line hasher as an ImportHasher (nothing to wait for or stop). */
export function inlineImportHasher(): ImportHasher {
  const h = new InlinePairHasher();
  return { add: (k, v) => h.add(k, v), total: () => h.total(), ready: () => Promise.resolve(), close: () => Promise.resolve() };
}

let alive = 0;

/** Hash threads started and not exited yet, in this process (tests: none is left behind). */
export function hashThreadsAlive(): number {
  return alive;
}

/** Starts pair-hash-worker in a thread (node/hsm's moduleWorker: from dist/ or the sources under tsx). */
function spawnHashThread(): Worker {
  alive++;
  const w = moduleWorker(import.meta.url, "pair-hash-worker");
  w.once("exit", () => alive--);
  return w;
}

/** The LtHash state of the pairs framed in `batch[0, length)` (this module's framing; a framing error is a bug). */
export function hashBatch(batch: ArrayBuffer, length: number): Uint8Array {
  const b = Buffer.from(batch, 0, length);
  const sum = new LtHash();
  for (let at = 0; at < length;) {
    const klen = b.readUInt32BE(at);
    const vlen = b.readUInt32BE(at + 4 + klen);
    const end = at + 8 + klen + vlen;
    if (end > length) throw new Error(`a pair framed past the batch's end (${end} > ${length})`);
    sum.add(b.subarray(at + 4, at + 4 + klen), b.subarray(at + 8 + klen, end));
    at = end;
  }
  return sum.state();
}

interface Pending { resolve: (sum: Uint8Array) => void; reject: (e: Error) => void }

/** One hash thread and its batches in flight. */
class HashThread {
  private readonly worker = spawnHashThread();
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private failure: Error | null = null;

  constructor() {
    this.worker.on("message", (r: HashReply) => this.settle(r));
    this.worker.on("error", (err) => this.failAll(new Error(`a hash thread failed: ${err.message}`)));
    this.worker.on("exit", (code) => this.failAll(new Error(`a hash thread exited (code ${code})`)));
  }

  get inFlight(): number {
    return this.pending.size;
  }

  /** The partial LtHash sum of the pairs framed in `batch[0, length)`; the buffer is transferred. */
  hash(batch: ArrayBuffer, length: number): Promise<Uint8Array> {
    if (this.failure !== null) return Promise.reject(this.failure);
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.postMessage({ id, batch, length } satisfies HashRequest, [batch]);
    });
  }

  async stop(): Promise<void> {
    this.failAll(new Error("the hash thread was stopped"));
    await this.worker.terminate();
  }

  private settle(r: HashReply): void {
    const p = this.pending.get(r.id);
    if (p === undefined) return;
    this.pending.delete(r.id);
    if ("error" in r) p.reject(new Error(`a hash thread refused a batch: ${r.error}`));
    else p.resolve(r.sum);
  }

  private failAll(err: Error): void {
    this.failure ??= err;
    for (const p of this.pending.values()) p.reject(err);
    this.pending.clear();
  }
}

/**
 * See the file comment. The threads start with the first full batch: a
 * state smaller than one batch is hashed in line at total(), no thread
 * started. close() must end every use.
 */
export class WorkerPairHasher implements ImportHasher {
  private threads: HashThread[] = [];
  private readonly sum = new LtHash();
  private readonly inFlight = new Set<Promise<void>>();
  private batch = new ArrayBuffer(BATCH_BYTES);
  private at = 0;
  private failure: Error | null = null;
  private closed = false;

  constructor(private readonly threadCount = defaultHashThreads()) {
    if (!(threadCount >= 1)) throw new Error(`a WorkerPairHasher of ${threadCount} threads`);
  }

  add(key: Uint8Array, value: Uint8Array): void {
    this.throwIfFailed();
    const need = 8 + key.length + value.length;
    if (this.at + need > this.batch.byteLength) this.flush(need);
    const b = Buffer.from(this.batch);
    b.writeUInt32BE(key.length, this.at);
    b.set(key, this.at + 4);
    b.writeUInt32BE(value.length, this.at + 4 + key.length);
    b.set(value, this.at + 8 + key.length);
    this.at += need;
  }

  async ready(): Promise<void> {
    while (this.inFlight.size >= IN_FLIGHT_PER_THREAD * this.threadCount) await Promise.race(this.inFlight);
    this.throwIfFailed();
  }

  async total(): Promise<Uint8Array> {
    if (this.threads.length === 0) this.sum.addState(hashBatch(this.batch, this.at));
    else this.flush(0);
    this.at = 0;
    await Promise.all(this.inFlight);
    this.throwIfFailed();
    return this.sum.state();
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.all(this.threads.map((t) => t.stop()));
  }

  /** Sends the batch so far (if any) and starts one with room for `need` bytes. */
  private flush(need: number): void {
    if (this.at > 0) this.send(this.batch, this.at);
    this.batch = new ArrayBuffer(Math.max(BATCH_BYTES, need));
    this.at = 0;
  }

  private send(batch: ArrayBuffer, length: number): void {
    if (this.closed) throw new Error("the pair hasher is closed");
    if (this.threads.length === 0) this.threads = Array.from({ length: this.threadCount }, () => new HashThread());
    const t = this.threads.reduce((a, b) => (b.inFlight < a.inFlight ? b : a));
    const done: Promise<void> = t.hash(batch, length).then(
      (partial) => this.sum.addState(partial),
      (err: Error) => { this.failure ??= err; },
    ).finally(() => this.inFlight.delete(done));
    this.inFlight.add(done);
  }

  private throwIfFailed(): void {
    if (this.failure !== null) throw this.failure;
  }
}
