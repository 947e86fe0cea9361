// Small filesystem helpers with the durability steps spelled out.

import { open, readdir } from "node:fs/promises";

/** fsyncs a directory so that creates, renames and unlinks in it are durable. */
export async function fsyncDir(dir: string): Promise<void> {
  const fh = await open(dir, "r");
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** Names in `dir` matching `re`, with their capture groups. */
export async function listMatching(dir: string, re: RegExp): Promise<{ name: string; groups: string[] }[]> {
  const out: { name: string; groups: string[] }[] = [];
  for (const name of await readdir(dir)) {
    const m = re.exec(name);
    if (m) out.push({ name, groups: m.slice(1) });
  }
  return out;
}

/**
 * Writes all of `buf` through `write(offset, length)`, which writes
 * `buf[offset, offset + length)` and resolves with the bytes it wrote:
 * write(2) may write fewer than asked, so it is called until none is left.
 */
export async function writeFully(buf: Uint8Array, write: (offset: number, length: number) => Promise<number>): Promise<void> {
  for (let done = 0; done < buf.length;) done += await write(done, buf.length - done);
}

export function hex16(n: number): string {
  return n.toString(16).padStart(16, "0");
}
