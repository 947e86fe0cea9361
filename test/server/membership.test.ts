// Membership (node/server/membership.ts): the addresses it records and the
// transport's peer set stay equal, this node excepted, through a start, a
// membership change and a restored snapshot.
import test from "ava";
import { type ConfChange, ConfChangeType, type Message, type NodeId } from "../../node/raft/index.js";
import type { PeerLink } from "../../node/server/loop-types.js";
import { Membership, encodePeerContext } from "../../node/server/membership.js";

/** A link that keeps the peer set the transport would hold. */
function fakeLink(): PeerLink & { peers: Map<NodeId, string> } {
  const peers = new Map<NodeId, string>();
  return {
    peers,
    send: () => {},
    addPeer: (id, addr) => { peers.set(id, addr); },
    removePeer: (id) => { peers.delete(id); },
    fetchSnapshot: () => { throw new Error("not used"); },
  };
}

const cs = (voters: NodeId[], learners: NodeId[] = []) => ({ voters, learners });
const change = (type: ConfChangeType, nodeId: NodeId, address = ""): ConfChange => ({ type, nodeId, context: encodePeerContext(address) });

test("connect: the recorded addresses win over the address book, and this node is never a peer", (t) => {
  const m = new Membership(1, cs([1, 2]), new Map([[1, "a:1"], [2, "b:2"]]));
  const link = fakeLink();
  m.connect(link, new Map([[1, "book:1"], [2, "book:2"], [3, "book:3"]]));
  t.deepEqual([...link.peers].sort(), [[2, "b:2"], [3, "book:3"]]);
  t.deepEqual([...m.peers.keys()].sort(), [1, 2], "the address book adds transport peers, not members");
});

test("a membership change adds or removes the member and its transport peer", (t) => {
  const m = new Membership(1, cs([1, 2]), new Map([[1, "a:1"], [2, "b:2"]]));
  const link = fakeLink();
  m.connect(link, new Map());
  m.applyConfChange(change(ConfChangeType.AddLearner, 3, "c:3"), cs([1, 2], [3]));
  t.is(link.peers.get(3), "c:3");
  t.deepEqual(m.confState, cs([1, 2], [3]));
  m.applyConfChange(change(ConfChangeType.RemoveNode, 2), cs([1], [3]));
  t.false(link.peers.has(2));
  t.false(m.peers.has(2));
  m.applyConfChange(change(ConfChangeType.PromoteLearner, 3), cs([1, 3]));
  t.deepEqual(m.confState, cs([1, 3]), "a promotion changes the conf state only");
  t.deepEqual([...link.peers].sort(), [[3, "c:3"]]);
});

test("a restored snapshot replaces the members; peers it does not name leave the transport", (t) => {
  const m = new Membership(1, cs([1, 2, 3]), new Map([[1, "a:1"], [2, "b:2"], [3, "c:3"]]));
  const link = fakeLink();
  m.connect(link, new Map());
  m.reset(cs([1, 2, 4]), new Map([[1, "a:1"], [2, "b:2x"], [4, "d:4"]]));
  t.deepEqual([...link.peers].sort(), [[2, "b:2x"], [4, "d:4"]]);
  t.deepEqual(m.confState, cs([1, 2, 4]));
});

test("who may vouch for a snapshot: the known members and those the message names", (t) => {
  const m = new Membership(1, cs([1, 2], [5]), new Map());
  const msg = { snapshot: { metadata: { confState: cs([1, 3]) } } } as unknown as Message;
  t.deepEqual(m.withSnapshotOf(msg).sort(), [1, 1, 2, 3, 5]);
});
