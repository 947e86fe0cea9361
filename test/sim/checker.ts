// Safety checkers of the simulation. The harness reports what it observes
// (a leader, a durable append, a commit, an applied entry, a restored
// snapshot, a completed read); each observation is checked against the whole
// history of the run and a broken invariant throws a Violation.
//
// Invariants (Raft paper, Figure 3, plus two hardening rules of DESIGN.md §3):
//  - Election Safety: at most one leader per term, over the whole run.
//  - Log Matching: two logs with an entry of the same index and term hold
//    identical entries up to that index. Checked incrementally: every durable
//    (index, term) pins its data and its predecessor's term, which by
//    induction pins the whole prefix; plus a full pairwise scan at the end.
//  - Leader Completeness: an entry known committed at term t is in the log of
//    every leader of a term > t.
//  - State Machine Safety: no two nodes apply different entries at one index;
//    each node applies indices in order, without gaps or repeats; a restored
//    snapshot matches the digest of what others applied up to its index; a
//    node never overwrites an entry at or below its own commit index.
//  - Linearizable reads: a ReadIndex answer is at least the highest commit
//    index any node knew when the read was issued.
//  - Durability: after healing, every acknowledged proposal is applied on
//    every live member.

import type { Entry, NodeId } from "../../node/raft/types.js";
import { entryKey } from "./state-machine.js";

export type Invariant =
  | "Election Safety"
  | "Log Matching"
  | "Leader Completeness"
  | "State Machine Safety"
  | "Linearizable Read"
  | "Durability"
  | "Liveness"
  | "Ready Contract"
  | "Raft Exception";

export class Violation extends Error {
  override name = "Violation";
  constructor(readonly invariant: Invariant, readonly detail: string) {
    super(`${invariant}: ${detail}`);
  }
}

/** A read-only view of one node's durable log. */
export interface LogView {
  /** Index of the last compacted entry (the snapshot index); its term is known. */
  snapshotIndex(): number;
  lastIndex(): number;
  term(i: number): number;
  /** The entry at i, for snapshotIndex() < i <= lastIndex(). */
  entry(i: number): Entry;
}

interface Pinned {
  readonly key: string;
  readonly prevTerm: number;
  readonly node: NodeId;
}

interface Committed {
  readonly term: number;
  readonly key: string;
  /** A term at which the commit was known: the entry was committed at a term <= this. */
  observerTerm: number;
}

export interface LeaderView {
  readonly id: NodeId;
  readonly term: number;
  readonly log: LogView;
}

export class Checker {
  private readonly leaderOfTerm = new Map<number, NodeId>();
  private readonly pinned = new Map<string, Pinned>();
  private readonly committed = new Map<number, Committed>();
  private readonly appliedKey = new Map<number, { key: string; node: NodeId }>();
  private readonly digestAt = new Map<number, string>();
  private maxCommit = 0;
  /** Highest index in `committed`; `epoch` changes when a record is added below it or its term lowered. */
  private maxRecorded = 0;
  private epoch = 0;
  private readonly leaderChecked = new Map<string, { epoch: number; upTo: number }>();

  /** Election Safety: `id` is leader of `term`. */
  observeLeader(id: NodeId, term: number): void {
    const prev = this.leaderOfTerm.get(term);
    if (prev !== undefined && prev !== id) {
      throw new Violation("Election Safety", `nodes ${prev} and ${id} were both leader of term ${term}`);
    }
    this.leaderOfTerm.set(term, id);
  }

  /** Log Matching: `entries` were just made durable in `node`'s log (already appended to `log`). */
  observeAppend(node: NodeId, entries: readonly Entry[], log: LogView): void {
    for (const e of entries) {
      if (e.index <= log.snapshotIndex()) continue;
      const prevTerm = log.term(e.index - 1);
      const at = `${e.index}:${e.term}`;
      const key = entryKey(e);
      const p = this.pinned.get(at);
      if (p === undefined) {
        this.pinned.set(at, { key, prevTerm, node });
      } else if (p.key !== key || p.prevTerm !== prevTerm) {
        throw new Violation("Log Matching",
          `index ${e.index} term ${e.term}: node ${p.node} has data ${p.key} after term ${p.prevTerm}, `
          + `node ${node} has ${key} after term ${prevTerm}`);
      }
    }
  }

  /**
   * State Machine Safety (hardening): a node must never replace an entry at or
   * below its own durable commit index. Call before appending `entries`.
   */
  checkNoCommittedOverwrite(node: NodeId, commit: number, entries: readonly Entry[], log: LogView): void {
    for (const e of entries) {
      if (e.index > commit || e.index > log.lastIndex()) return;
      if (e.index <= log.snapshotIndex()) continue;
      const old = log.entry(e.index);
      if (entryKey(old) !== entryKey(e)) {
        throw new Violation("State Machine Safety",
          `node ${node} overwrote committed entry ${e.index} (term ${old.term}) with term ${e.term}; its commit is ${commit}`);
      }
    }
  }

  /**
   * `node`, at `term`, now has commit index `commit` (was `prevCommit`).
   * Records the newly committed entries; returns true if the committed set grew.
   */
  observeCommit(node: NodeId, term: number, prevCommit: number, commit: number, log: LogView): boolean {
    let grew = false;
    const from = Math.max(prevCommit, log.snapshotIndex()) + 1;
    if (commit > log.lastIndex()) {
      throw new Violation("State Machine Safety", `node ${node} commit ${commit} is past its durable last index ${log.lastIndex()}`);
    }
    for (let i = from; i <= commit; i++) {
      const e = log.entry(i);
      const key = entryKey(e);
      const c = this.committed.get(i);
      if (c === undefined) {
        this.committed.set(i, { term: e.term, key, observerTerm: term });
        if (i < this.maxRecorded) this.epoch++;
        else this.maxRecorded = i;
        grew = true;
      } else if (c.key !== key) {
        throw new Violation("State Machine Safety",
          `two different entries committed at index ${i}: ${c.key} and, on node ${node}, ${key}`);
      } else if (term < c.observerTerm) {
        c.observerTerm = term;
        this.epoch++;
        grew = true;
      }
    }
    if (commit > this.maxCommit) this.maxCommit = commit;
    return grew;
  }

  /**
   * Leader Completeness: `leader` holds every entry known committed before its
   * term. Incremental per (leader, term): a leader only appends during its term.
   */
  checkLeaderCompleteness(leader: LeaderView): void {
    const k = `${leader.id}:${leader.term}`;
    const w = this.leaderChecked.get(k);
    const from = w !== undefined && w.epoch === this.epoch ? w.upTo + 1 : 1;
    for (let i = from; i <= this.maxRecorded; i++) {
      const c = this.committed.get(i);
      if (c !== undefined && c.observerTerm < leader.term) this.checkLeaderHas(leader, i, c);
    }
    this.leaderChecked.set(k, { epoch: this.epoch, upTo: this.maxRecorded });
  }

  private checkLeaderHas(leader: LeaderView, i: number, c: Committed): void {
    const { log } = leader;
    if (i < log.snapshotIndex()) return;
    if (i > log.lastIndex()) {
      throw new Violation("Leader Completeness",
        `leader ${leader.id} of term ${leader.term} lacks committed entry ${i} (term ${c.term}); its last index is ${log.lastIndex()}`);
    }
    const t = log.term(i);
    const ok = i === log.snapshotIndex() ? t === c.term : entryKey(log.entry(i)) === c.key;
    if (!ok) {
      throw new Violation("Leader Completeness",
        `leader ${leader.id} of term ${leader.term} has term ${t} at committed index ${i}, committed term ${c.term}`);
    }
  }

  /**
   * State Machine Safety: `node`, having applied up to `applied`, applies `e`
   * and reaches state `digest`.
   */
  observeApply(node: NodeId, applied: number, e: Entry, digest: string): void {
    if (e.index !== applied + 1) {
      const what = e.index <= applied ? "re-applied" : "skipped to";
      throw new Violation("State Machine Safety", `node ${node} ${what} index ${e.index} after applying ${applied}`);
    }
    const key = entryKey(e);
    const prev = this.appliedKey.get(e.index);
    if (prev === undefined) {
      this.appliedKey.set(e.index, { key, node });
    } else if (prev.key !== key) {
      throw new Violation("State Machine Safety",
        `index ${e.index}: node ${prev.node} applied ${prev.key}, node ${node} applied ${key}`);
    }
    this.observeState(node, e.index, digest, "applying");
  }

  /** State Machine Safety: `node` restored a snapshot of state `digest` at `index` (having applied `applied`). */
  observeRestore(node: NodeId, applied: number, index: number, digest: string): void {
    if (index <= applied) {
      throw new Violation("State Machine Safety", `node ${node} restored snapshot ${index} at or below its applied index ${applied}`);
    }
    this.observeState(node, index, digest, "restoring a snapshot");
  }

  /** Linearizable Read: a read issued when the highest known commit was `issuedAt` returned `index`. */
  observeRead(node: NodeId, issuedAt: number, index: number): void {
    if (index < issuedAt) {
      throw new Violation("Linearizable Read",
        `node ${node} got read index ${index}, but index ${issuedAt} was already committed when the read was issued`);
    }
  }

  /** The highest commit index any node has reported. */
  highestCommit(): number {
    return this.maxCommit;
  }

  /** State Machine Safety: `node`'s state machine is in state `digest` at `index`. */
  observeState(node: NodeId, index: number, digest: string, how = "restarting from its durable snapshot"): void {
    const prev = this.digestAt.get(index);
    if (prev === undefined) this.digestAt.set(index, digest);
    else if (prev !== digest) {
      throw new Violation("State Machine Safety",
        `node ${node} reached state ${digest} at index ${index} by ${how}; another node had ${prev}`);
    }
  }
}

/** Log Matching, full pairwise scan of two durable logs: same (index, term) => same prefix. */
export function checkLogMatching(a: { id: NodeId; log: LogView }, b: { id: NodeId; log: LogView }): void {
  const lo = Math.max(a.log.snapshotIndex(), b.log.snapshotIndex());
  let i = Math.min(a.log.lastIndex(), b.log.lastIndex());
  while (i >= lo && a.log.term(i) !== b.log.term(i)) i--;
  for (; i > lo; i--) {
    const ka = entryKey(a.log.entry(i));
    const kb = entryKey(b.log.entry(i));
    if (ka !== kb) {
      throw new Violation("Log Matching",
        `nodes ${a.id} and ${b.id} agree on a later (index, term) but differ at index ${i}: ${ka} vs ${kb}`);
    }
  }
  if (i === lo && lo > 0 && a.log.term(lo) !== b.log.term(lo)) {
    throw new Violation("Log Matching", `nodes ${a.id} and ${b.id} differ at index ${lo} under a common later entry`);
  }
}

/** Durability: every acknowledged proposal is applied on every live member. */
export function checkDurability(
  acknowledged: Iterable<number>,
  members: readonly { id: NodeId; has(id: number): boolean }[],
): void {
  for (const p of acknowledged) {
    for (const m of members) {
      if (!m.has(p)) throw new Violation("Durability", `acknowledged proposal ${p} is not applied on node ${m.id}`);
    }
  }
}
