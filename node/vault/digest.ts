// The state digest (docs/vault.md §4), maintained incrementally: an LtHash
// (Bellare–Micciancio's lattice hash with the parameters of Lewi et al.
// 2019, "Securing update propagation with homomorphic hashing") over every
// pair of the store but itself ("mdigest") and the u64 counters that nearly
// every entry rewrites (state.ts COUNTERS). Its state is 1024 lanes of u16 (2048 bytes, little-endian);
// a pair's hash is SHAKE256(u32 key length || key || value) read as 1024
// lanes; a put adds its pair's hash lane-wise mod 2^16 and subtracts the old
// pair's, a delete subtracts, so the digest costs O(1) per change and is
// independent of the order of changes. The store holds the same pairs on
// every node at the same applied index, so the digest is equal there,
// however the node got there (applied the entries, restored a snapshot, or
// converted a legacy snapshot).
//
// The 32-byte digest every node reports is SHA-256("bkv-lthash16" || state
// || the counters' values, u64 big-endian each): the counters are covered by
// value, which costs 40 bytes of SHA-256 instead of 2-3 SHAKE256 outputs of
// 2 KiB per entry.
// Unlike the sum of SHA-256 hashes mod 2^256 it replaced (an AdHash with a
// small modulus, open to Wagner's generalised birthday attack in ~2^31
// work), finding a set of pairs whose LtHash equals a given one is as hard
// as the lattice problem of Lewi et al. (~200 bits of security): a forger
// cannot make a forged state carry an honest state's digest
// (docs/decisions.md, "LtHash state digest").
import { createHash } from "node:crypto";
import { VaultInvariantError } from "./errors.js";

/** Bytes of the reported digest. */
export const DIGEST_BYTES = 32;
/** Bytes of the LtHash state kept in the store (1024 lanes of u16). */
export const LTHASH_BYTES = 2048;
const LANES = LTHASH_BYTES / 2;
const WORDS = LTHASH_BYTES / 4;
const DIGEST_PREFIX = Buffer.from("bkv-lthash16", "latin1");
const EMPTY = new Uint8Array(0);

// Lanes are read and written through Uint16Array and Uint32Array views: the bytes are little-endian only on such a host.
if (new Uint8Array(Uint16Array.of(1).buffer)[0] !== 1) throw new VaultInvariantError("the LtHash state digest needs a little-endian host");

/** SHAKE256(u32 key length || key || value), 2048 bytes, as 1024 u16 lanes. */
export function pairHash(key: Uint8Array, value: Uint8Array): Uint16Array {
  const h = shake(key, value);
  return new Uint16Array(h.buffer, h.byteOffset, LANES);
}

const keyLength = Buffer.alloc(4);

function shake(key: Uint8Array, value: Uint8Array): Buffer {
  keyLength.writeUInt32BE(key.length); // update() copies it: one buffer serves every call
  return createHash("shake256", { outputLength: LTHASH_BYTES }).update(keyLength).update(key).update(value).digest();
}

/** A pair's hash as 512 words of two lanes each (the digest's own bytes when aligned, else a copy). */
function pairWords(key: Uint8Array, value: Uint8Array): Uint32Array {
  return asWords(shake(key, value));
}

/** 2048 bytes as 512 words (their own memory when aligned, else a copy). */
function asWords(b: Uint8Array): Uint32Array {
  return b.byteOffset % 4 === 0 ? new Uint32Array(b.buffer, b.byteOffset, WORDS) : new Uint32Array(new Uint8Array(b).buffer);
}

// Two u16 lanes per u32 word, added (subtracted) lane-wise mod 2^16 without a
// carry (borrow) crossing from the low lane into the high one: the low 15 bits
// of each lane are summed with bit 15 kept clear (set, for a difference), and
// bit 15 is then fixed by the XOR of the operands' bits 15. Half the steps of
// a loop over u16 lanes; the bytes are the same (test/vault/digest.test.ts).
const LOW15 = 0x7fff7fff;
const HIGH = 0x80008000;

export class LtHash {
  /** The 1024 lanes as 512 words (little-endian host: the same bytes). */
  private readonly words = new Uint32Array(WORDS);

  /** `initial`: a state() of another LtHash (2048 bytes), or nothing for the hash of the empty set. */
  constructor(initial?: Uint8Array) {
    if (initial === undefined) return;
    if (initial.length !== LTHASH_BYTES) throw new VaultInvariantError(`an LtHash state of ${initial.length} bytes, not ${LTHASH_BYTES}`);
    new Uint8Array(this.words.buffer).set(initial);
  }

  add(key: Uint8Array, value: Uint8Array): void {
    this.addWords(pairWords(key, value));
  }

  /** Adds another LtHash's state() (2048 bytes): the hash of the union of their pairs (a partial sum computed elsewhere). */
  addState(other: Uint8Array): void {
    if (other.length !== LTHASH_BYTES) throw new VaultInvariantError(`an LtHash state of ${other.length} bytes, not ${LTHASH_BYTES}`);
    this.addWords(asWords(other));
  }

  private addWords(h: Uint32Array): void {
    const w = this.words;
    for (let i = 0; i < WORDS; i++) {
      const a = w[i]!;
      const b = h[i]!;
      w[i] = ((a & LOW15) + (b & LOW15)) ^ ((a ^ b) & HIGH);
    }
  }

  remove(key: Uint8Array, value: Uint8Array): void {
    const w = this.words;
    const h = pairWords(key, value);
    for (let i = 0; i < WORDS; i++) {
      const a = w[i]!;
      const b = h[i]!;
      w[i] = ((a | HIGH) - (b & LOW15)) ^ ((a ^ ~b) & HIGH);
    }
  }

  /** The state (a copy, 2048 bytes): what the store keeps. */
  state(): Uint8Array {
    return new Uint8Array(this.words.buffer.slice(0));
  }

  /** SHA-256("bkv-lthash16" || state || suffix): with the counters' values as `suffix`, the reported digest. */
  digest(suffix: Uint8Array = EMPTY): Uint8Array {
    return new Uint8Array(createHash("sha256").update(DIGEST_PREFIX).update(this.words).update(suffix).digest());
  }
}
