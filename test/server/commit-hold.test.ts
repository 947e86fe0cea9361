// The leader's hold on commit-only MsgApps (node/server/commit-hold.ts): held
// for holdMs, dropped when a later MsgApp to the same follower leaves first,
// sent unchanged otherwise; every other message passes at once, in order.
import test from "ava";
import { type Message, MessageType } from "../../node/raft/index.js";
import { CommitHold, type Schedule } from "../../node/server/commit-hold.js";

const base: Message = {
  type: MessageType.App, from: 1, to: 2, term: 3, logTerm: 3, index: 10, entries: [], commit: 10,
  reject: false, rejectHint: 0, snapshot: null, context: new Uint8Array(0),
};
const commitOnly = (to: number, commit: number): Message => ({ ...base, to, commit, index: commit });
const withEntry = (to: number, index: number, commit: number): Message => ({
  ...base, to, index: index - 1, commit, entries: [{ term: 3, index, type: 0, data: new Uint8Array([1]) }],
});
const heartbeat = (to: number): Message => ({ ...base, type: MessageType.Heartbeat, to, index: 0, logTerm: 0 });

/** A manual clock: timers fire when the test says so. */
function manual(): { schedule: Schedule; fire(): void; pending(): number; delays: number[] } {
  let timers: Array<{ fn: () => void; live: boolean }> = [];
  const delays: number[] = [];
  return {
    delays,
    schedule: (fn, ms) => {
      const tm = { fn, live: true };
      timers.push(tm);
      delays.push(ms);
      return () => { tm.live = false; };
    },
    fire: () => {
      const due = timers.filter((x) => x.live);
      timers = [];
      for (const x of due) x.fn();
    },
    pending: () => timers.filter((x) => x.live).length,
  };
}

function setup(holdMs = 5) {
  const sent: Message[][] = [];
  const clock = manual();
  const hold = new CommitHold((m) => sent.push([...m]), holdMs, clock.schedule);
  return { sent, clock, hold, flat: () => sent.flat() };
}

test("a commit-only MsgApp nothing follows is sent unchanged once the hold expires", (t) => {
  const { hold, clock, flat } = setup();
  const m = commitOnly(2, 11);
  hold.send([m]);
  t.deepEqual(flat(), [], "held");
  t.deepEqual(hold.holding, [2]);
  t.deepEqual(clock.delays, [5]);
  clock.fire();
  t.deepEqual(flat(), [m]);
  t.deepEqual(hold.holding, []);
});

test("a later MsgApp to the same follower drops the held one; another follower's stays held", (t) => {
  const { hold, clock, flat } = setup();
  hold.send([commitOnly(2, 11), commitOnly(3, 11)]);
  const next = withEntry(2, 12, 11);
  hold.send([next]);
  t.deepEqual(flat(), [next], "the next proposal's MsgApp leaves at once and carries the commit");
  t.deepEqual(hold.holding, [3]);
  clock.fire();
  t.deepEqual(flat(), [next, commitOnly(3, 11)]);
});

test("once nothing is held the timer stops, so the next hold waits its full holdMs", (t) => {
  const { hold, clock, flat } = setup();
  hold.send([commitOnly(2, 11), commitOnly(3, 11)]);
  hold.send([withEntry(2, 12, 11), withEntry(3, 12, 11)]);
  t.is(clock.pending(), 0, "both superseded: no timer left to cut the next hold short");
  hold.send([commitOnly(2, 12)]);
  t.is(clock.pending(), 1);
  t.deepEqual(clock.delays, [5, 5]);
  clock.fire();
  t.deepEqual(flat().at(-1), commitOnly(2, 12));
});

test("a newer commit-only MsgApp replaces the held one, under the timer already running", (t) => {
  const { hold, clock, flat } = setup();
  hold.send([commitOnly(2, 11)]);
  hold.send([commitOnly(2, 12)]);
  t.is(clock.pending(), 1, "one timer");
  clock.fire();
  t.deepEqual(flat(), [commitOnly(2, 12)]);
});

test("other messages pass at once and in order, and do not drop a held MsgApp", (t) => {
  const { hold, clock, sent } = setup();
  const resp: Message = { ...base, type: MessageType.AppResp, to: 3 };
  hold.send([heartbeat(2), commitOnly(2, 11), resp, withEntry(3, 12, 11)]);
  t.deepEqual(sent, [[heartbeat(2), resp, withEntry(3, 12, 11)]], "one send for the messages that go now");
  t.deepEqual(hold.holding, [2], "a heartbeat does not supersede a MsgApp");
  clock.fire();
  t.deepEqual(sent.at(-1), [commitOnly(2, 11)]);
});

test("stop drops what is held and cancels the timer; a hold of 0 ms holds nothing", (t) => {
  const { hold, clock, flat } = setup();
  hold.send([commitOnly(2, 11)]);
  hold.stop();
  t.is(clock.pending(), 0);
  clock.fire();
  t.deepEqual(flat(), []);
  const zero = setup(0);
  zero.hold.send([commitOnly(2, 11)]);
  t.deepEqual(zero.flat(), [commitOnly(2, 11)]);
  t.is(zero.clock.pending(), 0);
  t.throws(() => new CommitHold(() => {}, -1), { instanceOf: RangeError });
});

test("flush sends everything held at once and stops the timer; with nothing held it sends nothing", (t) => {
  const { hold, clock, sent, flat } = setup();
  hold.send([commitOnly(2, 11), commitOnly(3, 11)]);
  t.is(clock.pending(), 1);
  hold.flush();
  t.deepEqual(flat(), [commitOnly(2, 11), commitOnly(3, 11)]);
  t.deepEqual(hold.holding, []);
  t.is(clock.pending(), 0, "the timer is cancelled");
  hold.flush();
  t.is(sent.length, 1, "nothing more is sent");
});
