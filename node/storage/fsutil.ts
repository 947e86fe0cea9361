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

export function hex16(n: number): string {
  return n.toString(16).padStart(16, "0");
}
