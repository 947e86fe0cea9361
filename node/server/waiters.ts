// One kind of waiter for everything RaftLoop's callers wait on (a proposal's
// outcome by request id, an applied index, a membership change, a read
// index, a snapshot, a leadership move). A waiter is settled exactly once:
// by resolve, reject, failAll, its own fail, or its deadline; settling
// removes it and clears its timer, so no timer fires after its waiter
// settled and none is cleared twice.

import type { NodeId, Snapshot } from "../raft/index.js";
import type { VaultResult } from "../vault/index.js";

/** Time as the registry sees it: injected so that unit tests drive the deadlines. */
export interface WaiterClock {
  now(): number;
  setTimer(fire: () => void, ms: number): unknown;
  clearTimer(handle: unknown): void;
}

export const SYSTEM_CLOCK: WaiterClock = {
  now: () => Date.now(),
  setTimer: (fire, ms) => setTimeout(fire, ms),
  clearTimer: (handle) => clearTimeout(handle as NodeJS.Timeout),
};

/** One registered waiter: its promise, and a way to fail this waiter alone. */
export interface Waiting<V> {
  readonly promise: Promise<V>;
  fail(err: Error): void;
}

interface Entry<K, V> {
  readonly key: K;
  resolve(value: V): void;
  reject(err: Error): void;
  timer: unknown;
  settled: boolean;
}

type Outcome<V> = { readonly ok: true; readonly value: V } | { readonly ok: false; readonly error: Error };

export class WaiterRegistry<K, V> {
  private readonly byKey = new Map<K, Set<Entry<K, V>>>();

  constructor(private readonly clock: WaiterClock = SYSTEM_CLOCK) {}

  /**
   * Registers a waiter for `key`. Its promise resolves with the value given
   * to resolve/resolveWhere for that key, or rejects with the error given to
   * reject/failAll/fail, or with `expired()` once the clock reaches
   * `deadline` (an absolute clock time; null: no deadline).
   */
  register(key: K, deadline: number | null, expired: () => Error): Waiting<V> {
    let resolve!: (value: V) => void;
    let reject!: (err: Error) => void;
    const promise = new Promise<V>((res, rej) => { resolve = res; reject = rej; });
    const entry: Entry<K, V> = { key, resolve, reject, timer: undefined, settled: false };
    const set = this.byKey.get(key) ?? new Set<Entry<K, V>>();
    set.add(entry);
    this.byKey.set(key, set);
    if (deadline !== null) {
      entry.timer = this.clock.setTimer(() => {
        entry.timer = undefined; // fired: nothing left to clear
        this.settle(entry, { ok: false, error: expired() });
      }, Math.max(0, deadline - this.clock.now()));
    }
    return { promise, fail: (err) => this.settle(entry, { ok: false, error: err }) };
  }

  /** Resolves every waiter on `key` with `value`; returns how many. */
  resolve(key: K, value: V): number {
    return this.settleAll(this.entriesOf(key), () => ({ ok: true, value }));
  }

  /** Resolves every waiter whose key satisfies `pred`, each with `value(key)`; returns how many. */
  resolveWhere(pred: (key: K) => boolean, value: (key: K) => V): number {
    const keys = [...this.byKey.keys()].filter(pred);
    return this.settleAll(keys.flatMap((k) => this.entriesOf(k)), (e) => ({ ok: true, value: value(e.key) }));
  }

  /** Rejects every waiter on `key` with `err`; returns how many. */
  reject(key: K, err: Error): number {
    return this.settleAll(this.entriesOf(key), () => ({ ok: false, error: err }));
  }

  /** Rejects every waiter with `err`; returns how many. */
  failAll(err: Error): number {
    return this.settleAll([...this.byKey.values()].flatMap((s) => [...s]), () => ({ ok: false, error: err }));
  }

  /** Waiters not yet settled. */
  get size(): number {
    let n = 0;
    for (const s of this.byKey.values()) n += s.size;
    return n;
  }

  private entriesOf(key: K): Array<Entry<K, V>> {
    return [...(this.byKey.get(key) ?? [])];
  }

  private settleAll(entries: ReadonlyArray<Entry<K, V>>, outcome: (e: Entry<K, V>) => Outcome<V>): number {
    for (const e of entries) this.settle(e, outcome(e));
    return entries.length;
  }

  private settle(e: Entry<K, V>, outcome: Outcome<V>): void {
    if (e.settled) return;
    e.settled = true;
    if (e.timer !== undefined) this.clock.clearTimer(e.timer);
    const set = this.byKey.get(e.key);
    set?.delete(e);
    if (set?.size === 0) this.byKey.delete(e.key);
    if (outcome.ok) e.resolve(outcome.value);
    else e.reject(outcome.error);
  }
}

/**
 * Everything a caller of the loop waits on, one registry each (same class,
 * typed values). Proposals fail on a leader change; all fail on stop.
 */
export class LoopWaiters {
  /** A proposal's outcome, by request id and request fingerprint (raft-loop.ts proposalKey). */
  readonly proposals = new WaiterRegistry<string, VaultResult>();
  /** An index applied here. */
  readonly applied = new WaiterRegistry<number, undefined>();
  /** A membership change applied here (its index), by type and member. */
  readonly confChanges = new WaiterRegistry<string, number>();
  /** A linearizable read's index, by hex context. */
  readonly reads = new WaiterRegistry<string, number>();
  /** The next snapshot, by snapshot round. */
  readonly snapshots = new WaiterRegistry<number, Snapshot>();
  /** Leadership moved to another node (the new leader). */
  readonly leaderMoved = new WaiterRegistry<"moved", NodeId>();

  failAll(err: Error): void {
    for (const r of [this.proposals, this.applied, this.confChanges, this.reads, this.snapshots, this.leaderMoved]) r.failAll(err);
  }
}

/**
 * Linearizable read rounds, as etcd's linearizableReadLoop: at most one
 * ReadIndex round of this node is in flight, and every read that arrives
 * while it runs shares the next round, which starts once it settled. A read
 * never shares a round that started before it arrived: that round's index may
 * predate the read (the read would not see a write acknowledged before it).
 */
export class ReadRounds {
  private inFlight: Promise<number> | null = null;
  private next: Promise<number> | null = null;

  /** `start(deadline)` begins one ReadIndex round; it resolves with the read index, or rejects by `deadline`. */
  constructor(private readonly start: (deadline: number) => Promise<number>) {}

  /**
   * The read index of a round that starts no earlier than this call. The
   * round that a waiting read starts takes the deadline of its first joiner,
   * the earliest of them.
   */
  join(deadline: number): Promise<number> {
    if (this.next !== null) return this.next;
    if (this.inFlight === null) return this.launch(deadline);
    const launchNext = (): Promise<number> => {
      this.next = null;
      return this.launch(deadline);
    };
    this.next = this.inFlight.then(launchNext, launchNext);
    return this.next;
  }

  private launch(deadline: number): Promise<number> {
    let round: Promise<number>;
    try {
      round = this.start(deadline);
    } catch (err) {
      round = Promise.reject(err as Error);
    }
    this.inFlight = round;
    const done = (): void => { if (this.inFlight === round) this.inFlight = null; };
    round.then(done, done);
    return round;
  }
}
