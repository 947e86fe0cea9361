import test from "ava";
import { message, MessageType } from "../../node/raft/types.js";
import { PartitionSchedule, chooseProfile, type FaultProfile } from "./faults.js";
import { CALM, Network, type NetworkParams } from "./network.js";
import { Prng } from "./prng.js";

const msg = (from: number, to: number, index = 0) => message({ type: MessageType.App, from, to, index });

function drain(net: Network, until: number): ReturnType<Network["takeDue"]> {
  const out = [];
  for (let t = 0; t <= until; t++) out.push(...net.takeDue(t));
  return out;
}

test("a calm network delivers every message exactly once after its delay", (t) => {
  const net = new Network(new Prng(1), CALM);
  for (let i = 0; i < 10; i++) t.is(net.send(msg(1, 2, i), 0), "queued");
  t.deepEqual(net.takeDue(0), []);
  const got = net.takeDue(1);
  t.deepEqual(got.map((m) => m.index).sort((a, b) => a - b), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  t.is(net.pending(), 0);
});

test("loss, duplication and reordering all happen, at about the configured rates", (t) => {
  const params: NetworkParams = { dropRate: 0.2, dupRate: 0.2, minDelay: 1, maxDelay: 5, longDelayRate: 0.05, longDelay: 30 };
  const net = new Network(new Prng(2), params);
  const n = 2000;
  let dropped = 0;
  for (let i = 0; i < n; i++) if (net.send(msg(1, 2, i), 0) === "dropped") dropped++;
  const got = drain(net, 40).map((m) => m.index);
  t.true(dropped > n * 0.15 && dropped < n * 0.25, `dropped ${dropped}`);
  const dups = got.length - new Set(got).size;
  t.true(dups > 0.15 * (n - dropped) && dups < 0.25 * (n - dropped), `dups ${dups}`);
  const sorted = [...got].sort((a, b) => a - b);
  t.notDeepEqual(got, sorted, "delivery order differs from send order");
});

test("a cut link drops messages one way only; in-flight messages on a cut link are lost", (t) => {
  const net = new Network(new Prng(3), CALM);
  net.send(msg(1, 2, 1), 0);
  net.cutLink(1, 2);
  t.is(net.send(msg(1, 2, 2), 0), "cut");
  t.is(net.send(msg(2, 1, 3), 0), "queued");
  t.deepEqual(net.takeDue(1).map((m) => m.index), [3]);
  net.healAll();
  t.is(net.send(msg(1, 2, 4), 1), "queued");
  t.deepEqual(net.takeDue(2).map((m) => m.index), [4]);
});

test("a symmetric partition cuts both directions between the groups only", (t) => {
  const net = new Network(new Prng(4), CALM);
  net.partition([1], [2, 3]);
  t.true(net.isCut(1, 2) && net.isCut(2, 1) && net.isCut(1, 3) && net.isCut(3, 1));
  t.false(net.isCut(2, 3));
  t.is(net.cutCount(), 4);
});

test("the same seed gives the same deliveries", (t) => {
  const run = () => {
    const net = new Network(new Prng(5), { dropRate: 0.1, dupRate: 0.1, minDelay: 1, maxDelay: 4, longDelayRate: 0.1, longDelay: 9 });
    for (let i = 0; i < 200; i++) net.send(msg(1 + (i % 3), 2, i), i % 7);
    return drain(net, 30).map((m) => `${m.from}:${m.index}`);
  };
  t.deepEqual(run(), run());
});

const hostile: FaultProfile = { ...chooseProfile(new Prng(1)), partitionRate: 1, partitionLength: [5, 5] };

test("the partition schedule cuts, then heals at the scheduled time", (t) => {
  const net = new Network(new Prng(6), CALM);
  const s = new PartitionSchedule(new Prng(7), hostile);
  const started = s.step(10, net, [1, 2, 3, 4, 5]);
  t.truthy(started?.startsWith("partition "));
  t.true(net.cutCount() > 0);
  t.is(s.step(14, net, [1, 2, 3, 4, 5]), null);
  t.true(net.cutCount() > 0);
  t.truthy(s.step(15, net, [1, 2, 3, 4, 5])?.startsWith("heal"));
  t.is(net.cutCount(), 0);
});

test("every partition kind occurs and none cuts a node from itself", (t) => {
  const kinds = new Set<string>();
  const s = new PartitionSchedule(new Prng(8), hostile);
  for (let now = 0; now < 400; now++) {
    const net = new Network(new Prng(now), CALM);
    s.step(now, net, [1, 2, 3]);
    if (s.active !== null) kinds.add(s.active.kind);
    for (const x of [1, 2, 3]) t.false(net.isCut(x, x));
    s.healAll(net);
  }
  t.deepEqual([...kinds].sort(), ["bridge", "isolate", "one-way", "split"]);
});

test("no partition starts when the rate is zero", (t) => {
  const net = new Network(new Prng(9), CALM);
  const s = new PartitionSchedule(new Prng(9), { ...hostile, partitionRate: 0 });
  for (let now = 0; now < 200; now++) t.is(s.step(now, net, [1, 2, 3]), null);
});
