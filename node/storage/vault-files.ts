// VaultFiles: the vault store's directory (docs/storage.md, "The vault
// store"). One store is current; a snapshot received from another node is
// written into a store of its own (staged) and becomes current in one atomic
// step, never by rewriting the current one in place.
//
// Layout under `dir` (<dataDir>/vault):
//   CURRENT                 "<generation>\n": the current store
//   <16-hex generation>/    one LmdbVaultStore (data.mdb, lock.mdb)
//   <generation>/STAGED     JSON {index, term, appliedIndex, digest}: this store holds, complete and
//                           verified, the Raft snapshot (index, term); written after its last commit
// CURRENT and STAGED are written to a .tmp file, fsynced, renamed, and the
// directory fsynced. promote() is the atomic swap: one rename of CURRENT.
// A generation's directory entries are durable before anything relies on its
// store: once opened (lmdb creates data.mdb and lock.mdb then; its commits
// fsync data.mdb's contents, never its entry), the generation directory and
// `dir` are fsynced (openGeneration).
//
// open() keeps the current store and every staged one (the caller promotes
// the one a Raft snapshot on disk names, or discards them) and deletes every
// other generation: an unfinished staging, a store replaced by a promotion.
import { mkdir, open as openFile, readFile, readdir, rename, rm } from "node:fs/promises";
import { join } from "node:path";
import { StorageError } from "./errors.js";
import { fsyncDir, hex16 } from "./fsutil.js";
import { LmdbVaultStore } from "./vault-store.js";

/** A store that holds the vault state at a Raft snapshot. */
export interface StagedSnapshot {
  /** The Raft snapshot's index and term. */
  readonly index: number;
  readonly term: number;
  /** The state's applied index and digest, as verified when it was written. */
  readonly appliedIndex: number;
  readonly digest: Uint8Array;
}

interface Generation {
  readonly gen: number;
  readonly store: LmdbVaultStore;
}

const GEN_RE = /^[0-9a-f]{16}$/;

export class VaultFiles {
  private readonly staged = new Map<number, Generation & { readonly snap: StagedSnapshot }>();
  private retired: Generation | null = null;
  private nextGen: number;

  private constructor(readonly dir: string, private current: Generation, staged: ReadonlyArray<Generation & { snap: StagedSnapshot }>) {
    for (const s of staged) this.staged.set(s.snap.index, s);
    this.nextGen = Math.max(current.gen, ...staged.map((s) => s.gen)) + 1;
  }

  /** Opens (creating if needed) the store directory; see the file comment for what it keeps. */
  static async open(dir: string): Promise<VaultFiles> {
    await mkdir(dir, { recursive: true });
    const current = await readCurrent(dir);
    const staged: Array<Generation & { snap: StagedSnapshot }> = [];
    for (const name of await readdir(dir)) {
      if (name === "CURRENT") continue;
      const gen = GEN_RE.test(name) ? parseInt(name, 16) : -1; // -1: a CURRENT.tmp left by a crash
      if (gen === current) continue;
      const snap = gen > current ? await readStaged(join(dir, name)) : null;
      if (snap !== null) staged.push({ gen, snap, store: await LmdbVaultStore.open(join(dir, name)) });
      else await rm(join(dir, name), { recursive: true, force: true });
    }
    const store = await openGeneration(dir, current); // also fsyncs dir: the deletions above
    await writeAtomic(dir, "CURRENT", `${hex16(current)}\n`);
    return new VaultFiles(dir, { gen: current, store }, staged);
  }

  /** The current store. */
  get store(): LmdbVaultStore {
    return this.current.store;
  }

  /** The staged snapshot at Raft index `index`, if any. */
  stagedAt(index: number): StagedSnapshot | undefined {
    return this.staged.get(index)?.snap;
  }

  /** The store of the staged snapshot at `index`, for judging it again before install (read only). */
  stagedStore(index: number): LmdbVaultStore | undefined {
    return this.staged.get(index)?.store;
  }

  /** Indices of the staged snapshots. */
  stagedIndices(): number[] {
    return [...this.staged.keys()].sort((a, b) => a - b);
  }

  /**
   * Writes a new store for Raft snapshot (index, term): `fill` writes the
   * state into the fresh store (committing as it goes, to bound memory) and
   * returns its applied index and digest once verified. The store is then
   * committed and marked staged. A fill that throws leaves nothing behind.
   */
  async stage(index: number, term: number, fill: (store: LmdbVaultStore) => Promise<{ appliedIndex: number; digest: Uint8Array }>): Promise<StagedSnapshot> {
    const have = this.staged.get(index);
    if (have !== undefined && have.snap.term === term) return have.snap;
    const gen = this.nextGen++;
    const path = join(this.dir, hex16(gen));
    let store: LmdbVaultStore | undefined;
    try {
      store = await openGeneration(this.dir, gen);
      const ref = await fill(store);
      await store.commit();
      const snap: StagedSnapshot = { index, term, appliedIndex: ref.appliedIndex, digest: ref.digest.slice() };
      await writeAtomic(path, "STAGED", JSON.stringify({ ...snap, digest: Buffer.from(snap.digest).toString("hex") }));
      await this.discard(index);
      this.staged.set(index, { gen, store, snap });
      return snap;
    } catch (err) {
      await store?.close().catch(() => undefined);
      await rm(path, { recursive: true, force: true });
      throw err;
    }
  }

  /**
   * Makes the staged snapshot at `index` the current store (the atomic swap:
   * CURRENT renamed over). The replaced store stays open until
   * closeRetired(), so that readers of it can be moved first; staged
   * snapshots older than `index` are discarded.
   */
  async promote(index: number): Promise<void> {
    const next = this.staged.get(index);
    if (next === undefined) throw new StorageError(`vault store: no staged snapshot at index ${index} (staged: ${this.stagedIndices().join(", ") || "none"})`);
    if (this.retired !== null) throw new StorageError("vault store: promote before the previous store was retired");
    await writeAtomic(this.dir, "CURRENT", `${hex16(next.gen)}\n`);
    this.staged.delete(index);
    this.retired = this.current;
    this.current = { gen: next.gen, store: next.store };
    for (const i of this.stagedIndices()) if (i < index) await this.discard(i);
  }

  /** Closes and deletes the store replaced by the last promote(). */
  async closeRetired(): Promise<void> {
    const old = this.retired;
    this.retired = null;
    if (old === null) return;
    await old.store.close();
    await rm(join(this.dir, hex16(old.gen)), { recursive: true, force: true });
    await fsyncDir(this.dir);
  }

  /** Closes and deletes the staged snapshot at `index` (if any). */
  async discard(index: number): Promise<void> {
    const s = this.staged.get(index);
    if (s === undefined) return;
    this.staged.delete(index);
    await s.store.close();
    await rm(join(this.dir, hex16(s.gen)), { recursive: true, force: true });
  }

  /** Closes every store (the directory stays as it is). */
  async close(): Promise<void> {
    await this.closeRetired();
    for (const s of this.staged.values()) await s.store.close();
    this.staged.clear();
    await this.current.store.close();
  }
}

/**
 * Opens (creating if needed) generation `gen`'s store in `dir`, then fsyncs
 * the generation directory (the entries of data.mdb and lock.mdb, which lmdb
 * creates on open) and `dir` (the generation's entry): a power loss after a
 * commit to it resolved cannot lose the file the commit went to.
 */
async function openGeneration(dir: string, gen: number): Promise<LmdbVaultStore> {
  const path = join(dir, hex16(gen));
  const store = await LmdbVaultStore.open(path);
  try {
    await fsyncDir(path);
    await fsyncDir(dir);
  } catch (err) {
    await store.close().catch(() => undefined);
    throw err;
  }
  return store;
}

async function readCurrent(dir: string): Promise<number> {
  let text: string;
  try {
    text = await readFile(join(dir, "CURRENT"), "latin1");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return 1;
    throw err;
  }
  const name = text.trim();
  if (!GEN_RE.test(name)) throw new StorageError(`vault store: ${join(dir, "CURRENT")} does not name a generation (${JSON.stringify(name.slice(0, 40))})`);
  return parseInt(name, 16);
}

async function readStaged(dir: string): Promise<StagedSnapshot | null> {
  let raw: unknown;
  try {
    raw = JSON.parse(await readFile(join(dir, "STAGED"), "utf8"));
  } catch {
    return null; // unfinished (or unreadable): not a staged snapshot
  }
  const o = raw as Record<string, unknown>;
  const ok = [o.index, o.term, o.appliedIndex].every((v) => Number.isSafeInteger(v) && (v as number) >= 0) && typeof o.digest === "string" && /^[0-9a-f]{2,128}$/.test(o.digest);
  if (!ok) return null;
  return { index: o.index as number, term: o.term as number, appliedIndex: o.appliedIndex as number, digest: new Uint8Array(Buffer.from(o.digest as string, "hex")) };
}

/** Writes dir/name durably and atomically (tmp file, fdatasync, rename, directory fsync). */
async function writeAtomic(dir: string, name: string, text: string): Promise<void> {
  const tmp = join(dir, `${name}.tmp`);
  const fh = await openFile(tmp, "w");
  try {
    await fh.writeFile(text);
    await fh.datasync();
  } finally {
    await fh.close();
  }
  await rename(tmp, join(dir, name));
  await fsyncDir(dir);
}
