// The shared unary handler (node/server/handlers.ts): the caller's
// cancellation and deadline are honoured before any work starts.
import test from "ava";
import { callerGone, unaryHandler } from "../../node/server/handlers.js";
import { NONE } from "../../node/raft/index.js";

function harness() {
  const recorded: string[] = [];
  const ran: unknown[] = [];
  const handler = unaryHandler({
    leaderHint: () => ({ leaderId: NONE, leaderAddress: "", self: 1 }),
    log: { debug: () => {}, info: () => {}, warn: () => {}, error: () => {} } as never,
    record: (method, code) => recorded.push(`${method} ${code}`),
  })("Probe", async (req: unknown) => { ran.push(req); return "done"; });
  return { recorded, ran, handler };
}

function call(over: { cancelled?: boolean; deadline?: number | Date }) {
  return { request: "req", cancelled: over.cancelled ?? false, getDeadline: () => over.deadline ?? Infinity, getPeer: () => "ipv4:127.0.0.1:1", metadata: {} } as never;
}

async function invoke(h: ReturnType<typeof harness>, c: never): Promise<unknown[]> {
  const answers: unknown[] = [];
  h.handler(c, (err: unknown, res: unknown) => answers.push(err ?? res));
  await new Promise((r) => setTimeout(r, 20));
  return answers;
}

test("a live call runs and answers", async (t) => {
  const h = harness();
  t.deepEqual(await invoke(h, call({ deadline: new Date(Date.now() + 60_000) })), ["done"]);
  t.deepEqual(h.ran, ["req"]);
  t.deepEqual(h.recorded, ["Probe OK"]);
});

test("a cancelled call, or one past its deadline, does no work and is counted as CANCELLED", async (t) => {
  for (const c of [call({ cancelled: true }), call({ deadline: Date.now() - 1 }), call({ deadline: new Date(Date.now() - 1000) })]) {
    const h = harness();
    t.deepEqual(await invoke(h, c), [], "no answer: the caller is gone");
    t.deepEqual(h.ran, [], "the handler did not run");
    t.deepEqual(h.recorded, ["Probe CANCELLED"]);
  }
});

test("callerGone: no deadline (Infinity) is never gone", (t) => {
  t.false(callerGone({ cancelled: false, getDeadline: () => Infinity }));
  t.true(callerGone({ cancelled: true, getDeadline: () => Infinity }));
  t.true(callerGone({ cancelled: false, getDeadline: () => 0 }));
});
