// Flow control: inflight limits (count and bytes), probe/replicate states,
// and the cap on uncommitted proposals.
import test from "ava";
import { ErrProposalDropped, ProgressState, entrySize } from "../../node/raft/index.js";
import { MessageType, Network, enc } from "./network.js";

function appsTo(msgs: { type: MessageType; to: number; entries: readonly unknown[] }[], to: number): number {
  return msgs.filter((m) => m.type === MessageType.App && m.to === to && m.entries.length > 0).length;
}

test("replicate state pipelines at most maxInflightMsgs unacknowledged MsgApp", (t) => {
  const net = new Network([1, 2, 3], { maxInflightMsgs: 3 });
  net.elect(1);
  net.propose(1, "warm-up");
  t.is(net.status(1).progress?.get(2)?.state, ProgressState.Replicate);
  for (let i = 0; i < 10; i++) net.node(1).raw.propose(enc(`p${i}`));
  const msgs = net.takeMessages();
  t.is(appsTo(msgs, 2), 3);
  t.is(net.status(1).progress?.get(2)?.inflightMsgs, 3);
  for (const m of msgs) net.deliver(m);
  net.settle();
  t.is(net.appliedText(2).length, 11, "acks release the window and the rest flows");
});

test("replicate state also stops at maxInflightBytes", (t) => {
  const size = entrySize({ term: 1, index: 1, type: 0, data: enc("p0") });
  const net = new Network([1, 2, 3], { maxInflightMsgs: 100, maxInflightBytes: 2 * size, maxSizePerMsg: 1 });
  net.elect(1);
  net.propose(1, "xx");
  for (let i = 0; i < 10; i++) net.node(1).raw.propose(enc(`p${i}`));
  const msgs = net.takeMessages();
  t.is(appsTo(msgs, 2), 2);
  t.is(net.status(1).progress?.get(2)?.inflightBytes, 2 * size);
  for (const m of msgs) net.deliver(m);
  net.settle();
  t.is(net.appliedText(2).length, 11);
});

test("probe state sends one MsgApp per heartbeat until the follower answers", (t) => {
  const net = new Network([1, 2, 3]);
  net.elect(1);
  net.isolate(3);
  net.tick(20, [1, 2]); // 3 unreachable: the leader falls back to probing it
  net.node(1).raw.reportUnreachable(3);
  t.is(net.status(1).progress?.get(3)?.state, ProgressState.Probe);
  for (let i = 0; i < 5; i++) net.node(1).raw.propose(enc(`p${i}`));
  const msgs = net.takeMessages();
  t.true(appsTo(msgs, 3) <= 1, "no pipelining to a follower in probe");
  for (const m of msgs) net.deliver(m);
  net.settle();
  net.heal();
  net.tick(3);
  t.is(net.status(1).progress?.get(3)?.state, ProgressState.Replicate);
  t.is(net.appliedText(3).length, 5);
});

test("the leader refuses proposals beyond maxUncommittedEntriesSize until entries commit", (t) => {
  const net = new Network([1, 2, 3], { maxUncommittedEntriesSize: 10 });
  net.elect(1);
  net.isolate(1);
  const raw = net.node(1).raw;
  raw.propose(enc("123456"));
  t.throws(() => raw.propose(enc("123456")), { instanceOf: ErrProposalDropped });
  raw.propose(enc("1234")); // exactly at the cap
  t.throws(() => raw.propose(enc("1")), { instanceOf: ErrProposalDropped });
  net.settle();
  net.heal();
  net.tick(2);
  t.deepEqual(net.appliedText(1), ["123456", "1234"]);
  raw.propose(enc("123456")); // committed entries no longer count
  net.settle();
  t.deepEqual(net.appliedText(2), ["123456", "1234", "123456"]);
});

test("a single proposal larger than the cap is accepted when nothing is uncommitted", (t) => {
  const net = new Network([1, 2, 3], { maxUncommittedEntriesSize: 4 });
  net.elect(1);
  net.propose(1, "much-larger-than-four");
  t.deepEqual(net.appliedText(2), ["much-larger-than-four"]);
});

test("proposals on a node with no leader are dropped with ErrProposalDropped", (t) => {
  const net = new Network([1, 2, 3]);
  t.throws(() => net.node(2).raw.propose(enc("x")), { instanceOf: ErrProposalDropped });
});

test("maxSizePerMsg limits the bytes of entries in each MsgApp", (t) => {
  const net = new Network([1, 2, 3], { maxSizePerMsg: 3 * entrySize({ term: 1, index: 1, type: 0, data: enc("p0") }) });
  net.elect(1);
  net.cutLink(1, 2);
  for (let i = 0; i < 9; i++) net.propose(1, `p${i}`);
  net.heal();
  const before = net.delivered.length;
  net.tick(2);
  const apps = net.delivered.slice(before).filter((m) => m.type === MessageType.App && m.to === 2 && m.entries.length > 0);
  t.true(apps.every((m) => m.entries.length <= 3));
  t.is(net.appliedText(2).length, 9);
});
