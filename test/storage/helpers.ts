// Shared helpers for the storage tests: temp dirs and entries whose payload is
// derived from the index, so that any returned entry can be checked exactly.

import { type Entry, EntryType } from "../../node/raft/types.js";

export { tempDir } from "../temp.js";

/** Deterministic payload for index i (length 8..71, content mixes i and term). */
export function payloadFor(index: number, term = 1): Uint8Array {
  const out = new Uint8Array(8 + (index % 64));
  for (let j = 0; j < out.length; j++) out[j] = (index * 31 + term * 7 + j) & 0xff;
  return out;
}

export function entry(index: number, term = 1): Entry {
  return { index, term, type: EntryType.Normal, data: payloadFor(index, term) };
}

export function entries(from: number, to: number, term = 1): Entry[] {
  const out: Entry[] = [];
  for (let i = from; i <= to; i++) out.push(entry(i, term));
  return out;
}

export const quiet = { warn: () => {} };

/** Collects warnings instead of printing them. */
export function recordingLogger(): { warn(msg: string): void; messages: string[] } {
  const messages: string[] = [];
  return { warn: (m: string) => void messages.push(m), messages };
}

/** mulberry32: a small seeded PRNG returning integers in [0, n). */
export function prng(seed: number): (n: number) => number {
  let a = seed >>> 0;
  return (n) => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) % n;
  };
}

/** Key j of batch i in the vault store crash test: "b" || u32 i || u8 j. */
export function batchKey(i: number, j: number): Uint8Array {
  const k = Buffer.alloc(6);
  k.write("b", 0, "latin1");
  k.writeUInt32BE(i, 1);
  k[5] = j;
  return k;
}
