// Snapshot files: snap/<16-hex term>-<16-hex index>.snap
//
//   magic u32 "BSNP" | version u16 | kind u8 | index u64 | term u64 |
//   confState (u32 n, n x u64 voters, u32 m, m x u64 learners) |
//   dataLen u64 | data | SHA-256 (32 bytes) over everything before it
//
// Written to <name>.tmp, fdatasynced, renamed into place, directory fsynced:
// a crash leaves either the old set of snapshots or the new one, plus at most
// a .tmp file that open() deletes.

import { createHash } from "node:crypto";
import { open, readFile, rename, unlink } from "node:fs/promises";
import { join } from "node:path";
import type { Snapshot } from "../raft/index.js";
import { InvalidEncodingError } from "../../proto/crypto/index.js";
import { readConfState, storageReader, storageWriter, writeConfState } from "./codec.js";
import { SnapshotCorruptError } from "./errors.js";
import { fsyncDir, hex16, listMatching } from "./fsutil.js";

const SNAP_MAGIC = 0x504e_5342; // "BSNP" read as u32 LE
const SNAP_VERSION = 1;
const DIGEST = 32;
const SNAP_RE = /^([0-9a-f]{16})-([0-9a-f]{16})\.snap$/;
/** A snapshot file's name, kept or renamed corrupt. */
const SNAP_FILE_RE = /^([0-9a-f]{16})-([0-9a-f]{16})\.snap(\.corrupt)?$/;
const TMP_RE = /^.*\.snap\.tmp$/;

export enum SnapshotKind {
  /** Taken locally by createSnapshot: the log continues after it. */
  Local = 0,
  /** Received from the leader: the log restarts after it. */
  Installed = 1,
}

export interface StoredSnapshot {
  readonly snapshot: Snapshot;
  readonly kind: SnapshotKind;
  readonly file: string;
}

export interface SnapshotFileName {
  readonly name: string;
  readonly term: number;
  readonly index: number;
}

export function snapshotName(term: number, index: number): string {
  return `${hex16(term)}-${hex16(index)}.snap`;
}

function encodeHeader(snap: Snapshot, kind: SnapshotKind): Uint8Array {
  const w = storageWriter(64).u32(SNAP_MAGIC).u16(SNAP_VERSION).u8(kind);
  w.u64(snap.metadata.index).u64(snap.metadata.term);
  writeConfState(w, snap.metadata.confState);
  return w.u64(snap.data.length).bytes();
}

export function decodeSnapshotFile(buf: Uint8Array, file: string): StoredSnapshot {
  if (buf.length < DIGEST) throw new SnapshotCorruptError(file, `file of ${buf.length} bytes is too short`);
  const body = buf.subarray(0, buf.length - DIGEST);
  const digest = createHash("sha256").update(body).digest();
  if (!digest.equals(buf.subarray(buf.length - DIGEST))) throw new SnapshotCorruptError(file, "SHA-256 mismatch");
  try {
    const r = storageReader(body, "a snapshot file");
    if (r.u32() !== SNAP_MAGIC) throw new InvalidEncodingError("bad magic");
    const version = r.u16();
    if (version !== SNAP_VERSION) throw new InvalidEncodingError(`unsupported version ${version}`);
    const kind = r.u8();
    if (kind !== SnapshotKind.Local && kind !== SnapshotKind.Installed) throw new InvalidEncodingError(`bad kind ${kind}`);
    const index = r.safeU64();
    const term = r.safeU64();
    const confState = readConfState(r);
    const data = r.fixed(r.safeU64());
    r.end();
    return { snapshot: { metadata: { index, term, confState }, data }, kind, file };
  } catch (e) {
    if (e instanceof InvalidEncodingError) throw new SnapshotCorruptError(file, e.message);
    throw e;
  }
}

export class Snapshotter {
  constructor(
    private readonly dir: string,
    private readonly warn: (msg: string) => void,
  ) {}

  /** Durably writes `snap` (tmp file, fdatasync, rename, directory fsync). Returns the file name. */
  async save(snap: Snapshot, kind: SnapshotKind): Promise<string> {
    const name = snapshotName(snap.metadata.term, snap.metadata.index);
    const tmp = join(this.dir, `${name}.tmp`);
    const header = encodeHeader(snap, kind);
    const digest = createHash("sha256").update(header).update(snap.data).digest();
    const fh = await open(tmp, "w");
    try {
      const total = header.length + snap.data.length + DIGEST;
      const { bytesWritten } = await fh.writev([header, snap.data, digest]);
      if (bytesWritten !== total) throw new Error(`short snapshot write: ${bytesWritten} of ${total} bytes`);
      await fh.datasync();
    } finally {
      await fh.close();
    }
    await rename(tmp, join(this.dir, name));
    await fsyncDir(this.dir);
    return name;
  }

  /** Snapshot files sorted by index, oldest first. */
  async list(): Promise<SnapshotFileName[]> {
    const files = (await listMatching(this.dir, SNAP_RE)).map(({ name, groups }) => ({
      name,
      term: parseInt(groups[0]!, 16),
      index: parseInt(groups[1]!, 16),
    }));
    return files.sort((a, b) => a.index - b.index || a.term - b.term);
  }

  /** Whether any snapshot file is here, verified or not (a corrupt one renamed <name>.corrupt counts too). */
  async anyFiles(): Promise<boolean> {
    return (await listMatching(this.dir, SNAP_FILE_RE)).length > 0;
  }

  /**
   * The newest snapshot that verifies, or null. A corrupt file is renamed to
   * <name>.corrupt (kept for inspection, no longer counted) with a warning.
   */
  async loadNewest(): Promise<StoredSnapshot | null> {
    for (const f of (await this.list()).reverse()) {
      try {
        return await this.load(f);
      } catch (e) {
        if (!(e instanceof SnapshotCorruptError)) throw e;
        this.warn(`${e.message}; renamed to ${f.name}.corrupt, falling back to an older snapshot`);
        await rename(join(this.dir, f.name), join(this.dir, `${f.name}.corrupt`));
        await fsyncDir(this.dir);
      }
    }
    return null;
  }

  /** Deletes all but the newest `keep` snapshot files; returns the indices kept, oldest first. */
  async retain(keep: number): Promise<number[]> {
    const files = await this.list();
    const drop = files.slice(0, Math.max(0, files.length - keep));
    for (const f of drop) await unlink(join(this.dir, f.name));
    if (drop.length > 0) await fsyncDir(this.dir);
    return files.slice(drop.length).map((f) => f.index);
  }

  /** Removes *.snap.tmp files left by a crash during save(). */
  async removeTemporaries(): Promise<void> {
    const tmps = await listMatching(this.dir, TMP_RE);
    for (const t of tmps) await unlink(join(this.dir, t.name));
    if (tmps.length > 0) await fsyncDir(this.dir);
  }

  private async load(f: SnapshotFileName): Promise<StoredSnapshot> {
    const path = join(this.dir, f.name);
    const stored = decodeSnapshotFile(await readFile(path), path);
    const md = stored.snapshot.metadata;
    if (md.index !== f.index || md.term !== f.term) {
      throw new SnapshotCorruptError(path, `contents (term ${md.term}, index ${md.index}) do not match the file name`);
    }
    return stored;
  }
}
