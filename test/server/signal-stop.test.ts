// signalStop (node/server/signal-stop.ts): a graceful stop exits 0; a stop
// that hangs past the deadline exits 1; a second signal changes nothing; a
// failed stop is the caller's fatal error.
import test from "ava";
import type { Logger } from "../../node/server/log.js";
import { signalStop } from "../../node/server/signal-stop.js";

function harness(stop: () => Promise<void>, deadlineMs = 100) {
  const exits: number[] = [];
  const lines: string[] = [];
  const fatals: unknown[] = [];
  const note = (msg: string) => { lines.push(msg); };
  const log: Logger = { debug: note, info: note, warn: note, error: note };
  const handler = signalStop({ stop, log, fatal: (e) => fatals.push(e), exit: (c) => exits.push(c), deadlineMs });
  return { handler, exits, lines, fatals };
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

test("a stop that finishes exits 0, and the deadline does not fire after it", async (t) => {
  const h = harness(() => sleep(10));
  h.handler("SIGTERM");
  await sleep(200);
  t.deepEqual(h.exits, [0]);
  t.deepEqual(h.lines, ["stopping"]);
});

test("a stop that hangs past the deadline exits 1, saying so", async (t) => {
  const h = harness(() => new Promise(() => {}));
  h.handler("SIGTERM");
  await sleep(30);
  t.deepEqual(h.exits, [], "not before the deadline");
  await sleep(150);
  t.deepEqual(h.exits, [1]);
  t.true(h.lines.includes("the stop did not finish in time: exiting now"));
});

test("a second signal during the stop changes nothing (Ctrl-C, then npm start's SIGTERM)", async (t) => {
  let stops = 0;
  const h = harness(async () => { stops++; await sleep(20); });
  h.handler("SIGINT");
  h.handler("SIGTERM");
  await sleep(200);
  t.is(stops, 1);
  t.deepEqual(h.exits, [0]);
});

test("a stop that fails goes to fatal, not to exit 0", async (t) => {
  const h = harness(() => Promise.reject(new Error("disk gone")));
  h.handler("SIGTERM");
  await sleep(150);
  t.deepEqual(h.exits, []);
  t.is((h.fatals[0] as Error).message, "disk gone");
});
