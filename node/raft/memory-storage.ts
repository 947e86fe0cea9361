// MemoryStorage: the stable log kept in memory, in the style of etcd's
// raft.MemoryStorage. node/storage makes writes durable first and then applies
// them here; unit tests and the simulation use it directly.
//
// Invariant: ents[0] is a dummy entry holding the index and term of the last
// compacted entry (the snapshot), so term(firstIndex()-1) is always known.

import {
  type ConfState,
  type Entry,
  EntryType,
  ErrCompacted,
  ErrUnavailable,
  type HardState,
  RaftPanic,
  type Snapshot,
  type Storage,
  emptyHardState,
  entrySize,
} from "./types.js";

const EMPTY = new Uint8Array(0);

export class MemoryStorage implements Storage {
  private hardState: HardState = emptyHardState();
  private snap: Snapshot = {
    metadata: { index: 0, term: 0, confState: { voters: [], learners: [] } },
    data: EMPTY,
  };
  private ents: Entry[] = [{ term: 0, index: 0, type: EntryType.Normal, data: EMPTY }];

  initialState(): { hardState: HardState; confState: ConfState } {
    return { hardState: this.hardState, confState: this.snap.metadata.confState };
  }

  setHardState(hs: HardState): void {
    this.hardState = hs;
  }

  entries(lo: number, hi: number, maxSize: number): Entry[] {
    const offset = this.offset();
    if (lo <= offset) throw new ErrCompacted(`entries: index ${lo} compacted (first ${offset + 1})`);
    if (hi > this.lastIndex() + 1) throw new ErrUnavailable(`entries: hi ${hi} past last ${this.lastIndex()}`);
    return limitSize(this.ents.slice(lo - offset, hi - offset), maxSize);
  }

  term(i: number): number {
    const offset = this.offset();
    if (i < offset) throw new ErrCompacted(`term: index ${i} compacted (offset ${offset})`);
    const e = this.ents[i - offset];
    if (e === undefined) throw new ErrUnavailable(`term: index ${i} past last ${this.lastIndex()}`);
    return e.term;
  }

  lastIndex(): number {
    return this.offset() + this.ents.length - 1;
  }

  firstIndex(): number {
    return this.offset() + 1;
  }

  snapshot(): Snapshot {
    return this.snap;
  }

  /** Replaces the contents with a snapshot received from the leader. Older snapshots are ignored. */
  applySnapshot(snap: Snapshot): boolean {
    if (snap.metadata.index <= this.snap.metadata.index) return false;
    this.snap = snap;
    this.ents = [{ term: snap.metadata.term, index: snap.metadata.index, type: EntryType.Normal, data: EMPTY }];
    return true;
  }

  /** Records a snapshot of the applied state at index `i` (i <= lastIndex). */
  createSnapshot(i: number, confState: ConfState, data: Uint8Array): Snapshot {
    if (i <= this.snap.metadata.index) return this.snap;
    if (i > this.lastIndex()) throw new RaftPanic(`createSnapshot: ${i} is past last index ${this.lastIndex()}`);
    this.snap = { metadata: { index: i, term: this.term(i), confState }, data };
    return this.snap;
  }

  /** Discards entries before `compactIndex`; compactIndex must not exceed the snapshot index. */
  compact(compactIndex: number): void {
    const offset = this.offset();
    if (compactIndex <= offset) return;
    if (compactIndex > this.lastIndex()) {
      throw new RaftPanic(`compact: ${compactIndex} is past last index ${this.lastIndex()}`);
    }
    const i = compactIndex - offset;
    const head = this.ents[i]!;
    this.ents = [{ term: head.term, index: head.index, type: EntryType.Normal, data: EMPTY }, ...this.ents.slice(i + 1)];
  }

  /**
   * Appends entries, truncating any conflicting suffix. Entries already
   * compacted are skipped. Panics if the new entries leave a gap.
   */
  append(entries: readonly Entry[]): void {
    if (entries.length === 0) return;
    const first = this.firstIndex();
    const last = entries[0]!.index + entries.length - 1;
    if (last < first) return;
    const fresh = first > entries[0]!.index ? entries.slice(first - entries[0]!.index) : entries;
    const at = fresh[0]!.index - this.offset();
    if (at > this.ents.length) {
      throw new RaftPanic(`append: gap: last index ${this.lastIndex()}, new entry ${fresh[0]!.index}`);
    }
    this.ents.length = at;
    for (const e of fresh) this.ents.push(e);
  }

  private offset(): number {
    return this.ents[0]!.index;
  }
}

/** Keeps a prefix of `ents` whose total size is <= maxSize, but always at least one entry. */
export function limitSize(ents: Entry[], maxSize: number): Entry[] {
  if (ents.length === 0) return ents;
  let size = entrySize(ents[0]!);
  let n = 1;
  for (; n < ents.length; n++) {
    size += entrySize(ents[n]!);
    if (size > maxSize) break;
  }
  return ents.slice(0, n);
}
