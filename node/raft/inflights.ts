// Inflights: the MsgApp messages sent to one follower and not yet
// acknowledged, bounded by count and by bytes (etcd raft's tracker.Inflights).
// Entries are recorded by the last log index they carried, in increasing order.

import { RaftPanic } from "./types.js";

export class Inflights {
  private readonly indexes: number[] = [];
  private readonly sizes: number[] = [];
  private bytes = 0;

  /** maxBytes = 0 means no byte limit. */
  constructor(readonly maxCount: number, readonly maxBytes: number) {
    if (maxCount <= 0) throw new RaftPanic(`inflights: maxCount must be positive, got ${maxCount}`);
  }

  /** Records a message whose last entry is `index` carrying `size` bytes. */
  add(index: number, size: number): void {
    if (this.full()) throw new RaftPanic("inflights: add to a full window");
    const last = this.indexes[this.indexes.length - 1];
    if (last !== undefined && index <= last) {
      throw new RaftPanic(`inflights: index ${index} not above last inflight ${last}`);
    }
    this.indexes.push(index);
    this.sizes.push(size);
    this.bytes += size;
  }

  /** Frees every message whose last index is <= `index`. */
  freeLE(index: number): void {
    let n = 0;
    while (n < this.indexes.length && this.indexes[n]! <= index) {
      this.bytes -= this.sizes[n]!;
      n++;
    }
    this.indexes.splice(0, n);
    this.sizes.splice(0, n);
  }

  /** Frees the oldest message (used when a heartbeat response shows the follower is alive). */
  freeFirstOne(): void {
    const first = this.indexes[0];
    if (first !== undefined) this.freeLE(first);
  }

  full(): boolean {
    return this.indexes.length >= this.maxCount || (this.maxBytes > 0 && this.bytes >= this.maxBytes);
  }

  count(): number {
    return this.indexes.length;
  }

  inflightBytes(): number {
    return this.bytes;
  }

  reset(): void {
    this.indexes.length = 0;
    this.sizes.length = 0;
    this.bytes = 0;
  }
}
