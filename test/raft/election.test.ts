// Raft §5.2 (leader election) and §5.4.1 (election restriction).
import test from "ava";
import { MessageType, Network, StateType } from "./network.js";

const NO_PREVOTE = { preVote: false, checkQuorum: false };

test("at most one leader per term, and ticks alone elect exactly one leader", (t) => {
  for (const seed of [1, 2, 3, 4, 5]) {
    const net = new Network([1, 2, 3, 4, 5], {}, seed);
    net.tick(40);
    const leaders = net.leaders();
    t.is(leaders.length, 1, `seed ${seed}`);
    const term = net.status(leaders[0]!).hardState.term;
    for (const id of [1, 2, 3, 4, 5]) {
      t.is(net.status(id).softState.lead, leaders[0]!, `seed ${seed} node ${id} follows the leader`);
      t.is(net.status(id).hardState.term, term);
    }
  }
});

test("a candidate that gets a majority becomes leader and appends a no-op of its term", (t) => {
  const net = new Network([1, 2, 3]);
  net.elect(1);
  const st = net.status(1);
  t.is(st.softState.state, StateType.Leader);
  t.is(st.lastIndex, 2); // bootstrap snapshot at 1, no-op at 2
  t.is(net.node(1).storage.term(2), st.hardState.term);
  t.is(st.hardState.commit, 2);
});

test("split vote: nobody wins, and a later election (higher term) elects one leader", (t) => {
  const net = new Network([1, 2, 3, 4], NO_PREVOTE);
  // 1 and 2 campaign at once; 3 hears 1 first, 4 hears 2 first: 2 votes each, quorum is 3.
  net.node(1).raw.campaign();
  net.node(2).raw.campaign();
  const msgs = net.takeMessages();
  const order = [
    ...msgs.filter((m) => (m.from === 1 && m.to === 3) || (m.from === 2 && m.to === 4)),
    ...msgs.filter((m) => !((m.from === 1 && m.to === 3) || (m.from === 2 && m.to === 4))),
  ];
  for (const m of order) net.deliver(m);
  net.settle();
  t.deepEqual(net.leaders(), []);
  const splitTerm = net.status(1).hardState.term;
  t.is(net.status(2).hardState.term, splitTerm);
  // Each candidate saw two rejections out of four voters: it knows it lost.
  t.is(net.status(1).softState.state, StateType.Follower);
  t.is(net.status(2).softState.state, StateType.Follower);
  net.tick(60);
  t.is(net.leaders().length, 1);
  t.true(net.status(net.leaders()[0]!).hardState.term > splitTerm);
});

test("a leader that sees a higher term steps down", (t) => {
  const net = new Network([1, 2, 3], NO_PREVOTE);
  net.elect(1);
  net.isolate(1);
  net.elect(2); // 2 and 3 move to a higher term
  t.true(net.status(2).hardState.term > net.status(1).hardState.term);
  t.is(net.status(1).softState.state, StateType.Leader); // does not know yet
  net.heal();
  net.tick(2);
  t.is(net.status(1).softState.state, StateType.Follower);
  t.is(net.status(1).softState.lead, 2);
  t.deepEqual(net.leaders(), [2]);
});

test("a node votes only for a candidate whose log is at least as up to date (§5.4.1)", (t) => {
  const net = new Network([1, 2, 3], NO_PREVOTE);
  net.elect(1);
  net.cutLink(1, 3);
  net.propose(1, "a"); // on 1 and 2 only
  t.deepEqual(net.appliedText(2), ["a"]);
  t.deepEqual(net.appliedText(3), []);
  net.isolate(1);
  net.elect(3);
  // 2 has a longer log than 3 and refuses; 3 cannot get a majority.
  const refusal = net.delivered.find((m) => m.type === MessageType.VoteResp && m.from === 2 && m.to === 3);
  t.true(refusal?.reject);
  t.not(net.status(3).softState.state, StateType.Leader);
  net.elect(2);
  t.is(net.status(2).softState.state, StateType.Leader); // (1 is isolated and still thinks it leads)
  net.heal();
  net.tick(2);
  t.deepEqual(net.appliedText(3), ["a"]);
});

test("a node grants at most one vote per term", (t) => {
  const net = new Network([1, 2, 3], NO_PREVOTE);
  net.node(1).raw.campaign();
  net.node(2).raw.campaign(); // same term as 1
  const msgs = net.takeMessages();
  const term = net.status(1).hardState.term;
  t.is(net.status(2).hardState.term, term);
  for (const m of msgs) net.deliver(m);
  net.settle();
  const grantsBy3 = net.delivered.filter((m) => m.type === MessageType.VoteResp && m.from === 3 && m.term === term && !m.reject);
  t.is(grantsBy3.length, 1);
  t.true(net.leaders().length <= 1);
});
