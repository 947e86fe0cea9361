// Each checker must report a violation when fed a crafted bad history (a
// checker that cannot fail is a defect), and stay quiet on a good one.

import test from "ava";
import { type Entry, EntryType } from "../../node/raft/types.js";
import { Checker, checkDurability, checkLogMatching, type Invariant, type LogView, Violation } from "./checker.js";
import { encodeProposal, StateMachine } from "./state-machine.js";

const ent = (index: number, term: number, p = index): Entry => ({ index, term, type: EntryType.Normal, data: encodeProposal(p) });

/** A log given as the terms of entries 1..n (optionally after a snapshot at `snap`). */
function logOf(entries: Entry[], snap = 0, snapTerm = 0): LogView {
  const byIndex = new Map(entries.map((e) => [e.index, e]));
  const last = entries.length === 0 ? snap : entries[entries.length - 1]!.index;
  return {
    snapshotIndex: () => snap,
    lastIndex: () => last,
    term: (i) => (i === snap ? snapTerm : i === 0 ? 0 : byIndex.get(i)!.term),
    entry: (i) => byIndex.get(i)!,
  };
}

function violates(t: import("ava").ExecutionContext, invariant: Invariant, fn: () => void): void {
  const err = t.throws(fn, { instanceOf: Violation });
  t.is(err?.invariant, invariant);
}

test("Election Safety: two leaders in one term is a violation, across history", (t) => {
  const c = new Checker();
  c.observeLeader(1, 2);
  c.observeLeader(1, 2);
  c.observeLeader(2, 3);
  violates(t, "Election Safety", () => c.observeLeader(3, 2));
});

test("Log Matching (incremental): same index and term with different data is a violation", (t) => {
  const c = new Checker();
  const a = [ent(1, 1), ent(2, 1)];
  c.observeAppend(1, a, logOf(a));
  const b = [ent(1, 1), ent(2, 1, 99)];
  violates(t, "Log Matching", () => c.observeAppend(2, b, logOf(b)));
});

test("Log Matching (incremental): same index and term after a different predecessor term is a violation", (t) => {
  const c = new Checker();
  const a = [ent(1, 1), ent(2, 1), ent(3, 3)];
  c.observeAppend(1, a, logOf(a));
  const b = [ent(1, 1), ent(2, 2), ent(3, 3)];
  violates(t, "Log Matching", () => c.observeAppend(2, b, logOf(b)));
});

test("Log Matching (incremental): an identical log and a divergent uncommitted suffix are fine", (t) => {
  const c = new Checker();
  const a = [ent(1, 1), ent(2, 1), ent(3, 2)];
  c.observeAppend(1, a, logOf(a));
  c.observeAppend(2, a, logOf(a));
  const b = [ent(1, 1), ent(2, 1), ent(3, 3, 77)];
  t.notThrows(() => c.observeAppend(3, b, logOf(b)));
});

test("Log Matching (pairwise): agreeing on a later entry but differing below it is a violation", (t) => {
  const a = [ent(1, 1), ent(2, 1), ent(3, 2)];
  const b = [ent(1, 1), ent(2, 1, 55), ent(3, 2)];
  violates(t, "Log Matching", () => checkLogMatching({ id: 1, log: logOf(a) }, { id: 2, log: logOf(b) }));
  const d = [ent(1, 1), ent(2, 1), ent(3, 3, 9)];
  t.notThrows(() => checkLogMatching({ id: 1, log: logOf(a) }, { id: 3, log: logOf(d) }));
  t.notThrows(() => checkLogMatching({ id: 1, log: logOf(a.slice(2), 2, 1) }, { id: 3, log: logOf(d) }));
});

test("Leader Completeness: a later-term leader missing a committed entry is a violation", (t) => {
  const c = new Checker();
  const a = [ent(1, 1), ent(2, 1), ent(3, 2)];
  c.observeCommit(1, 2, 0, 3, logOf(a));
  t.notThrows(() => c.checkLeaderCompleteness({ id: 1, term: 3, log: logOf(a) }));
  // A stale leader of the commit term itself is not bound by it.
  t.notThrows(() => c.checkLeaderCompleteness({ id: 2, term: 2, log: logOf(a.slice(0, 2)) }));
  violates(t, "Leader Completeness", () => c.checkLeaderCompleteness({ id: 3, term: 4, log: logOf(a.slice(0, 2)) }));
  const other = [ent(1, 1), ent(2, 1), ent(3, 3, 42)];
  violates(t, "Leader Completeness", () => c.checkLeaderCompleteness({ id: 2, term: 5, log: logOf(other) }));
});

test("Leader Completeness: a commit learned after the check is checked incrementally", (t) => {
  const c = new Checker();
  const a = [ent(1, 1), ent(2, 1)];
  const leaderLog = [ent(1, 1)];
  c.observeCommit(1, 1, 0, 1, logOf(a));
  c.checkLeaderCompleteness({ id: 2, term: 2, log: logOf(leaderLog) });
  c.observeCommit(1, 1, 1, 2, logOf(a));
  violates(t, "Leader Completeness", () => c.checkLeaderCompleteness({ id: 2, term: 2, log: logOf(leaderLog) }));
});

test("State Machine Safety: two different entries committed at one index is a violation", (t) => {
  const c = new Checker();
  c.observeCommit(1, 2, 0, 2, logOf([ent(1, 1), ent(2, 2)]));
  violates(t, "State Machine Safety", () => c.observeCommit(2, 3, 0, 2, logOf([ent(1, 1), ent(2, 3)])));
});

test("State Machine Safety: a commit index past the durable log is a violation", (t) => {
  const c = new Checker();
  violates(t, "State Machine Safety", () => c.observeCommit(1, 1, 0, 3, logOf([ent(1, 1)])));
});

test("State Machine Safety: divergent applied entries are a violation", (t) => {
  const c = new Checker();
  const a = new StateMachine();
  const b = new StateMachine();
  a.apply(ent(1, 1));
  c.observeApply(1, 0, ent(1, 1), a.digest());
  b.apply(ent(1, 1, 2));
  violates(t, "State Machine Safety", () => c.observeApply(2, 0, ent(1, 1, 2), b.digest()));
});

test("State Machine Safety: gaps and repeats in one node's applied sequence are violations", (t) => {
  const c = new Checker();
  const sm = new StateMachine();
  sm.apply(ent(1, 1));
  c.observeApply(1, 0, ent(1, 1), sm.digest());
  violates(t, "State Machine Safety", () => c.observeApply(1, 1, ent(1, 1), sm.digest()));
  violates(t, "State Machine Safety", () => c.observeApply(1, 1, ent(3, 1), sm.digest()));
});

test("State Machine Safety: a snapshot whose state differs from what others applied is a violation", (t) => {
  const c = new Checker();
  const sm = new StateMachine();
  sm.apply(ent(1, 1));
  sm.apply(ent(2, 1));
  c.observeApply(1, 0, ent(1, 1), "x");
  t.notThrows(() => c.observeApply(1, 1, ent(2, 1), sm.digest()));
  t.notThrows(() => c.observeRestore(2, 0, 2, sm.digest()));
  violates(t, "State Machine Safety", () => c.observeRestore(3, 0, 2, "0000000000000000"));
  violates(t, "State Machine Safety", () => c.observeRestore(3, 2, 2, sm.digest()));
  violates(t, "State Machine Safety", () => c.observeState(3, 2, "1111111111111111"));
});

test("State Machine Safety: overwriting an entry at or below the node's commit is a violation", (t) => {
  const c = new Checker();
  const log = logOf([ent(1, 1), ent(2, 1), ent(3, 1)]);
  t.notThrows(() => c.checkNoCommittedOverwrite(1, 2, [ent(2, 1), ent(3, 2)], log));
  violates(t, "State Machine Safety", () => c.checkNoCommittedOverwrite(1, 2, [ent(2, 2)], log));
});

test("Linearizable Read: a read index below the commit known at issue is a violation", (t) => {
  const c = new Checker();
  t.notThrows(() => c.observeRead(1, 5, 5));
  violates(t, "Linearizable Read", () => c.observeRead(1, 5, 4));
});

test("Durability: an acknowledged proposal missing on a member is a violation", (t) => {
  const a = new StateMachine();
  const b = new StateMachine();
  a.apply(ent(1, 1, 7));
  b.apply(ent(1, 1, 7));
  a.apply(ent(2, 1, 8));
  const m = (id: number, sm: StateMachine) => ({ id, has: (p: number) => sm.has(p) });
  t.notThrows(() => checkDurability([7], [m(1, a), m(2, b)]));
  violates(t, "Durability", () => checkDurability([7, 8], [m(1, a), m(2, b)]));
});
