// The vault's store (docs/vault.md §4): an ordered map of byte keys to byte
// values through which the state machine reads and writes all replicated
// state. The state machine is the only writer of its keys; the node writes
// node-local pairs beside them, past the replicated keys (keys.ts
// LOCAL_PREFIX).
//
// Contracts of every implementation:
// - get sees every put and delete made before it (read-your-writes),
//   whether or not the implementation has committed them anywhere.
// - scan yields the pairs with start <= key < end in ascending unsigned
//   byte order of the keys, including writes not yet committed.
// - An iteration of scan stopped early must be closed (for-of with break or
//   return closes it; firstPair below): the disk store holds a read
//   transaction for an open iteration, and iterations left open exhaust its
//   readers (a node died of MDB_READERS_FULL that way, evicting one request
//   id per entry with next() once the table was full).
// - Keys and values handed to put are owned by the store afterwards (the
//   caller does not mutate them); arrays returned by get and scan must not
//   be mutated by the caller.
// - The state machine writes the applied index with the changes of each
//   entry, so the content of a store is a function of its applied index.
//   Atomicity and durability are the implementation's: MemoryStore has
//   neither (the simulation and unit tests); node/storage's disk store
//   commits the writes of a batch of entries in one transaction.
export interface VaultStore {
  get(key: Uint8Array): Uint8Array | undefined;
  put(key: Uint8Array, value: Uint8Array): void;
  delete(key: Uint8Array): void;
  scan(start: Uint8Array, end: Uint8Array): Iterable<readonly [Uint8Array, Uint8Array]>;
}

/** The first pair with start <= key < end, or undefined; the iteration is closed (the contract above). */
export function firstPair(store: VaultStore, start: Uint8Array, end: Uint8Array): readonly [Uint8Array, Uint8Array] | undefined {
  for (const pair of store.scan(start, end)) return pair;
  return undefined;
}

/** The in-memory store: a Map by latin1 key string; scan sorts (O(n log n): for tests and the simulation). */
export class MemoryStore implements VaultStore {
  private readonly pairs = new Map<string, readonly [Uint8Array, Uint8Array]>();

  get size(): number {
    return this.pairs.size;
  }

  get(key: Uint8Array): Uint8Array | undefined {
    return this.pairs.get(keyString(key))?.[1];
  }

  put(key: Uint8Array, value: Uint8Array): void {
    this.pairs.set(keyString(key), [key, value]);
  }

  delete(key: Uint8Array): void {
    this.pairs.delete(keyString(key));
  }

  *scan(start: Uint8Array, end: Uint8Array): Generator<readonly [Uint8Array, Uint8Array]> {
    const [lo, hi] = [keyString(start), keyString(end)];
    const keys = [...this.pairs.keys()].filter((k) => k >= lo && k < hi).sort();
    for (const k of keys) {
      const pair = this.pairs.get(k);
      if (pair !== undefined) yield pair;
    }
  }
}

/** latin1 strings compare like the unsigned bytes they spell. */
function keyString(key: Uint8Array): string {
  return Buffer.from(key.buffer, key.byteOffset, key.byteLength).toString("latin1");
}
