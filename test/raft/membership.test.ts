// Membership change, one server at a time with learners (dissertation §4.1, §4.2.1).
import test from "ava";
import { type ConfChange, ConfChangeType, ErrProposalDropped, decodeConfChange, encodeConfChange, ErrInvalidConfChange } from "../../node/raft/index.js";
import { MessageType, Network, StateType, enc } from "./network.js";

const cc = (type: ConfChangeType, nodeId: number): ConfChange => ({ type, nodeId, context: enc(`addr-${nodeId}`) });

function change(net: Network, leader: number, c: ConfChange): void {
  net.node(leader).raw.proposeConfChange(c);
  net.settle();
  net.tick(2);
}

test("a learner catches up, is promoted, and then counts for the quorum", (t) => {
  const net = new Network([1, 2, 3]);
  net.elect(1);
  for (let i = 0; i < 5; i++) net.propose(1, `e${i}`);
  net.addNode(4); // blank storage: knows no configuration
  change(net, 1, cc(ConfChangeType.AddLearner, 4));
  t.deepEqual(net.status(1).confState, { voters: [1, 2, 3], learners: [4] });
  t.deepEqual(net.appliedText(4), ["e0", "e1", "e2", "e3", "e4"]);
  t.deepEqual(net.status(4).confState, { voters: [1, 2, 3], learners: [4] });
  t.is(net.status(1).progress?.get(4)?.match, net.status(1).lastIndex);
  change(net, 1, cc(ConfChangeType.PromoteLearner, 4));
  t.deepEqual(net.status(1).confState, { voters: [1, 2, 3, 4], learners: [] });
  // With 4 voters the quorum is 3: 1 + 4 alone cannot commit, 1 + 2 + 4 can.
  net.isolate(2);
  net.isolate(3);
  const commit = net.status(1).hardState.commit;
  net.node(1).raw.propose(enc("needs-3"));
  net.settle();
  t.is(net.status(1).hardState.commit, commit);
  net.heal();
  net.isolate(3);
  net.tick(2, [1, 2, 4]);
  t.true(net.status(1).hardState.commit > commit);
  t.deepEqual(net.appliedText(4).at(-1), "needs-3");
});

test("a learner never campaigns and its votes do not count", (t) => {
  const net = new Network([1, 2]);
  net.elect(1);
  net.addNode(3);
  change(net, 1, cc(ConfChangeType.AddLearner, 3));
  net.node(3).raw.campaign();
  net.settle();
  t.is(net.status(3).softState.state, StateType.Follower);
  t.deepEqual(net.leaders(), [1]);
  // Voters {1,2}: without 2, 1 cannot be elected even though learner 3 is reachable.
  net.isolate(2);
  net.tick(60, [1, 3]);
  t.deepEqual(net.leaders(), []);
  t.is(net.status(3).softState.state, StateType.Follower);
});

test("only one change at a time: a second proposal is refused until the first is applied", (t) => {
  const net = new Network([1, 2, 3]);
  net.elect(1);
  net.addNode(4);
  net.addNode(5);
  net.node(1).raw.proposeConfChange(cc(ConfChangeType.AddLearner, 4));
  t.throws(() => net.node(1).raw.proposeConfChange(cc(ConfChangeType.AddLearner, 5)), { instanceOf: ErrProposalDropped });
  net.settle();
  net.node(1).raw.proposeConfChange(cc(ConfChangeType.AddLearner, 5));
  net.settle();
  t.deepEqual(net.status(1).confState.learners, [4, 5]);
});

test("invalid changes are refused at proposal: promote a non-learner, remove a stranger, re-add a member", (t) => {
  const net = new Network([1, 2, 3]);
  net.elect(1);
  const raw = net.node(1).raw;
  t.throws(() => raw.proposeConfChange(cc(ConfChangeType.PromoteLearner, 2)), { instanceOf: ErrProposalDropped });
  t.throws(() => raw.proposeConfChange(cc(ConfChangeType.RemoveNode, 9)), { instanceOf: ErrProposalDropped });
  t.throws(() => raw.proposeConfChange(cc(ConfChangeType.AddLearner, 3)), { instanceOf: ErrProposalDropped });
  t.throws(() => net.node(2).raw.proposeConfChange(cc(ConfChangeType.AddLearner, 4)), { instanceOf: ErrProposalDropped });
});

test("a new leader accepts no conf change before its no-op is applied", (t) => {
  const net = new Network([1, 2, 3]);
  net.filters.push((m) => m.from === 1 && m.type === MessageType.App);
  net.elect(1);
  t.is(net.status(1).softState.state, StateType.Leader);
  net.addNode(4);
  t.throws(() => net.node(1).raw.proposeConfChange(cc(ConfChangeType.AddLearner, 4)), { instanceOf: ErrProposalDropped });
  net.filters = [];
  net.tick(2);
  change(net, 1, cc(ConfChangeType.AddLearner, 4));
  t.deepEqual(net.status(1).confState.learners, [4]);
});

test("removing the leader: it steps down, does not campaign, and the rest elect a new leader", (t) => {
  const net = new Network([1, 2, 3]);
  net.elect(1);
  net.propose(1, "before");
  change(net, 1, cc(ConfChangeType.RemoveNode, 1));
  t.is(net.status(1).softState.state, StateType.Follower);
  t.deepEqual(net.status(1).confState.voters, [2, 3]);
  net.tick(60);
  const leaders = net.leaders();
  t.is(leaders.length, 1);
  t.not(leaders[0], 1);
  net.propose(leaders[0]!, "after");
  t.deepEqual(net.appliedText(2), ["before", "after"]);
  t.is(net.status(1).softState.state, StateType.Follower);
});

test("removing a follower: it no longer counts and receives nothing", (t) => {
  const net = new Network([1, 2, 3]);
  net.elect(1);
  change(net, 1, cc(ConfChangeType.RemoveNode, 3));
  t.deepEqual(net.status(1).confState.voters, [1, 2]);
  t.is(net.status(1).progress?.has(3), false);
  net.propose(1, "x");
  t.deepEqual(net.appliedText(2), ["x"]);
  t.deepEqual(net.appliedText(3), []);
  net.tick(60, [3]);
  t.not(net.status(3).softState.state, StateType.Leader); // not in its own config: no campaign
});

test("ConfChange encoding round-trips and rejects malformed bytes with a typed error", (t) => {
  const c = cc(ConfChangeType.PromoteLearner, 2 ** 40 + 7);
  t.deepEqual(decodeConfChange(encodeConfChange(c)), c);
  t.throws(() => decodeConfChange(new Uint8Array(3)), { instanceOf: ErrInvalidConfChange });
  const bad = encodeConfChange(c);
  bad[1] = 9;
  t.throws(() => decodeConfChange(bad), { instanceOf: ErrInvalidConfChange });
  const truncated = encodeConfChange(c).slice(0, -1);
  t.throws(() => decodeConfChange(truncated), { instanceOf: ErrInvalidConfChange });
  t.throws(() => encodeConfChange({ ...c, nodeId: 0 }), { instanceOf: ErrInvalidConfChange });
});
