import test from "ava";
import { Network, StateType } from "./network.js";

test("a 3-node cluster elects one leader, replicates and applies proposals exactly once", (t) => {
  const net = new Network([1, 2, 3]);
  net.elect(1);
  t.deepEqual(net.leaders(), [1]);
  net.propose(1, "a");
  net.propose(2, "b"); // forwarded to the leader
  net.tick(3);
  for (const id of [1, 2, 3]) {
    t.deepEqual(net.appliedText(id), ["a", "b"], `node ${id}`);
    const idx = net.node(id).appliedIndexes;
    t.deepEqual(idx, [...new Set(idx)].sort((a, b) => a - b));
  }
  t.is(net.status(2).softState.state, StateType.Follower);
  t.is(net.status(2).softState.lead, 1);
});

test("ticks alone elect a leader", (t) => {
  const net = new Network([1, 2, 3, 4, 5]);
  net.tick(40);
  t.is(net.leaders().length, 1);
});
