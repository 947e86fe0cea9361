// The state digests of the last applied indexes (docs/vault.md §4, "Digest
// ring"): what a node vouches for when a peer asks for its digest at an
// index before installing a snapshot (docs/threat-model.md, "Closed: a
// forged InstallSnapshot resets a counter"). In memory only: a restart
// forgets it, so the node cannot vouch for indexes applied before.
//
// Invariant: digestAt(i) is the digest this state had right after applying
// index i, for the last `capacity` indexes recorded (index i lives in slot
// i mod capacity, so a newer index evicts exactly the one it replaces).
import { DIGEST_BYTES } from "./digest.js";
import { VaultInvariantError } from "./errors.js";

/** Indexes remembered by default. */
export const DEFAULT_DIGEST_WINDOW = 65_536;

export class DigestRing {
  private indexes: Float64Array | null = null;
  private digests: Uint8Array | null = null;
  private last = -1;

  constructor(readonly capacity = DEFAULT_DIGEST_WINDOW) {
    if (!Number.isSafeInteger(capacity) || capacity < 1) throw new VaultInvariantError(`a digest ring of ${String(capacity)} indexes`);
  }

  /** Records the digest after `index`; indexes are recorded in increasing order. */
  record(index: number, digest: Uint8Array): void {
    if (index <= this.last) throw new VaultInvariantError(`digest of index ${index} recorded after index ${this.last}`);
    if (digest.length !== DIGEST_BYTES) throw new VaultInvariantError(`a digest of ${digest.length} bytes`);
    // Allocated on first use (2.5 MiB at the default window): most states in tests record a handful.
    this.indexes ??= new Float64Array(this.capacity).fill(-1);
    this.digests ??= new Uint8Array(this.capacity * DIGEST_BYTES);
    const slot = index % this.capacity;
    this.indexes[slot] = index;
    this.digests.set(digest, slot * DIGEST_BYTES);
    this.last = index;
  }

  /** The digest right after `index` (a copy), or undefined when it was not recorded or was evicted. */
  digestAt(index: number): Uint8Array | undefined {
    if (!Number.isSafeInteger(index) || index < 0 || this.indexes === null || this.digests === null) return undefined;
    const slot = index % this.capacity;
    if (this.indexes[slot] !== index) return undefined;
    return this.digests.slice(slot * DIGEST_BYTES, (slot + 1) * DIGEST_BYTES);
  }
}
