// A snapshot must not take this node's vault back (docs/threat-model.md,
// "Closed: a rogue leader installs another honest node's state").
//
// `t` nodes vouching for a state's digest prove that an honest node reached
// that state, not that it extends this node's own history: a rogue leader can
// commit different suffixes on two honest followers (its vote and each
// follower's make a majority of three), have one of them count a user's
// attempts, then install the other's state over it, whose counters never saw
// them, and start again: guesses without bound. Along any one history the
// state's time never decreases, and a record of the same registration (the
// same record digest) with the same last confirmation never has fewer
// attempts counted, an earlier last begin, or its lock lifted. rollbackFrom
// checks that for every record of the current state. A record the incoming
// state lacks, or holds with another digest or a later confirmation, was
// deleted, overwritten or confirmed: each needs the record's key or reset
// key, which a rogue node does not have.
import { PREFIX, metaKey, readU64, tableRange } from "./keys.js";
import type { VaultStore } from "./store.js";
import { type RecordCounters, recordCounters } from "./values.js";

/** Records compared between two yields of rollbackFrom (its caller gives the event loop a turn there). */
export const ROLLBACK_RECORDS_PER_STEP = 256;

/**
 * Why installing `incoming` in place of `current` would take a counter or
 * the state's time back, or null. A generator: it yields every
 * ROLLBACK_RECORDS_PER_STEP records, so that a caller can pace a scan of
 * millions of records; it returns the verdict.
 */
export function* rollbackFrom(current: VaultStore, incoming: VaultStore): Generator<void, string | null> {
  const [was, now] = [stateTime(current), stateTime(incoming)];
  if (now < was) return `its time (${now}) is before this node's (${was})`;
  let compared = 0;
  for (const [key, value] of current.scan(...tableRange(PREFIX.record))) {
    const other = incoming.get(key);
    const why = other === undefined ? null : recordRollback(recordCounters(value), recordCounters(other));
    if (why !== null) return `the record of ${JSON.stringify(Buffer.from(key.subarray(1)).toString("utf8"))} ${why}`;
    if (++compared % ROLLBACK_RECORDS_PER_STEP === 0) yield;
  }
  return null;
}

/** How `next` takes `was` back, or null (another registration, or confirmed since: not comparable). */
export function recordRollback(was: RecordCounters, next: RecordCounters): string | null {
  if (!Buffer.from(was.digest).equals(next.digest)) return null;
  if (next.confirmedAt < was.confirmedAt) return `loses its confirmation at ${was.confirmedAt}`;
  if (next.confirmedAt > was.confirmedAt) return null;
  if (was.locked && !next.locked) return "is unlocked";
  if (next.attempts < was.attempts) return `counts ${next.attempts} attempts, not ${was.attempts}`;
  if (next.lastBeginAt < was.lastBeginAt) return `has its last begin at ${next.lastBeginAt}, before ${was.lastBeginAt}`;
  return null;
}

function stateTime(store: VaultStore): number {
  const v = store.get(metaKey("time"));
  return v === undefined ? 0 : readU64(v);
}
