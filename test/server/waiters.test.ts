// Unit tests of node/server/waiters.ts with a fake clock: every waiter
// settles exactly once, and its timer is cleared exactly once.
import test from "ava";
import { ReadRounds, WaiterRegistry, type WaiterClock } from "../../node/server/waiters.js";

class FakeClock implements WaiterClock {
  time = 1000;
  private nextHandle = 1;
  readonly timers = new Map<number, { at: number; fire: () => void }>();
  readonly cleared: number[] = [];

  now(): number {
    return this.time;
  }

  setTimer(fire: () => void, ms: number): unknown {
    const h = this.nextHandle++;
    this.timers.set(h, { at: this.time + ms, fire });
    return h;
  }

  clearTimer(handle: unknown): void {
    if (!this.timers.delete(handle as number)) throw new Error(`timer ${String(handle)} cleared twice or never set`);
    this.cleared.push(handle as number);
  }

  /** Moves time on and fires the timers due, in deadline order. */
  advance(ms: number): void {
    this.time += ms;
    const due = [...this.timers].filter(([, t]) => t.at <= this.time).sort((a, b) => a[1].at - b[1].at);
    for (const [h, t] of due) {
      this.timers.delete(h);
      t.fire();
    }
  }
}

const expired = (): Error => new Error("expired");

function settledState<V>(p: Promise<V>): Promise<{ value?: V; error?: string } | "pending"> {
  return Promise.race([
    p.then((value) => ({ value }), (e: Error) => ({ error: e.message })),
    new Promise<"pending">((r) => setImmediate(() => r("pending"))),
  ]);
}

test("resolve settles every waiter on the key, and only them; their timers are cleared", async (t) => {
  const clock = new FakeClock();
  const r = new WaiterRegistry<string, number>(clock);
  const a1 = r.register("a", clock.now() + 100, expired);
  const a2 = r.register("a", clock.now() + 200, expired);
  const b = r.register("b", clock.now() + 100, expired);
  t.is(r.resolve("a", 7), 2);
  t.deepEqual(await settledState(a1.promise), { value: 7 });
  t.deepEqual(await settledState(a2.promise), { value: 7 });
  t.is(await settledState(b.promise), "pending");
  t.is(r.size, 1);
  t.is(clock.timers.size, 1, "only b's timer is left");
  t.is(r.resolve("a", 8), 0, "a settled waiter is gone");
});

test("a deadline rejects with the waiter's own error, once; a later resolve finds nothing", async (t) => {
  const clock = new FakeClock();
  const r = new WaiterRegistry<string, number>(clock);
  const w = r.register("k", clock.now() + 50, () => new Error("too late for k"));
  clock.advance(49);
  t.is(await settledState(w.promise), "pending");
  clock.advance(1);
  t.deepEqual(await settledState(w.promise), { error: "too late for k" });
  t.is(r.resolve("k", 1), 0);
  t.is(r.size, 0);
  t.deepEqual(clock.cleared, [], "a timer that fired is not cleared again");
});

test("a deadline already past fires at the next timer turn; null means no deadline", async (t) => {
  const clock = new FakeClock();
  const r = new WaiterRegistry<string, number>(clock);
  const past = r.register("p", clock.now() - 10, expired);
  const never = r.register("n", null, expired);
  clock.advance(0);
  t.deepEqual(await settledState(past.promise), { error: "expired" });
  clock.advance(1e9);
  t.is(await settledState(never.promise), "pending");
  t.is(r.failAll(new Error("stop")), 1);
  t.deepEqual(await settledState(never.promise), { error: "stop" });
});

test("resolveWhere settles the waiters whose key matches, each with its own value", async (t) => {
  const clock = new FakeClock();
  const r = new WaiterRegistry<number, string>(clock);
  const at5 = r.register(5, clock.now() + 100, expired);
  const at9 = r.register(9, clock.now() + 100, expired);
  const at12 = r.register(12, clock.now() + 100, expired);
  t.is(r.resolveWhere((index) => index <= 10, (index) => `applied ${index}`), 2);
  t.deepEqual(await settledState(at5.promise), { value: "applied 5" });
  t.deepEqual(await settledState(at9.promise), { value: "applied 9" });
  t.is(await settledState(at12.promise), "pending");
  t.is(clock.cleared.length, 2);
});

test("fail settles one waiter alone; reject settles a key; failAll settles the rest and clears every timer", async (t) => {
  const clock = new FakeClock();
  const r = new WaiterRegistry<string, number>(clock);
  const mine = r.register("id", clock.now() + 100, expired);
  const other = r.register("id", clock.now() + 100, expired);
  const x = r.register("x", clock.now() + 100, expired);
  const y = r.register("y", clock.now() + 100, expired);
  mine.fail(new Error("dropped"));
  mine.fail(new Error("dropped again"));
  t.deepEqual(await settledState(mine.promise), { error: "dropped" });
  t.is(await settledState(other.promise), "pending");
  t.is(r.reject("x", new Error("no")), 1);
  t.deepEqual(await settledState(x.promise), { error: "no" });
  t.is(r.failAll(new Error("leader changed")), 2);
  t.deepEqual(await settledState(other.promise), { error: "leader changed" });
  t.deepEqual(await settledState(y.promise), { error: "leader changed" });
  t.is(r.size, 0);
  t.is(clock.timers.size, 0, "every timer cleared");
  t.is(clock.cleared.length, 4, "each exactly once (clearTimer throws on a second clear)");
  clock.advance(1000);
  t.is(r.failAll(new Error("again")), 0);
});

test("a waiter settled from inside another's settlement is settled once", async (t) => {
  const clock = new FakeClock();
  const r = new WaiterRegistry<string, number>(clock);
  const a = r.register("a", clock.now() + 100, expired);
  const b = r.register("b", clock.now() + 100, expired);
  void a.promise.then(() => r.resolve("b", 2));
  r.resolveWhere(() => true, () => 1);
  t.deepEqual(await settledState(a.promise), { value: 1 });
  t.deepEqual(await settledState(b.promise), { value: 1 });
  t.is(clock.cleared.length, 2);
});

/** A ReadRounds over a fake start: each started round waits until the test settles it. */
function rounds() {
  const started: Array<{ deadline: number; resolve(i: number): void; reject(e: Error): void }> = [];
  let refuse: Error | null = null;
  const r = new ReadRounds((deadline) => {
    if (refuse !== null) throw refuse;
    return new Promise<number>((resolve, reject) => started.push({ deadline, resolve, reject }));
  });
  return { r, started, refuseWith: (e: Error | null) => { refuse = e; } };
}

const turn = () => new Promise<void>((res) => setImmediate(res));

test("ReadRounds: the reads that arrive while a round runs share the next round, never the running one", async (t) => {
  const { r, started } = rounds();
  const a = r.join(100); // nothing in flight: starts at once
  t.is(started.length, 1);
  t.is(started[0]!.deadline, 100);
  const b = r.join(300); // arrives while round 1 runs: round 1's index may predate b
  const c = r.join(150);
  t.is(started.length, 1);
  started[0]!.resolve(7);
  t.is(await a, 7);
  t.is(await settledState(b), "pending");
  await turn();
  t.is(started.length, 2, "the next round starts once the first settled");
  t.is(started[1]!.deadline, 300, "the next round takes its first joiner's deadline");
  const d = r.join(500); // arrives while round 2 runs
  started[1]!.resolve(9);
  t.deepEqual(await Promise.all([b, c]), [9, 9]);
  await turn();
  t.is(started.length, 3);
  started[2]!.resolve(10);
  t.is(await d, 10);
});

test("ReadRounds: a failed round fails only its own reads; the next round still runs, and a refusal to start rejects its reads", async (t) => {
  const { r, started, refuseWith } = rounds();
  const a = r.join(100);
  const b = r.join(200);
  const c = r.join(250);
  started[0]!.reject(new Error("timeout"));
  await t.throwsAsync(a, { message: "timeout" });
  await turn();
  t.is(started.length, 2);
  started[1]!.resolve(5);
  t.deepEqual(await Promise.all([b, c]), [5, 5]);
  refuseWith(new Error("no leader"));
  await t.throwsAsync(r.join(300), { message: "no leader" });
  refuseWith(null);
  const d = r.join(400);
  t.is(started.length, 3, "a refused start leaves nothing in flight");
  started[2]!.resolve(6);
  t.is(await d, 6);
});
