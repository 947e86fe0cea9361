// LmdbVaultStore: the vault's store on disk (docs/storage.md, "The vault
// store"). It has the shape of node/vault's VaultStore (get, put, delete,
// scan; structural: node/storage does not import node/vault) over one LMDB
// environment in `dir` (data.mdb, lock.mdb), binary keys and values, no
// compression, keys in unsigned byte order (LMDB's default memcmp order).
//
// Contracts:
// - put and delete go to an in-memory overlay; get and scan see it
//   (read-your-writes). commit() writes the overlay's entries as ONE LMDB
//   transaction; each resolves once its transaction is durable (fsynced:
//   overlappingSync off). An entry stays in the overlay until the commit that
//   wrote it resolved.
// - Commits settle in call order, and a batch is handed to lmdb only once
//   every earlier commit resolved: the store on disk is always a prefix of
//   the commits (never commit n+1 without commit n, whose entries a restart
//   would then skip as applied).
// - A crash loses at most the writes whose commit had not resolved; it never
//   leaves a half-written commit (LMDB's copy-on-write B+tree).
// - view() is a consistent read of the last committed state (one LMDB read
//   transaction, held until release()); it never sees the overlay. A held
//   view keeps the pages it reads from being reused: release it.
// - A failed commit (or a rejected `after`) poisons the store: every later
//   commit rejects, none of them is written, and every later call throws
//   StorageFailedError (the state on disk is the last commit that resolved).
import { mkdir, stat } from "node:fs/promises";
import { join } from "node:path";
import { open, type RootDatabase, type Transaction } from "lmdb";
import { StorageFailedError } from "./errors.js";
import { checkLmdbDataFile } from "./lmdb-file.js";

/** A read of the store fixed at one commit. */
export interface StoreView {
  get(key: Uint8Array): Uint8Array | undefined;
  scan(start: Uint8Array, end: Uint8Array): Iterable<readonly [Uint8Array, Uint8Array]>;
  /** Ends the read transaction; the view must not be used afterwards. Idempotent. */
  release(): void;
}

export interface VaultStoreStats {
  /** Size of data.mdb on disk. */
  readonly fileBytes: number;
  /** Pairs committed. */
  readonly entries: number;
  /** Pages of the file in use (B+tree and overflow pages plus free list), in bytes: the part the page cache holds when hot. */
  readonly usedBytes: number;
  /** Address space reserved for the memory map. */
  readonly mapBytes: number;
  /** Uncommitted entries in the overlay. */
  readonly overlayEntries: number;
  /** Read views held. */
  readonly views: number;
  /** LMDB read transactions open in the environment (views, and reads under way): of MAX_READERS. */
  readonly readers: number;
}

interface Pending {
  readonly key: Uint8Array;
  /** null: deleted. */
  readonly value: Uint8Array | null;
}

/** The LMDB file of a store directory. */
export const DATA_FILE = "data.mdb";
export const LOCK_FILE = "lock.mdb";
/** LMDB read transactions the store may hold at once (its reader table); past it a read fails with MDB_READERS_FULL. */
export const MAX_READERS = 126;

export class LmdbVaultStore {
  /** Every uncommitted or committing write, by latin1 key; the newest write of a key wins. */
  private readonly overlay = new Map<string, Pending>();
  /** Writes since the last commit() call. */
  private open = new Map<string, Pending>();
  /** load()s since the last commit() call: outside the overlay. */
  private loads: Array<readonly [Uint8Array, Uint8Array]> = [];
  /** The newest commit's outcome: resolves once it and every earlier commit are durable, rejects if any of them failed. */
  private chain: Promise<void> = Promise.resolve();
  /** The newest commit's completion (never rejects). */
  private committing: Promise<void> = Promise.resolve();
  private failed: StorageFailedError | null = null;
  private closed = false;
  private views = 0;

  private constructor(private readonly db: RootDatabase<Buffer, Buffer>, readonly dir: string) {}

  /** Opens (creating if needed) the store in `dir`. */
  static async open(dir: string): Promise<LmdbVaultStore> {
    await mkdir(dir, { recursive: true });
    checkLmdbDataFile(dir, "vault store");
    // eventTurnBatching off: each batch() is its own transaction, and lmdb keeps no promise of its own for it
    // (with it on, lmdb's internal promise for the event turn's transaction rejected unhandled when the commit
    // failed, and Node exited before the failure was reported).
    const db = open<Buffer, Buffer>({
      path: dir, keyEncoding: "binary", encoding: "binary", compression: false,
      overlappingSync: false, eventTurnBatching: false, noMemInit: false, maxReaders: MAX_READERS,
    });
    return new LmdbVaultStore(db, dir);
  }

  get(key: Uint8Array): Uint8Array | undefined {
    this.check();
    const p = this.overlay.get(keyString(key));
    if (p !== undefined) return p.value ?? undefined;
    return this.db.get(asBuffer(key));
  }

  put(key: Uint8Array, value: Uint8Array): void {
    this.write({ key, value });
  }

  delete(key: Uint8Array): void {
    this.write({ key, value: null });
  }

  private write(p: Pending): void {
    this.checkWrite(p.key);
    const k = keyString(p.key);
    this.overlay.set(k, p);
    this.open.set(k, p);
  }

  /**
   * A put for a bulk import into a new store (a snapshot's pairs): kept out
   * of the overlay, so get() and scan() see it only once the commit() that
   * writes it has resolved. A put() or delete() of the same key in the same
   * commit wins over it. Costs an array push, not two map writes and a
   * string per key (an import makes millions).
   */
  load(key: Uint8Array, value: Uint8Array): void {
    this.checkWrite(key);
    this.loads.push([key, value]);
  }

  /** Pairs with start <= key < end in ascending byte order, the overlay merged over the committed state. */
  *scan(start: Uint8Array, end: Uint8Array): Generator<readonly [Uint8Array, Uint8Array]> {
    this.check();
    const [lo, hi] = [keyString(start), keyString(end)];
    const over = [...this.overlay].filter(([k]) => k >= lo && k < hi).sort((a, b) => (a[0] < b[0] ? -1 : 1));
    let i = 0;
    for (const pair of rangeOf(this.db, start, end, undefined)) {
      const k = keyString(pair[0]);
      for (; i < over.length && over[i]![0] <= k; i++) {
        const p = over[i]![1];
        if (p.value !== null) yield [p.key, p.value];
      }
      if (!this.overlay.has(k)) yield pair;
    }
    for (; i < over.length; i++) {
      const p = over[i]![1];
      if (p.value !== null) yield [p.key, p.value];
    }
  }

  /** Writes and loads since the last commit() (bounds the memory of a bulk load: commit when it grows). */
  get uncommitted(): number {
    return this.open.size + this.loads.length;
  }

  /**
   * Writes every put and delete since the last commit() as one transaction;
   * resolves once it is durable. With `after`, the batch is sealed now (later
   * writes go to the next commit) but written only once `after` resolved
   * (e.g. what must be durable before the store holds the batch).
   * Commits settle in call order: the batch is handed to lmdb only after
   * every earlier commit resolved, and if an earlier commit failed or `after`
   * rejects, this one rejects (StorageFailedError) without writing anything.
   * A commit with nothing to write and no `after` returns the newest
   * commit's outcome.
   */
  commit(after?: Promise<unknown>): Promise<void> {
    this.check();
    const [batch, loads] = [this.open, this.loads];
    this.open = new Map();
    this.loads = [];
    if (batch.size === 0 && loads.length === 0 && after === undefined) return this.chain;
    const written = this.turn(after)
      .then(() => this.writeBatch(batch, loads))
      .then(() => this.settle(batch), (err: unknown) => this.fail(err));
    this.chain = written;
    this.committing = written.catch(() => undefined);
    return written;
  }

  /**
   * Resolves when a batch sealed now may be written: the newest commit (so
   * every earlier one) resolved, then `after` resolved. Rejects, never before
   * the newest commit settled, if it failed or `after` rejects.
   */
  private turn(after: Promise<unknown> | undefined): Promise<unknown> {
    const previous = this.chain;
    if (after === undefined) return previous;
    after.catch(() => undefined); // observed once `previous` resolved; not an unhandled rejection meanwhile
    return previous.then(() => after);
  }

  /**
   * Hands one sealed batch to lmdb as one transaction; resolves once it is
   * durable. Called only once every earlier commit resolved; refuses to write
   * on a failed store all the same.
   */
  private async writeBatch(batch: ReadonlyMap<string, Pending>, loads: ReadonlyArray<readonly [Uint8Array, Uint8Array]>): Promise<void> {
    if (this.failed !== null) throw this.failed;
    if (batch.size === 0 && loads.length === 0) return;
    const db = this.db;
    // Inside a batch lmdb returns one shared, resolved promise for every write: the batch's promise carries the outcome.
    await db.batch(() => {
      for (const [k, v] of loads) void db.put(asBuffer(k), asBuffer(v));
      for (const p of batch.values()) {
        if (p.value === null) void db.remove(asBuffer(p.key));
        else void db.put(asBuffer(p.key), asBuffer(p.value));
      }
    });
  }

  /** The batch is durable: its entries leave the overlay unless a later write replaced them. */
  private settle(batch: ReadonlyMap<string, Pending>): void {
    this.db.resetReadTxn();
    for (const [k, p] of batch) if (this.overlay.get(k) === p) this.overlay.delete(k);
  }

  /**
   * A commit failed: the store refuses every later use at once, and the
   * commit rejects with the cause. lmdb's own rejection says only "Commit
   * failed (see commitError for details)"; its `commitError` promise rejects
   * with the cause (e.g. ENOSPC) once the write thread reports it, which is
   * awaited for at most CAUSE_WAIT_MS.
   */
  private async fail(err: unknown): Promise<never> {
    const failure = (why: string) => new StorageFailedError(`vault store commit failed, refusing further use: ${why}`);
    if (this.failed !== null) throw this.failed; // the first failure is the one reported
    this.failed = failure((err as Error).message);
    const cause = await commitCause(err);
    if (cause !== null) this.failed = failure(cause);
    throw this.failed;
  }

  /** A consistent read of the last committed state, held until release(). */
  view(): StoreView {
    this.check();
    const txn = this.db.useReadTransaction();
    const db = this.db;
    let live = true;
    this.views++;
    const alive = (): void => { if (!live) throw new Error("vault store view used after release"); };
    return {
      get: (key) => { alive(); return db.get(asBuffer(key), { transaction: txn }); },
      scan: function* (start, end) {
        alive();
        for (const pair of rangeOf(db, start, end, txn)) {
          alive(); // a release() during a scan ends it: the transaction is never read after done()
          yield pair;
        }
      },
      release: () => {
        if (!live) return;
        live = false;
        this.views--;
        txn.done();
      },
    };
  }

  async stats(): Promise<VaultStoreStats> {
    this.check();
    const s = this.db.getStats() as { pageSize: number; entryCount: number; lastPageNumber: number; mapSize: number };
    const file = await stat(join(this.dir, DATA_FILE)).catch(() => ({ size: 0 }));
    return {
      fileBytes: file.size, entries: s.entryCount, usedBytes: (s.lastPageNumber + 1) * s.pageSize,
      mapBytes: s.mapSize, overlayEntries: this.overlay.size, views: this.views, readers: this.readers(),
    };
  }

  /** LMDB read transactions open now (its reader table, one line per reader after a header). */
  readers(): number {
    this.check();
    return String(this.db.readerList()).split("\n").filter((line) => /^\s*\d+\s+[0-9a-f]+\s+\d+\s*$/.test(line)).length;
  }

  /** Waits for the commits in flight (uncommitted writes are dropped) and closes the environment. Idempotent. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.committing;
    await this.db.close();
  }

  /** check(), and a key LMDB can hold (not empty). */
  private checkWrite(key: Uint8Array): void {
    this.check();
    if (key.length === 0) throw new RangeError("vault store: empty key");
  }

  private check(): void {
    if (this.closed) throw new StorageFailedError("vault store is closed");
    if (this.failed !== null) throw this.failed;
  }
}

function* rangeOf(db: RootDatabase<Buffer, Buffer>, start: Uint8Array, end: Uint8Array, transaction: Transaction | undefined): Generator<readonly [Uint8Array, Uint8Array]> {
  const range = db.getRange({ start: asBuffer(start), end: asBuffer(end), ...(transaction !== undefined ? { transaction } : {}) });
  for (const { key, value } of range) yield [key, value];
}

/** latin1 strings compare like the unsigned bytes they spell. */
function keyString(key: Uint8Array): string {
  return asBuffer(key).toString("latin1");
}

function asBuffer(b: Uint8Array): Buffer {
  return Buffer.isBuffer(b) ? b : Buffer.from(b.buffer, b.byteOffset, b.byteLength);
}

/** How long a failed commit waits for lmdb to report its cause. */
const CAUSE_WAIT_MS = 2_000;

/** The message of a failed lmdb commit's cause (its `commitError` promise's rejection), or null if none came in time. */
async function commitCause(err: unknown): Promise<string | null> {
  const pending = (err as { commitError?: unknown } | null)?.commitError;
  if (!(pending instanceof Promise)) return null;
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<null>((resolve) => { timer = setTimeout(() => resolve(null), CAUSE_WAIT_MS); });
  const cause = pending.then(() => null, (e: unknown) => (e instanceof Error ? e.message : String(e)));
  try {
    return await Promise.race([cause, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
