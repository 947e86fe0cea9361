// RaftLog: the stable log in Storage plus the Unstable tail, with the commit
// and apply cursors (etcd raft's raftLog).
//
// Invariants (checked, RaftPanic on violation):
//   applied <= applying <= committed <= lastIndex(); committed never decreases;
//   no entry at or below committed is ever replaced.

import { limitSize } from "./memory-storage.js";
import { Unstable } from "./unstable.js";
import {
  type Entry,
  ErrCompacted,
  ErrUnavailable,
  RaftPanic,
  type Snapshot,
  type Storage,
} from "./types.js";

export const NO_LIMIT = Number.MAX_SAFE_INTEGER;

export class RaftLog {
  readonly unstable: Unstable;
  /** Highest index known to be committed. */
  committed: number;
  /** Highest index handed to the application in a Ready (not yet necessarily applied). */
  applying: number;
  /** Highest index the application reported applied. */
  applied: number;

  constructor(readonly storage: Storage) {
    const first = storage.firstIndex();
    const last = storage.lastIndex();
    this.unstable = new Unstable(last + 1);
    this.committed = first - 1;
    this.applying = first - 1;
    this.applied = first - 1;
  }

  firstIndex(): number {
    return this.unstable.maybeFirstIndex() ?? this.storage.firstIndex();
  }

  lastIndex(): number {
    return this.unstable.maybeLastIndex() ?? this.storage.lastIndex();
  }

  /** Term of entry i; throws ErrCompacted / ErrUnavailable outside [firstIndex-1, lastIndex]. */
  term(i: number): number {
    const t = this.unstable.maybeTerm(i);
    if (t !== undefined) return t;
    if (i < this.firstIndex() - 1) throw new ErrCompacted(`term(${i}): compacted`);
    if (i > this.lastIndex()) throw new ErrUnavailable(`term(${i}): past last index ${this.lastIndex()}`);
    return this.storage.term(i);
  }

  /** Term of entry i, or undefined if it is compacted or past the end (no exception: hot path). */
  maybeTerm(i: number): number | undefined {
    const t = this.unstable.maybeTerm(i);
    if (t !== undefined) return t;
    if (i < this.firstIndex() - 1 || i > this.lastIndex()) return undefined;
    return this.storage.term(i);
  }

  /** Term of entry i, or 0 if it is not available (compacted or past the end). */
  zeroTermOnOutOfBounds(i: number): number {
    return this.maybeTerm(i) ?? 0;
  }

  lastTerm(): number {
    return this.term(this.lastIndex());
  }

  matchTerm(i: number, t: number): boolean {
    return this.maybeTerm(i) === t;
  }

  /** Raft §5.4.1: a log ending in (index, term) is at least as up to date as ours. */
  isUpToDate(index: number, term: number): boolean {
    const lt = this.lastTerm();
    return term > lt || (term === lt && index >= this.lastIndex());
  }

  /**
   * Appends leader entries after (index, logTerm) if they match, and advances
   * commit to min(committed, last new index). Returns the last new index, or
   * undefined if (index, logTerm) does not match our log. Never truncates
   * at or below committed: such an append returns "refused".
   */
  maybeAppend(index: number, logTerm: number, committed: number, ents: readonly Entry[]): number | "refused" | undefined {
    if (!this.matchTerm(index, logTerm)) return undefined;
    const lastNew = index + ents.length;
    const ci = this.findConflict(ents);
    if (ci !== 0 && ci <= this.committed) return "refused";
    if (ci !== 0) this.append(ents.slice(ci - (index + 1)));
    this.commitTo(Math.min(committed, lastNew));
    return lastNew;
  }

  /** Appends entries; they must follow committed. Returns the new last index. */
  append(ents: readonly Entry[]): number {
    const first = ents[0];
    if (first === undefined) return this.lastIndex();
    if (first.index - 1 < this.committed) {
      throw new RaftPanic(`append: entry ${first.index} would overwrite committed ${this.committed}`);
    }
    this.unstable.truncateAndAppend(ents);
    return this.lastIndex();
  }

  /**
   * The index of the first entry in ents that conflicts with our log (same
   * index, different term), or of the first new entry; 0 if all are present.
   */
  findConflict(ents: readonly Entry[]): number {
    for (const e of ents) {
      if (!this.matchTerm(e.index, e.term)) return e.index;
    }
    return 0;
  }

  /**
   * For fast backtracking: the largest index <= `index` whose term is <= `term`,
   * with its term (0 if unknown). Used by both sides of a rejected MsgApp.
   */
  findConflictByTerm(index: number, term: number): { index: number; term: number } {
    for (let i = index; i >= 0; i--) {
      const t = this.maybeTerm(i);
      if (t === undefined) return { index: i, term: 0 };
      if (t <= term) return { index: i, term: t };
    }
    return { index: 0, term: 0 };
  }

  commitTo(tocommit: number): void {
    if (tocommit <= this.committed) return;
    if (tocommit > this.lastIndex()) {
      throw new RaftPanic(`commitTo(${tocommit}) is past last index ${this.lastIndex()}: log corrupted, truncated or lost`);
    }
    this.committed = tocommit;
  }

  /** Commits maxIndex if its entry is from `term` (Raft §5.4.2, Figure 8). */
  maybeCommit(maxIndex: number, term: number): boolean {
    if (maxIndex > this.committed && this.zeroTermOnOutOfBounds(maxIndex) === term) {
      this.commitTo(maxIndex);
      return true;
    }
    return false;
  }

  appliedTo(i: number): void {
    if (i === 0) return;
    if (i > this.committed || i < this.applied) {
      throw new RaftPanic(`appliedTo(${i}) out of range [applied ${this.applied}, committed ${this.committed}]`);
    }
    this.applied = i;
    this.applying = Math.max(this.applying, i);
  }

  hasPendingSnapshot(): boolean {
    return this.unstable.snapshot !== null;
  }

  /** Committed entries not yet handed to the application; none while a snapshot is pending. */
  nextCommittedEntries(maxSize: number): Entry[] {
    if (!this.hasNextCommittedEntries()) return [];
    const hi = Math.min(this.committed, this.lastIndex()) + 1;
    return this.slice(this.applying + 1, hi, maxSize);
  }

  hasNextCommittedEntries(): boolean {
    if (this.hasPendingSnapshot()) return false;
    return this.committed > this.applying && this.lastIndex() > this.applying;
  }

  /** Records that entries up to i were handed to the application. */
  acceptApplying(i: number): void {
    if (i < this.applying || i > this.committed) {
      throw new RaftPanic(`acceptApplying(${i}) out of range [applying ${this.applying}, committed ${this.committed}]`);
    }
    this.applying = i;
  }

  snapshot(): Snapshot {
    return this.unstable.snapshot ?? this.storage.snapshot();
  }

  /** Replaces the log with a snapshot received from the leader. */
  restore(s: Snapshot): void {
    if (s.metadata.index < this.committed) {
      throw new RaftPanic(`restore: snapshot ${s.metadata.index} below committed ${this.committed}`);
    }
    this.committed = s.metadata.index;
    this.unstable.restore(s);
  }

  /** Entries in [lo, hi) limited to maxSize bytes (at least one). Throws ErrCompacted below firstIndex. */
  slice(lo: number, hi: number, maxSize: number): Entry[] {
    this.mustCheckOutOfBounds(lo, hi);
    if (lo === hi) return [];
    const off = this.unstable.offset;
    let ents: Entry[] = [];
    if (lo < off) {
      ents = this.storage.entries(lo, Math.min(hi, off), maxSize);
      if (ents.length < Math.min(hi, off) - lo) return ents; // size limit reached
    }
    if (hi > off) {
      const us = this.unstable.slice(Math.max(lo, off), hi);
      ents = ents.length > 0 ? [...ents, ...us] : us;
    }
    return limitSize(ents, maxSize);
  }

  /** Entries from i to the end, limited to maxSize bytes. */
  entries(i: number, maxSize: number): Entry[] {
    if (i > this.lastIndex()) return [];
    return this.slice(i, this.lastIndex() + 1, maxSize);
  }

  private mustCheckOutOfBounds(lo: number, hi: number): void {
    if (lo > hi) throw new RaftPanic(`invalid slice ${lo} > ${hi}`);
    const fi = this.firstIndex();
    if (lo < fi) throw new ErrCompacted(`slice: ${lo} compacted (first ${fi})`);
    if (hi > this.lastIndex() + 1) {
      throw new RaftPanic(`slice [${lo},${hi}) out of bound [${fi},${this.lastIndex()}]`);
    }
  }
}
