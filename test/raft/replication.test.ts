// Raft §5.3 (log replication, log matching) and §5.4.2 (commitment, Figure 8).
import test from "ava";
import { MessageType, Network, StateType } from "./network.js";
import { ErrProposalDropped } from "../../node/raft/index.js";

const NO_PREVOTE = { preVote: false, checkQuorum: false };

function terms(net: Network, id: number): number[] {
  const s = net.node(id).storage;
  const out: number[] = [];
  for (let i = s.firstIndex(); i <= s.lastIndex(); i++) out.push(s.term(i));
  return out;
}

test("log matching: a follower's conflicting uncommitted suffix is replaced by the leader's", (t) => {
  const net = new Network([1, 2, 3], NO_PREVOTE);
  net.elect(1);
  net.propose(1, "committed");
  net.isolate(1);
  for (const x of ["lost-1", "lost-2", "lost-3"]) net.node(1).raw.propose(new TextEncoder().encode(x));
  net.settle();
  t.is(net.status(1).lastIndex, 6);
  net.elect(2);
  net.propose(2, "winner");
  net.heal();
  net.tick(3);
  t.deepEqual(net.appliedText(1), ["committed", "winner"]);
  t.deepEqual(terms(net, 1), terms(net, 2));
  t.deepEqual(terms(net, 3), terms(net, 2));
  t.is(net.status(1).softState.lead, 2);
});

test("rejection hints skip a whole conflicting term instead of one entry per round trip", (t) => {
  const net = new Network([1, 2, 3], { ...NO_PREVOTE, maxSizePerMsg: 1 });
  net.elect(1);
  net.isolate(1);
  for (let i = 0; i < 50; i++) net.node(1).raw.propose(new TextEncoder().encode(`stale-${i}`));
  net.settle();
  net.elect(2);
  for (let i = 0; i < 30; i++) net.node(2).raw.propose(new TextEncoder().encode(`new-${i}`));
  net.settle();
  // A fresh leader (3) starts probing 1 at its own last index (~34), deep inside 1's stale term.
  net.node(2).raw.transferLeadership(3);
  net.settle();
  t.is(net.status(3).softState.state, StateType.Leader);
  const before = net.delivered.length;
  net.heal();
  net.tick(2);
  const rejects = net.delivered.slice(before).filter((m) => m.type === MessageType.AppResp && m.from === 1 && m.reject);
  t.true(rejects.length >= 1);
  t.true(rejects.length <= 2, `took ${rejects.length} rejections`); // one per entry would be ~30
  t.deepEqual(terms(net, 1), terms(net, 3));
  t.is(net.appliedText(1).length, 30);
});

test("an entry is committed only once stored on a majority", (t) => {
  const net = new Network([1, 2, 3, 4, 5], NO_PREVOTE);
  net.elect(1);
  const base = net.status(1).hardState.commit;
  net.cutLink(1, 3);
  net.cutLink(1, 4);
  net.cutLink(1, 5);
  net.propose(1, "x"); // stored on 1 and 2: 2 of 5
  t.is(net.status(1).hardState.commit, base);
  t.deepEqual(net.appliedText(1), []);
  net.heal();
  net.cutLink(1, 4);
  net.cutLink(1, 5);
  net.tick(1); // now on 1, 2, 3: a majority
  t.is(net.status(1).hardState.commit, base + 1);
  t.deepEqual(net.appliedText(1), ["x"]);
});

test("Figure 8: a leader never commits a previous-term entry by counting replicas", (t) => {
  // One entry per MsgApp, so the old-term entry and the new no-op travel separately.
  const net = new Network([1, 2, 3], { ...NO_PREVOTE, maxSizePerMsg: 1 });
  net.elect(1); // no-op at index 2 committed
  const oldTerm = net.status(1).hardState.term;
  net.isolate(1);
  net.node(1).raw.propose(new TextEncoder().encode("old")); // index 3, term 2, only on 1
  net.settle();
  net.filters.push((m) => m.type === MessageType.App && m.from === 2); // 2 wins term 3 but replicates nothing
  net.elect(2);
  t.is(net.status(2).softState.state, StateType.Leader);
  net.heal();
  net.isolate(2);
  net.elect(3); // 1 rejects 3 (1's log is longer) but learns the higher term and steps down
  t.is(net.status(1).softState.state, StateType.Follower);
  t.not(net.status(3).softState.state, StateType.Leader);
  // Let index 3 (old term) reach node 3 but not the no-op at index 4 (current term).
  // (The first probe, carrying index 4 after index 3, is let through: 3 rejects it and asks for index 3.)
  net.filters.push((m) => m.type === MessageType.App && m.entries.some((e) => e.index === 4) &&
    net.node(3).storage.lastIndex() >= 3);
  net.elect(1); // 1's log (last entry 3@oldTerm) is more up to date than 3's (2@oldTerm)
  t.is(net.status(1).softState.state, StateType.Leader);
  t.is(net.status(1).hardState.term, oldTerm + 3);
  t.is(net.node(1).storage.term(4), oldTerm + 3);
  net.tick(3);
  t.is(net.node(3).storage.lastIndex(), 3);
  t.is(net.status(1).progress?.get(3)?.match, 3);
  t.is(net.status(1).hardState.commit, 2, "index 3 is on a majority but is from an older term: not committed");
  t.deepEqual(net.appliedText(1), []);
  net.filters = [];
  net.tick(2);
  t.is(net.status(1).hardState.commit, 4, "committing the current-term no-op commits index 3 indirectly");
  t.deepEqual(net.appliedText(1), ["old"]);
  t.deepEqual(net.appliedText(3), ["old"]);
});

test("followers learn the commit index and apply every entry exactly once, in order", (t) => {
  const net = new Network([1, 2, 3]);
  net.elect(1);
  for (let i = 0; i < 20; i++) net.propose(i % 3 + 1, `p${i}`);
  net.tick(2);
  for (const id of [1, 2, 3]) {
    t.deepEqual(net.appliedText(id), Array.from({ length: 20 }, (_, i) => `p${i}`));
    const idx = net.node(id).appliedIndexes;
    t.deepEqual(idx, Array.from({ length: idx.length }, (_, i) => idx[0]! + i));
  }
});

test("proposeMany: entries are appended together and travel in one MsgApp per follower; a follower forwards them in one MsgProp", (t) => {
  const net = new Network([1, 2, 3]);
  net.elect(1);
  const enc = (xs: string[]) => xs.map((x) => new TextEncoder().encode(x));
  net.node(1).raw.proposeMany(enc(["a", "b", "c"]));
  net.processReady(1);
  const apps = net.takeMessages().filter((m) => m.type === MessageType.App);
  t.deepEqual(apps.map((m) => [m.to, m.entries.length]), [[2, 3], [3, 3]]);
  for (const m of apps) net.deliver(m);
  net.settle();
  net.node(2).raw.proposeMany(enc(["d", "e"]));
  net.processReady(2);
  const props = net.takeMessages().filter((m) => m.type === MessageType.Prop);
  t.deepEqual(props.map((m) => [m.to, m.entries.length]), [[1, 2]]);
  for (const m of props) net.deliver(m);
  net.tick(2);
  for (const id of [1, 2, 3]) t.deepEqual(net.appliedText(id), ["a", "b", "c", "d", "e"]);
  net.node(1).raw.proposeMany([]); // no-op
  t.false(net.node(1).raw.hasReady());
});

test("proposeMany: all or nothing when the proposal cannot be taken", (t) => {
  const net = new Network([1, 2, 3]);
  net.elect(1);
  net.node(1).raw.transferLeadership(2); // a leader refuses proposals while it transfers
  const last = net.status(1).lastIndex;
  t.throws(() => net.node(1).raw.proposeMany([Uint8Array.of(1), Uint8Array.of(2)]), { instanceOf: ErrProposalDropped });
  t.is(net.status(1).lastIndex, last);
});

test("once a quorum acks, the leader sends the new commit index at once: a follower whose acks are lost applies without a heartbeat", (t) => {
  const net = new Network([1, 2, 3], NO_PREVOTE);
  net.elect(1);
  net.cutLink(3, 1); // 3's AppResps are lost: only 2's ack commits
  const before = net.delivered.length;
  net.propose(1, "x"); // settles without a tick: no heartbeat is sent
  t.deepEqual(net.appliedText(2), ["x"]);
  t.deepEqual(net.appliedText(3), ["x"], "3 learned the commit index from the leader's MsgApp after 2's ack");
  const sent = net.delivered.slice(before);
  t.false(sent.some((m) => m.type === MessageType.Heartbeat));
  const commit = net.status(1).hardState.commit;
  t.true(sent.some((m) => m.type === MessageType.App && m.to === 3 && m.commit === commit && m.entries.length === 0));
});
