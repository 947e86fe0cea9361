// Rebuilds the stable log from the loaded snapshot and the WAL records.
//
// Rules, applied in WAL order:
//  - an entry at or below the snapshot index is already covered: skipped;
//  - an entry at index i replaces the entry at i and everything after it
//    (raft truncation); an entry past lastIndex+1 is a gap: refused;
//  - the last hard-state record wins;
//  - a snapshot marker (m, t) means "a snapshot from the leader was installed
//    here": every entry before it is discarded. If the loaded snapshot is
//    older than m (the newest snapshot file was corrupt), the WAL must still
//    hold entries up to m with term(m) = t, which then stand in for it;
//    otherwise the state cannot be rebuilt and open() refuses.
//  - if the loaded snapshot was Installed but its marker never made it to the
//    WAL (crash between the snapshot file and the marker), the install still
//    happened last: entries are discarded at the end;
//  - the hard state is raised to cover the snapshot (commit >= its index,
//    term >= its term, vote cleared if the term rises). In the same crash
//    window the Ready's hard state may not have reached the WAL; a snapshot
//    holds only committed entries, and a vote in a term above the durable one
//    was never sent (votes are durable before they are sent), so this is safe.

import { type Entry, type HardState, NONE, emptyHardState } from "../raft/index.js";
import { WalInconsistentError } from "./errors.js";
import { SnapshotKind, type StoredSnapshot } from "./snapshotter.js";
import type { SnapshotMarker } from "./codec.js";
import type { WalItem } from "./wal-reader.js";

export interface ReplayedLog {
  hardState: HardState;
  /** Contiguous entries starting at snapshot index + 1. */
  entries: Entry[];
}

export function replay(items: readonly WalItem[], base: StoredSnapshot | null): ReplayedLog {
  const log = new LogBuilder(base?.snapshot.metadata.index ?? 0);
  let hardState = emptyHardState();
  let sawBaseMarker = false;
  for (const it of items) {
    const at = `${it.file} at byte offset ${it.offset}`;
    if (it.kind === "hardState") hardState = it.hardState;
    else if (it.kind === "entry") log.append(it.entry, at);
    else {
      if (it.marker.index === log.snapIndex) sawBaseMarker = true;
      log.restartAfter(it.marker, at);
    }
  }
  if (base?.kind === SnapshotKind.Installed && !sawBaseMarker) log.clear();
  if (base) hardState = coverSnapshot(hardState, base.snapshot.metadata.term, log.snapIndex);
  return { hardState, entries: log.entries };
}

/** The entries after the loaded snapshot, kept contiguous. */
class LogBuilder {
  entries: Entry[] = [];
  constructor(readonly snapIndex: number) {}

  /** Entry i replaces entry i and everything after it; entries the snapshot covers are skipped. */
  append(e: Entry, at: string): void {
    if (e.index <= this.snapIndex) return;
    const next = this.snapIndex + this.entries.length + 1;
    if (e.index > next) throw new WalInconsistentError(`${at}: entry ${e.index} leaves a gap after ${next - 1}`);
    this.entries.length = e.index - this.snapIndex - 1;
    this.entries.push(e);
  }

  /** A snapshot (m.index, m.term) was installed here: entries before it are void. */
  restartAfter(m: SnapshotMarker, at: string): void {
    if (m.index <= this.snapIndex) return this.clear();
    const e = this.entries[m.index - this.snapIndex - 1];
    if (e === undefined || e.term !== m.term) {
      throw new WalInconsistentError(
        `${at}: the WAL records a snapshot installed at index ${m.index} term ${m.term}, but no snapshot file ` +
          `for it could be loaded (newest usable: index ${this.snapIndex}) and the log does not cover it`,
      );
    }
    this.entries.length = m.index - this.snapIndex; // the log up to m stands in for the lost snapshot
  }

  clear(): void {
    this.entries = [];
  }
}

function coverSnapshot(hs: HardState, snapTerm: number, snapIndex: number): HardState {
  const commit = Math.max(hs.commit, snapIndex);
  return hs.term >= snapTerm ? { ...hs, commit } : { term: snapTerm, vote: NONE, commit };
}
