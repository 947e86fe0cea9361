// The recent state digests of this node, recorded after each applied Ready
// (one batch of committed entries), not after each entry: `bkv admin digests`
// compares nodes at an index every one of them recorded. Nodes batch
// differently under load, but each records the last index it applied before
// going idle, so a quiet cluster always has a common index.
//
// Cost: one VaultStateMachine.digest() per applied Ready: O(1), the vault
// keeps its digest incrementally (docs/vault.md §4).
export interface IndexedDigest {
  readonly index: number;
  readonly digest: Uint8Array;
}

export class StateDigestRing {
  private readonly ring: IndexedDigest[] = [];

  constructor(private readonly capacity = 64) {}

  /** Records the digest at `index` (ignored unless above the last recorded index). */
  record(index: number, digest: () => Uint8Array): void {
    const last = this.ring.at(-1);
    if (last !== undefined && index <= last.index) return;
    this.ring.push({ index, digest: digest() });
    if (this.ring.length > this.capacity) this.ring.shift();
  }

  /** Oldest first. */
  list(): readonly IndexedDigest[] {
    return this.ring;
  }
}
