// Attempt throttling in the replicated state (node/vault/throttle.ts): the
// delay after unconfirmed attempts is decided with the leader time stamped
// on each entry, so every node refuses or counts alike.
import test from "ava";
import { DEFAULT_THROTTLE, NO_THROTTLE, VaultStateMachine, encodeCommand, stampTime, unstamp } from "../../node/vault/index.js";
import { decodeSchedule, encodeSchedule, notBefore } from "../../node/vault/throttle.js";
import type { Command } from "../../node/vault/index.js";
import { CLUSTER, Harness, beginCmd, confirmCmd, expectError, expectOk, hex, register, registerCmd } from "../../testkit/vault.js";

const T0 = Date.UTC(2026, 11, 4, 12);
const reg = register("tess", { guessLimit: 10 });

function throttled(): Harness {
  const h = new Harness(new VaultStateMachine({ clusterId: CLUSTER, throttle: DEFAULT_THROTTLE }));
  if (!t0(h, registerCmd(reg)).ok) throw new Error("setup: register refused");
  return h;
}

/** Applies `c` stamped with the leader time `ms`. */
function at(h: Harness, ms: number, c: Command) {
  return h.result(stampTime(encodeCommand(c), ms));
}

function t0(h: Harness, c: Command) {
  return at(h, T0, c);
}

test("three attempts are free, the fourth waits 30 s, the fifth a minute; refusals count nothing and say when", (t) => {
  const h = throttled();
  for (let i = 0; i < 3; i++) expectOk(t, at(h, T0 + i, beginCmd("tess")), "begin");
  const early = at(h, T0 + 10_000, beginCmd("tess"));
  expectError(t, early, "RESOURCE_EXHAUSTED", "THROTTLED");
  t.is(early.ok ? 0 : early.notBefore, T0 + 2 + 30_000, "30 s after the last counted begin");
  t.is(h.sm.getRecord("tess")?.attempts, 3, "nothing counted");
  t.regex(early.ok ? "" : early.message, /allowed in 21 s; no attempt was counted/);
  expectOk(t, at(h, T0 + 2 + 30_000, beginCmd("tess")), "begin");
  expectError(t, at(h, T0 + 2 + 30_000 + 59_999, beginCmd("tess")), "RESOURCE_EXHAUSTED", "THROTTLED");
  expectOk(t, at(h, T0 + 2 + 90_000, beginCmd("tess")), "begin");
  t.is(h.sm.getRecord("tess")?.attempts, 5);
});

test("a confirmation makes the next attempts free again", (t) => {
  const h = throttled();
  let last = 0;
  for (let i = 0; i < 3; i++) last = expectOk(t, at(h, T0, beginCmd("tess")), "begin").attemptId;
  expectError(t, at(h, T0 + 1000, beginCmd("tess")), "RESOURCE_EXHAUSTED", "THROTTLED");
  expectOk(t, at(h, T0 + 2000, confirmCmd(reg, last)), "confirm");
  expectOk(t, at(h, T0 + 2001, beginCmd("tess")), "begin");
});

test("the leader time never goes back: an earlier stamp or no stamp applies at the latest time seen", (t) => {
  const h = throttled();
  for (let i = 0; i < 3; i++) expectOk(t, at(h, T0 + 100_000, beginCmd("tess")), "begin");
  expectError(t, at(h, T0 + 200_000, beginCmd("nobody")), "NOT_FOUND", "RECORD_NOT_FOUND"); // moves the clock
  t.is(h.sm.leaderTime, T0 + 200_000);
  // Stamped T0 (before the last begin): applied at T0 + 200 s, past the 30 s delay, so it counts.
  expectOk(t, at(h, T0, beginCmd("tess")), "begin");
  t.is(h.sm.leaderTime, T0 + 200_000);
  // Unstamped: also the latest time, now within the next (60 s) delay.
  expectError(t, h.result(beginCmd("tess")), "RESOURCE_EXHAUSTED", "THROTTLED");
  t.is(h.sm.getRecord("tess")?.attempts, 4);
});

test("a retry stamped by another leader is the same request: same outcome, not REQUEST_ID_REUSED", (t) => {
  const h = throttled();
  for (let i = 0; i < 3; i++) expectOk(t, at(h, T0, beginCmd("tess")), "begin");
  const c = beginCmd("tess");
  const first = at(h, T0 + 5_000, c);
  expectError(t, first, "RESOURCE_EXHAUSTED", "THROTTLED");
  t.deepEqual(at(h, T0 + 60_000, c), first, "the remembered refusal, even after the delay");
  t.is(h.sm.getRecord("tess")?.attempts, 3);
});

test("without throttling (the default of a bare state machine, and of converted legacy states) nothing is refused", (t) => {
  const h = new Harness();
  expectOk(t, h.result(registerCmd(reg)), "register");
  for (let i = 0; i < 9; i++) expectOk(t, at(h, T0, beginCmd("tess")), "begin");
  t.deepEqual(h.sm.throttle, NO_THROTTLE);
});

test("the schedule and each record's last begin travel in the snapshot", (t) => {
  const h = throttled();
  for (let i = 0; i < 3; i++) expectOk(t, at(h, T0, beginCmd("tess")), "begin");
  const r = new Harness(VaultStateMachine.restore({ clusterId: CLUSTER }, h.sm.snapshot()));
  r.index = h.index;
  t.is(hex(r.sm.digest()), hex(h.sm.digest()));
  const c = beginCmd("tess");
  t.deepEqual(at(r, T0 + 1000, c), at(h, T0 + 1000, c));
  t.deepEqual(r.sm.throttle, DEFAULT_THROTTLE);
});

test("schedules encode exactly and refuse what they cannot hold; stamps round-trip", (t) => {
  t.deepEqual(decodeSchedule(encodeSchedule(DEFAULT_THROTTLE)), DEFAULT_THROTTLE);
  t.deepEqual(decodeSchedule(encodeSchedule(NO_THROTTLE)), NO_THROTTLE);
  t.throws(() => encodeSchedule({ free: 256, delaysMs: [] }));
  t.throws(() => encodeSchedule({ free: 1, delaysMs: [1500] }), { message: /whole seconds/ });
  t.throws(() => decodeSchedule(Uint8Array.of(1, 2, 0, 0, 0, 1)));
  t.is(notBefore(DEFAULT_THROTTLE, 2, T0), 0);
  t.is(notBefore(DEFAULT_THROTTLE, 20, T0), T0 + 3_600_000, "the last delay repeats");
  const payload = encodeCommand(beginCmd("tess"));
  const stamped = stampTime(stampTime(payload, 5), T0);
  t.deepEqual(unstamp(stamped), { time: T0, payload });
  t.deepEqual(unstamp(payload), { time: null, payload });
});
