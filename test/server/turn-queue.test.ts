// The client port's turn queue (node/server/turn-queue.ts) through the
// shared unary handler: a burst of calls is admitted and started in arrival
// order over several event-loop turns, each turn's work within the budget,
// so that other work (a timer, the Ready loop) runs between them. The clock
// is the test's: each call's work advances it by 1 ms.
import test from "ava";
import { unaryHandler } from "../../node/server/handlers.js";
import { TurnQueue } from "../../node/server/turn-queue.js";
import { NONE } from "../../node/raft/index.js";

function harness(budgetMs: number, refuse: (req: number) => boolean = () => false) {
  let clock = 0;
  const events: string[] = [];
  const handler = unaryHandler({
    leaderHint: () => ({ leaderId: NONE, leaderAddress: "", self: 1 }),
    log: { debug: () => {}, info: () => {}, warn: () => {}, error: () => {} } as never,
    record: () => {},
    admit: (call) => (refuse(call.request as number) ? Promise.reject(new Error("refused")) : Promise.resolve()),
    turns: new TurnQueue(budgetMs, () => clock),
  })("Probe", (req: number) => {
    clock += 1; // this call's validation
    events.push(`call ${req}`);
    return Promise.resolve(req);
  });
  const answers: unknown[] = [];
  const burst = (n: number) => {
    for (let i = 0; i < n; i++) {
      const call = { request: i, cancelled: false, getDeadline: () => Infinity, getPeer: () => "ipv4:127.0.0.1:1", metadata: {} };
      handler(call as never, (err: unknown, res: unknown) => answers.push(err === null ? res : (err as Error).message));
    }
  };
  const settled = async (n: number) => {
    while (answers.length < n) await new Promise((r) => setImmediate(r));
  };
  return { events, answers, burst, settled };
}

test("a burst of calls is started over several turns, in arrival order: a timer set meanwhile runs before the last", async (t) => {
  const h = harness(5);
  h.burst(40);
  setImmediate(() => h.events.push("timer"));
  await h.settled(40);
  const calls = h.events.filter((e) => e !== "timer");
  t.deepEqual(calls, Array.from({ length: 40 }, (_, i) => `call ${i}`), "every call once, in arrival order");
  t.true(h.events.indexOf("timer") < h.events.indexOf("call 39"), `the timer ran between the turns: ${h.events.indexOf("timer")}`);
  t.true(h.events.indexOf("timer") >= 5, "the first turn's budget was used");
  t.deepEqual([...h.answers].sort((a, b) => (a as number) - (b as number)), Array.from({ length: 40 }, (_, i) => i));
});

test("calls within the budget all start in the turn they arrived in", async (t) => {
  const h = harness(50);
  h.burst(10);
  setImmediate(() => h.events.push("timer"));
  await h.settled(10);
  t.is(h.events.indexOf("timer"), 10);
});

test("a refused admission fails only its own call; the queue goes on", async (t) => {
  const h = harness(5, (req) => req % 3 === 0);
  h.burst(12);
  await h.settled(12);
  t.deepEqual(h.events, [1, 2, 4, 5, 7, 8, 10, 11].map((i) => `call ${i}`));
  t.is(h.answers.filter((a) => typeof a !== "number").length, 4, "four failures answered");
});

test("an admission or a start that throws at once fails its own call only; the queue goes on", async (t) => {
  const q = new TurnQueue(5);
  const ok = () => Promise.resolve();
  const results = await Promise.allSettled([
    q.run(() => { throw new Error("admit threw"); }, () => Promise.resolve(1)),
    q.run(ok, () => { throw new Error("start threw"); }),
    q.run(ok, () => Promise.resolve(3)),
  ]);
  t.deepEqual(results.map((r) => (r.status === "fulfilled" ? r.value : (r.reason as Error).message)), ["admit threw", "start threw", 3]);
});
