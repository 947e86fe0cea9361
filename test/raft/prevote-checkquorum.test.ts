// PreVote (dissertation §9.6) and CheckQuorum / leader lease (§6.2, §4.2.3).
import test from "ava";
import { MessageType, Network, StateType } from "./network.js";

test("PreVote: a partitioned node does not bump its term, and rejoining does not disturb the leader", (t) => {
  const net = new Network([1, 2, 3]);
  net.elect(1);
  const term = net.status(1).hardState.term;
  net.isolate(3);
  net.tick(100);
  t.is(net.status(3).hardState.term, term, "pre-elections that cannot win leave the term alone");
  t.not(net.status(3).softState.state, StateType.Leader);
  net.heal();
  net.tick(20);
  t.deepEqual(net.leaders(), [1]);
  t.is(net.status(1).hardState.term, term);
  t.is(net.status(3).softState.lead, 1);
});

test("without PreVote the same partition forces the leader out (the test above can fail)", (t) => {
  const net = new Network([1, 2, 3], { preVote: false });
  net.elect(1);
  const term = net.status(1).hardState.term;
  net.isolate(3);
  net.tick(100);
  t.true(net.status(3).hardState.term > term + 3);
  net.heal();
  net.tick(30);
  t.true(net.status(1).hardState.term > term, "the leader had to step down to the inflated term");
});

test("PreVote: a pre-candidate with a stale log gets no pre-votes", (t) => {
  const net = new Network([1, 2, 3]);
  net.elect(1);
  net.cutLink(1, 3);
  net.propose(1, "a");
  net.isolate(1);
  net.tick(30, [2, 3]); // 2 and 3 are out of lease; 3's log is stale so only 2 can win
  t.deepEqual(net.leaders().filter((id) => id !== 1), [2]);
  const preVoteGrantsTo3 = net.delivered.filter((m) => m.type === MessageType.PreVoteResp && m.to === 3 && !m.reject && m.from === 2);
  t.is(preVoteGrantsTo3.length, 0);
});

test("CheckQuorum: a leader that cannot reach a quorum steps down within two election timeouts", (t) => {
  const net = new Network([1, 2, 3]);
  net.elect(1);
  net.isolate(1);
  // Followers count as active for the round in which they were last heard, so the
  // leader steps down at the second CheckQuorum round (tick 20), not earlier.
  net.tick(19, [1]);
  t.is(net.status(1).softState.state, StateType.Leader);
  net.tick(1, [1]);
  t.is(net.status(1).softState.state, StateType.Follower);
  t.is(net.status(1).softState.lead, 0);
});

test("CheckQuorum: a leader with one of two followers keeps leading", (t) => {
  const net = new Network([1, 2, 3]);
  net.elect(1);
  net.isolate(3);
  net.tick(50, [1, 2]);
  t.is(net.status(1).softState.state, StateType.Leader);
});

test("leader lease: followers that heard from the leader ignore a disruptive (pre-)candidate", (t) => {
  const net = new Network([1, 2, 3]);
  net.elect(1);
  const term = net.status(1).hardState.term;
  net.node(3).raw.campaign(); // 3 pre-campaigns although the leader is alive
  net.settle();
  t.deepEqual(net.leaders(), [1]);
  t.is(net.status(1).hardState.term, term);
  t.is(net.status(2).hardState.term, term);
  const granted = net.delivered.filter((m) => m.type === MessageType.PreVoteResp && m.to === 3 && !m.reject);
  t.is(granted.length, 0);
});

test("leader lease without PreVote: a vote request with a higher term is ignored in lease", (t) => {
  const net = new Network([1, 2, 3], { preVote: false });
  net.elect(1);
  net.node(3).raw.campaign(); // real election at term+1
  net.settle();
  t.is(net.status(2).softState.lead, 1);
  t.is(net.status(1).softState.state, StateType.Leader);
  t.not(net.status(3).softState.state, StateType.Leader);
});
