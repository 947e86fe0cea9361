// Unstable: log entries and a snapshot not yet written to Storage (etcd
// raft's unstable). Entries handed to the application in a Ready are "in
// progress" until advance() reports them stable.
//
// Invariants: entries[i].index === offset + i; offsetInProgress in
// [offset, offset + entries.length]; if snapshot is set, offset === snapshot index + 1.

import { type Entry, RaftPanic, type Snapshot } from "./types.js";

export class Unstable {
  snapshot: Snapshot | null = null;
  entries: Entry[] = [];
  offset: number;
  offsetInProgress: number;
  snapshotInProgress = false;

  constructor(offset: number) {
    this.offset = offset;
    this.offsetInProgress = offset;
  }

  /** Index of the first entry, known only if there is an unstable snapshot. */
  maybeFirstIndex(): number | undefined {
    return this.snapshot === null ? undefined : this.snapshot.metadata.index + 1;
  }

  maybeLastIndex(): number | undefined {
    if (this.entries.length > 0) return this.offset + this.entries.length - 1;
    return this.snapshot === null ? undefined : this.snapshot.metadata.index;
  }

  maybeTerm(i: number): number | undefined {
    if (i < this.offset) {
      if (this.snapshot !== null && this.snapshot.metadata.index === i) return this.snapshot.metadata.term;
      return undefined;
    }
    return this.entries[i - this.offset]?.term;
  }

  /** Entries not yet handed out in a Ready. */
  nextEntries(): Entry[] {
    const inProgress = this.offsetInProgress - this.offset;
    return this.entries.slice(inProgress);
  }

  hasNextEntries(): boolean {
    return this.offsetInProgress < this.offset + this.entries.length;
  }

  /** The snapshot, if not yet handed out in a Ready. */
  nextSnapshot(): Snapshot | null {
    return this.snapshotInProgress ? null : this.snapshot;
  }

  /** Marks everything returned by nextEntries/nextSnapshot as handed out. */
  acceptInProgress(): void {
    if (this.entries.length > 0) this.offsetInProgress = this.offset + this.entries.length;
    if (this.snapshot !== null) this.snapshotInProgress = true;
  }

  /** Entries up to (i, t) are durable; ignored if the log changed since they were handed out. */
  stableTo(i: number, t: number): void {
    const gt = this.maybeTerm(i);
    if (gt === undefined || gt !== t || i < this.offset) return;
    const n = i + 1 - this.offset;
    this.entries = this.entries.slice(n);
    this.offset = i + 1;
    this.offsetInProgress = Math.max(this.offsetInProgress, this.offset);
  }

  stableSnapTo(i: number): void {
    if (this.snapshot !== null && this.snapshot.metadata.index === i) {
      this.snapshot = null;
      this.snapshotInProgress = false;
    }
  }

  restore(s: Snapshot): void {
    this.offset = s.metadata.index + 1;
    this.offsetInProgress = this.offset;
    this.entries = [];
    this.snapshot = s;
    this.snapshotInProgress = false;
  }

  /** Appends ents (contiguous), replacing any unstable suffix from ents[0].index on. */
  truncateAndAppend(ents: readonly Entry[]): void {
    const first = ents[0];
    if (first === undefined) return;
    const from = first.index;
    if (from === this.offset + this.entries.length) {
      this.entries.push(...ents);
    } else if (from <= this.offset) {
      this.entries = [...ents];
      this.offset = from;
      this.offsetInProgress = this.offset;
    } else {
      this.entries = [...this.entries.slice(0, from - this.offset), ...ents];
      this.offsetInProgress = Math.min(this.offsetInProgress, from);
    }
  }

  /** Entries in [lo, hi); the caller guarantees the range lies in the unstable part. */
  slice(lo: number, hi: number): Entry[] {
    if (lo > hi || lo < this.offset || hi > this.offset + this.entries.length) {
      throw new RaftPanic(`unstable.slice [${lo},${hi}) out of bounds [${this.offset},${this.offset + this.entries.length})`);
    }
    return this.entries.slice(lo - this.offset, hi - this.offset);
  }
}
