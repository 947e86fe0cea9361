// The state digest (docs/vault.md §4), maintained incrementally: the sum
// modulo 2^256 of SHA-256(u32 key length || key || value) over every pair
// of the store but the two digest pairs themselves ("mdigest", "mcontent").
// A put adds its pair's hash and subtracts the old pair's, a delete
// subtracts, so the digest costs O(1) per change and reading it is free.
// The store holds the same pairs on every node at the same applied index,
// so the digest is equal there, however the node got there (applied the
// entries, restored a snapshot, or converted a legacy snapshot).
//
// It detects divergence and corruption, not forgery: anyone who can write
// the pairs can compute their sum (docs/threat-model.md).
import { createHash } from "node:crypto";

export const DIGEST_BYTES = 32;
const MODULUS = 1n << 256n;

export function pairHash(key: Uint8Array, value: Uint8Array): bigint {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(key.length);
  return BigInt(`0x${createHash("sha256").update(len).update(key).update(value).digest("hex")}`);
}

export class DigestSum {
  private sum: bigint;

  constructor(initial?: Uint8Array) {
    this.sum = initial === undefined || initial.length === 0 ? 0n : BigInt(`0x${Buffer.from(initial).toString("hex")}`);
  }

  add(key: Uint8Array, value: Uint8Array): void {
    this.sum = (this.sum + pairHash(key, value)) % MODULUS;
  }

  remove(key: Uint8Array, value: Uint8Array): void {
    this.sum = (this.sum - pairHash(key, value) + MODULUS) % MODULUS;
  }

  bytes(): Uint8Array {
    return new Uint8Array(Buffer.from(this.sum.toString(16).padStart(2 * DIGEST_BYTES, "0"), "hex"));
  }
}
