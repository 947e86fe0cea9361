// ClusterClock (node/server/cluster-clock.ts): the cluster's time from the
// peers' `date` headers, with a fake clock and fake peers.
import test from "ava";
import { CLOCK_DEADBAND_MS, ClusterClock, SAMPLE_MAX_AGE_MS } from "../../node/server/cluster-clock.js";
import type { PeerClockSample } from "../../node/transport/index.js";

const DAY = 86_400_000;

/** A clock at `now` with peers whose clocks are `offsets` ms off this node's (undefined: does not answer); 20 ms round trips. */
function setup(offsets: Record<number, number | undefined>) {
  const env = { now: 1_800_000_000_000, changes: [] as number[] };
  const clock = new ClusterClock({
    now: () => env.now,
    peers: () => Object.keys(offsets).map(Number),
    probe: async (id): Promise<PeerClockSample> => {
      const off = offsets[id];
      if (off === undefined) throw new Error("unreachable");
      const sentMs = env.now;
      // The date header: the peer's time at the answer (10 ms later), truncated to the second.
      return { peerMs: Math.floor((sentMs + 10 + off) / 1000) * 1000, sentMs, receivedMs: sentMs + 20 };
    },
    onChange: (ms) => env.changes.push(ms),
  });
  return { env, clock, offsets };
}

test("no time before the first round of readings has ended, answered or not (a leader stamps nothing meanwhile)", async (t) => {
  const { clock, env } = setup({ 2: undefined, 3: undefined });
  t.is(clock.now(), null);
  await clock.probeAll();
  t.is(clock.now(), env.now, "no peer answered: this node's clock");
});

test("sane clocks: no correction, and none reported", async (t) => {
  const { clock, env } = setup({ 2: 300, 3: -700 });
  await clock.probeAll();
  t.is(clock.offsetMs(), 0);
  t.is(clock.now(), env.now);
  t.deepEqual(env.changes, []);
});

test("this node a day ahead of two sane peers: the cluster's time is theirs, within the date header's second", async (t) => {
  const { clock, env } = setup({ 2: -DAY, 3: -DAY + 400 });
  await clock.probeAll();
  t.true(Math.abs(clock.offsetMs() + DAY) <= 1_000, `${clock.offsetMs()}`);
  t.true(Math.abs(clock.now()! - (env.now - DAY)) <= 1_000);
  t.is(env.changes.length, 1);
});

test("one peer with a bad clock does not drag a sane node (3 and 5 members)", async (t) => {
  for (const peers of [{ 2: DAY, 3: 0 }, { 2: DAY, 3: 0, 4: 100, 5: -DAY }]) {
    const { clock } = setup(peers);
    await clock.probeAll();
    t.is(clock.offsetMs(), 0, JSON.stringify(peers));
  }
});

test("no strict majority of readings, no correction: one of two peers silent, or an even split", async (t) => {
  const silent = setup({ 2: -DAY, 3: undefined });
  await silent.clock.probeAll();
  t.is(silent.clock.offsetMs(), 0, "this node and one peer disagree: neither wins");
  const split = setup({ 2: -DAY, 3: -DAY, 4: 0 });
  await split.clock.probeAll();
  t.is(split.clock.offsetMs(), 0, "two of four say a day behind, two (this node included) say now");
});

test("differences inside the dead band are left alone", async (t) => {
  const { clock } = setup({ 2: CLOCK_DEADBAND_MS - 600, 3: CLOCK_DEADBAND_MS - 600 });
  await clock.probeAll();
  t.is(clock.offsetMs(), 0);
});

test("readings age out: the correction ends when the peers stop answering, and is reported back at 0", async (t) => {
  const { clock, env, offsets } = setup({ 2: -DAY, 3: -DAY });
  await clock.probeAll();
  t.not(clock.offsetMs(), 0);
  offsets[2] = undefined;
  offsets[3] = undefined;
  env.now += SAMPLE_MAX_AGE_MS + 100; // past the readings (taken 20 ms after their calls left)
  await clock.probeAll();
  t.is(clock.offsetMs(), 0);
  t.deepEqual(env.changes.map((x) => x === 0), [false, true]);
});

test("a peer that left the membership no longer counts", async (t) => {
  const s = setup({ 2: -DAY, 3: -DAY });
  await s.clock.probeAll();
  delete s.offsets[2];
  delete s.offsets[3];
  t.is(s.clock.offsetMs(), 0);
});
