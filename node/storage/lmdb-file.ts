// A check of an lmdb data file before lmdb maps it. lmdb reads its pages
// through a memory map: a data.mdb shorter than its last commit needs (a
// copy or restore cut short, a file truncated by hand) ends the process with
// SIGBUS or SIGSEGV at the first read of a missing page, with no line saying
// why. The two meta pages at the start name the page size and the last page
// the newer commit uses; a file shorter than that, or without the meta
// pages, is refused with a StorageError that names it.
import { closeSync, fstatSync, openSync, readSync } from "node:fs";
import { join } from "node:path";
import { StorageError } from "./errors.js";

const MAGIC = 0xbeefc0de;
/** Page header sizes: lmdb-js's LMDB (with a page txnid) and classic LMDB 0.9. */
const HEADER_SIZES = [24, 16] as const;

interface Meta {
  readonly pageSize: number;
  readonly lastPage: bigint;
  readonly txnId: bigint;
}

/** The meta of the page starting at byte `page`; undefined without lmdb's magic. */
function metaAt(buf: Buffer, page: number): Meta | undefined {
  for (const h of HEADER_SIZES) {
    const m = page + h;
    if (buf.length < m + 136 || buf.readUInt32LE(m) !== MAGIC) continue;
    // magic, version (u32 each), address, mapsize (u64 each), then the free DB's md_pad: the page size.
    return { pageSize: buf.readUInt32LE(m + 24), lastPage: buf.readBigUInt64LE(m + 120), txnId: buf.readBigUInt64LE(m + 128) };
  }
  return undefined;
}

/** The first `bytes` of `file` and its size; null when it does not exist. */
function readHead(file: string, bytes: number): { head: Buffer; size: number } | null {
  let fd: number;
  try {
    fd = openSync(file, "r");
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return null;
    throw new StorageError(`${file} cannot be opened (${(err as NodeJS.ErrnoException).code ?? "error"})`);
  }
  try {
    const head = Buffer.alloc(bytes);
    const n = readSync(fd, head, 0, bytes, 0);
    return { head: head.subarray(0, n), size: fstatSync(fd).size };
  } catch (err) {
    throw new StorageError(`${file} cannot be read (${(err as NodeJS.ErrnoException).code ?? "error"})`);
  } finally {
    closeSync(fd);
  }
}

/**
 * Throws a StorageError when `dir`/data.mdb exists, is not empty, and is
 * not a whole lmdb file: no meta page, or shorter than its newer meta says.
 * An absent or empty file is lmdb's to create.
 */
export function checkLmdbDataFile(dir: string, what: string): void {
  const file = join(dir, "data.mdb");
  const probe = readHead(file, 65536 + 256);
  if (probe === null || probe.size === 0) return;
  const first = metaAt(probe.head, 0);
  if (first === undefined || !validPageSize(first.pageSize)) throw unusable(what, file, "has no lmdb meta page at its start");
  const second = metaAt(probe.head, first.pageSize);
  const newer = second !== undefined && second.txnId > first.txnId ? second : first;
  const needed = (newer.lastPage + 1n) * BigInt(newer.pageSize);
  if (BigInt(probe.size) < needed) throw unusable(what, file, `is ${probe.size} bytes, shorter than the ${needed} its last commit uses (truncated)`);
}

function validPageSize(n: number): boolean {
  return n >= 512 && n <= 65536 && (n & (n - 1)) === 0;
}

function unusable(what: string, file: string, why: string): StorageError {
  return new StorageError(`${what}: ${file} ${why}: the file is damaged; keep the data dir for analysis and rebuild this node from the cluster (docs/operations.md, "A node that does not start")`);
}
