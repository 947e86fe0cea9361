// Leadership transfer (dissertation §3.10) and ReadIndex (§6.4).
import test from "ava";
import { ErrProposalDropped, message } from "../../node/raft/index.js";
import { MessageType, Network, StateType, enc } from "./network.js";

test("transfer: the target becomes leader at a higher term", (t) => {
  const net = new Network([1, 2, 3]);
  net.elect(1);
  const term = net.status(1).hardState.term;
  net.node(1).raw.transferLeadership(2);
  net.settle();
  t.deepEqual(net.leaders(), [2]);
  t.is(net.status(2).hardState.term, term + 1);
  t.is(net.status(1).softState.lead, 2);
});

test("transfer asked on a follower is forwarded to the leader", (t) => {
  const net = new Network([1, 2, 3]);
  net.elect(1);
  net.node(3).raw.transferLeadership(3);
  net.settle();
  t.deepEqual(net.leaders(), [3]);
});

test("transfer to a lagging node: the leader catches it up first, then sends TimeoutNow", (t) => {
  const net = new Network([1, 2, 3]);
  net.elect(1);
  net.cutLink(1, 3);
  for (let i = 0; i < 5; i++) net.propose(1, `e${i}`);
  net.heal();
  const before = net.delivered.length;
  net.node(1).raw.transferLeadership(3);
  net.settle();
  const after = net.delivered.slice(before);
  const timeoutAt = after.findIndex((m) => m.type === MessageType.TimeoutNow);
  const lastAppTo3 = after.findLastIndex((m) => m.type === MessageType.App && m.to === 3 && m.entries.length > 0);
  t.true(lastAppTo3 >= 0 && timeoutAt > lastAppTo3, "entries first, TimeoutNow after");
  t.deepEqual(net.leaders(), [3]);
  net.tick(2);
  t.deepEqual(net.appliedText(3), ["e0", "e1", "e2", "e3", "e4"]);
});

test("transfer: proposals are dropped while it runs, and it aborts after an election timeout", (t) => {
  const net = new Network([1, 2, 3]);
  net.elect(1);
  net.cutLink(1, 3);
  net.propose(1, "x");
  net.node(1).raw.transferLeadership(3); // 3 cannot catch up: the link is cut
  net.settle();
  t.is(net.status(1).leadTransferee, 3);
  t.throws(() => net.node(1).raw.propose(enc("during")), { instanceOf: ErrProposalDropped });
  net.tick(10, [1, 2]);
  t.is(net.status(1).leadTransferee, 0);
  t.deepEqual(net.leaders(), [1]);
  net.propose(1, "after");
  t.deepEqual(net.appliedText(2), ["x", "after"]);
});

test("transfer to a learner or to an unknown node is ignored", (t) => {
  const net = new Network([1, 2, 3]);
  net.elect(1);
  net.node(1).raw.transferLeadership(9);
  net.settle();
  t.is(net.status(1).leadTransferee, 0);
  t.deepEqual(net.leaders(), [1]);
});

test("ReadIndex on the leader: answered with the commit index after a heartbeat quorum", (t) => {
  const net = new Network([1, 2, 3]);
  net.elect(1);
  net.propose(1, "a");
  const before = net.delivered.length;
  net.node(1).raw.readIndex(enc("r1"));
  net.settle();
  const rs = net.node(1).readStates;
  t.is(rs.length, 1);
  t.deepEqual(rs[0]!.context, enc("r1"));
  t.is(rs[0]!.index, net.status(1).hardState.commit);
  const beats = net.delivered.slice(before).filter((m) => m.type === MessageType.HeartbeatResp && m.context.byteLength > 0);
  t.true(beats.length >= 1, "leadership was confirmed by heartbeats");
});

test("ReadIndex requests stepped before one Ready share one heartbeat round", (t) => {
  const net = new Network([1, 2, 3]);
  net.elect(1);
  net.propose(1, "a");
  const before = net.delivered.length;
  for (const ctx of ["r1", "r2", "r3"]) net.node(1).raw.readIndex(enc(ctx));
  net.settle();
  const beats = net.delivered.slice(before).filter((m) => m.type === MessageType.Heartbeat);
  t.is(beats.length, 2, "one heartbeat per follower");
  t.true(beats.every((m) => new TextDecoder().decode(m.context) === "r3"), "carrying the newest request's context");
  const rs = net.node(1).readStates;
  t.deepEqual(rs.map((s) => new TextDecoder().decode(s.context)), ["r1", "r2", "r3"]);
  t.true(rs.every((s) => s.index === net.status(1).hardState.commit));
});

test("a shared heartbeat round answers nothing without a quorum's ack", (t) => {
  const net = new Network([1, 2, 3]);
  net.elect(1);
  net.propose(1, "a");
  net.isolate(1);
  for (const ctx of ["r1", "r2"]) net.node(1).raw.readIndex(enc(ctx));
  net.settle();
  t.deepEqual(net.node(1).readStates, []);
});

test("a leader that steps down before its next Ready sends no read heartbeat and answers nothing", (t) => {
  const net = new Network([1, 2, 3]);
  net.elect(1);
  net.propose(1, "a");
  const term = net.status(1).hardState.term;
  net.node(1).raw.readIndex(enc("r1"));
  net.node(1).raw.step(message({ type: MessageType.Heartbeat, from: 2, to: 1, term: term + 1 }));
  t.is(net.status(1).softState.state, StateType.Follower);
  const sent = net.takeMessages().filter((m) => m.from === 1);
  t.deepEqual(sent.filter((m) => m.type === MessageType.Heartbeat), []);
  t.deepEqual(net.node(1).readStates, []);
});

test("ReadIndex on a follower is forwarded and answered", (t) => {
  const net = new Network([1, 2, 3]);
  net.elect(1);
  net.propose(1, "a");
  net.node(3).raw.readIndex(enc("f"));
  net.settle();
  const rs = net.node(3).readStates;
  t.is(rs.length, 1);
  t.is(rs[0]!.index, net.status(1).hardState.commit);
  t.deepEqual(net.node(1).readStates, []);
});

test("ReadIndex: a partitioned leader cannot confirm leadership and answers nothing", (t) => {
  const net = new Network([1, 2, 3]);
  net.elect(1);
  net.isolate(1);
  net.node(1).raw.readIndex(enc("stale?"));
  net.tick(5, [1]);
  t.deepEqual(net.node(1).readStates, []);
});

test("ReadIndex: a new leader answers only after committing an entry of its term", (t) => {
  const net = new Network([1, 2, 3]);
  net.elect(1);
  net.propose(1, "a");
  net.filters.push((m) => m.type === MessageType.App && m.from === 2);
  net.node(1).raw.transferLeadership(2);
  net.settle();
  t.is(net.status(2).softState.state, StateType.Leader);
  const noop = net.status(2).lastIndex;
  t.true(net.status(2).hardState.commit < noop);
  net.node(2).raw.readIndex(enc("early"));
  net.settle();
  t.deepEqual(net.node(2).readStates, [], "held back: the commit index may be stale");
  net.filters = [];
  net.tick(2);
  const rs = net.node(2).readStates;
  t.is(rs.length, 1);
  t.true(rs[0]!.index >= noop);
});

test("ReadIndex with no leader is dropped", (t) => {
  const net = new Network([1, 2, 3]);
  net.node(2).raw.readIndex(enc("nobody"));
  net.settle();
  t.deepEqual(net.node(2).readStates, []);
  t.is(net.delivered.filter((m) => m.type === MessageType.ReadIndex).length, 0);
});

test("a forwarded transfer request arriving at a follower is forwarded again to the leader", (t) => {
  const net = new Network([1, 2, 3]);
  net.elect(1);
  const term = net.status(2).hardState.term;
  // As if 3 had forwarded it to 2 believing 2 was the leader.
  net.node(2).raw.step(message({ type: MessageType.TransferLeader, from: 3, to: 2, term }));
  net.settle();
  t.deepEqual(net.leaders(), [3]);
});
