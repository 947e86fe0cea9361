import test from "ava";
import { InterruptState, interruptExitCode, REPEAT_GRACE_MS } from "../../chaos/interrupt.js";

/** An InterruptState on a fake clock, recording what it did. */
function harness() {
  const did: string[] = [];
  let now = 0;
  const state = new InterruptState({
    now: () => now,
    log: () => {},
    abort: (sig) => void did.push(`abort ${sig}`),
    force: (why) => {
      did.push(`force ${why}`);
      throw new Error("exited");
    },
  });
  return { did, state, at: (ms: number) => (now = ms) };
}

test("one Ctrl-C relayed by npm and tsx (the same signal within the grace) aborts once and forces nothing", (t) => {
  const h = harness();
  h.state.handle("SIGINT");
  h.at(5);
  h.state.handle("SIGINT");
  h.at(40);
  h.state.handle("SIGINT");
  t.deepEqual(h.did, ["abort SIGINT"]);
  t.is(h.state.received, "SIGINT");
});

test("a signal after the grace is a second interrupt: it forces the exit", (t) => {
  const h = harness();
  h.state.handle("SIGTERM");
  h.at(REPEAT_GRACE_MS + 1);
  t.throws(() => h.state.handle("SIGINT"), { message: "exited" });
  t.deepEqual(h.did, ["abort SIGTERM", "force second SIGINT"]);
});

test("an interrupted run exits 128 + the signal's number", (t) => {
  t.is(interruptExitCode("SIGINT"), 130);
  t.is(interruptExitCode("SIGTERM"), 143);
  t.is(interruptExitCode("SIGHUP"), 129);
});
