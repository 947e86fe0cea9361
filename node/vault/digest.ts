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
const DIGEST_PREFIX = Buffer.from("bkv-lthash16", "latin1");
const EMPTY = new Uint8Array(0);

// Lanes are read and written through Uint16Array views: the bytes are little-endian only on such a host.
if (new Uint8Array(Uint16Array.of(1).buffer)[0] !== 1) throw new VaultInvariantError("the LtHash state digest needs a little-endian host");

/** SHAKE256(u32 key length || key || value), 2048 bytes, as 1024 u16 lanes. */
export function pairHash(key: Uint8Array, value: Uint8Array): Uint16Array {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(key.length);
  const h = createHash("shake256", { outputLength: LTHASH_BYTES }).update(len).update(key).update(value).digest();
  return new Uint16Array(h.buffer, h.byteOffset, LANES);
}

export class LtHash {
  private readonly lanes = new Uint16Array(LANES);

  /** `initial`: a state() of another LtHash (2048 bytes), or nothing for the hash of the empty set. */
  constructor(initial?: Uint8Array) {
    if (initial === undefined) return;
    if (initial.length !== LTHASH_BYTES) throw new VaultInvariantError(`an LtHash state of ${initial.length} bytes, not ${LTHASH_BYTES}`);
    new Uint8Array(this.lanes.buffer).set(initial);
  }

  add(key: Uint8Array, value: Uint8Array): void {
    const h = pairHash(key, value);
    for (let i = 0; i < LANES; i++) this.lanes[i] = (this.lanes[i]! + h[i]!) & 0xffff;
  }

  remove(key: Uint8Array, value: Uint8Array): void {
    const h = pairHash(key, value);
    for (let i = 0; i < LANES; i++) this.lanes[i] = (this.lanes[i]! - h[i]!) & 0xffff;
  }

  /** The state (a copy, 2048 bytes): what the store keeps. */
  state(): Uint8Array {
    return new Uint8Array(this.lanes.buffer.slice(0));
  }

  /** SHA-256("bkv-lthash16" || state || suffix): with the counters' values as `suffix`, the reported digest. */
  digest(suffix: Uint8Array = EMPTY): Uint8Array {
    return new Uint8Array(createHash("sha256").update(DIGEST_PREFIX).update(this.lanes).update(suffix).digest());
  }
}
