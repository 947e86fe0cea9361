// ForwardGate (node/server/forward-gate.ts): a leader drops a forwarded
// proposal whose entry is over the size bound, or whose sender is over its
// byte rate, or which holds a membership change; senders have their own
// buckets, which refill with time.
import test from "ava";
import { ConfChangeType, EntryType, type Message, MessageType, encodeConfChange } from "../../node/raft/index.js";
import { ForwardGate } from "../../node/server/forward-gate.js";
import { encodeCommand, stampTime } from "../../node/vault/index.js";
import { beginCmd, newRequestId } from "../../testkit/vault.js";

function prop(from: number, ...sizes: number[]): Message {
  return propOf(from, sizes.map((n, i) => ({ term: 0, index: i, type: EntryType.Normal, data: new Uint8Array(n) })));
}

function propOf(from: number, entries: Message["entries"]): Message {
  return {
    type: MessageType.Prop, from, to: 1, term: 0, logTerm: 0, index: 0, commit: 0, reject: false, rejectHint: 0, snapshot: null, context: new Uint8Array(0),
    entries,
  };
}

function gate(now: () => number) {
  const warned: Array<{ msg: string; key: string }> = [];
  const g = new ForwardGate({ maxEntryBytes: 1000, bytesPerSecond: 4000, warn: (msg, key) => warned.push({ msg, key }), now });
  return { g, warned };
}

test("an entry over the size bound is dropped whatever the bucket holds; one at the bound passes", (t) => {
  const { g, warned } = gate(() => 0);
  t.false(g.admit(prop(2, 10, 1001)));
  t.true(g.admit(prop(2, 1000)));
  t.deepEqual(warned, [{ msg: "a forwarded proposal dropped: an entry over the size bound", key: "size:2" }]);
});

test("a sender gets a second of its rate, then what refills; another sender has its own bucket", (t) => {
  let now = 0;
  const { g, warned } = gate(() => now);
  for (let i = 0; i < 4; i++) t.true(g.admit(prop(2, 500, 500)), `proposal ${i}`);
  t.false(g.admit(prop(2, 1)), "the bucket is empty");
  t.true(g.admit(prop(3, 1000)), "node 3 is not charged for node 2");
  t.is(warned.at(-1)?.key, "rate:2");
  now = 250; // a quarter second: 1000 bytes back
  t.true(g.admit(prop(2, 1000)));
  t.false(g.admit(prop(2, 1)));
  now = 60_000; // refills to a second's worth, never more
  for (let i = 0; i < 4; i++) t.true(g.admit(prop(2, 1000)));
  t.false(g.admit(prop(2, 1000)));
});

test("a refused proposal takes nothing from the bucket; an empty proposal passes", (t) => {
  const { g } = gate(() => 0);
  t.true(g.admit(prop(2, 1000, 1000, 1000)));
  t.false(g.admit(prop(2, 1000, 1000)), "2000 > the 1000 left");
  t.true(g.admit(prop(2, 1000)), "the refused 2000 were not taken");
  t.true(g.admit(prop(2)));
});

test("a forwarded membership change is dropped, alone or beside normal entries", (t) => {
  const { g, warned } = gate(() => 0);
  const cc = { term: 0, index: 0, type: EntryType.ConfChange, data: encodeConfChange({ type: ConfChangeType.RemoveNode, nodeId: 3, context: new Uint8Array(0) }) };
  t.false(g.admit(propOf(2, [cc])));
  t.false(g.admit(propOf(2, [{ term: 0, index: 0, type: EntryType.Normal, data: new Uint8Array(1) }, cc])));
  t.deepEqual(warned.map((w) => w.key), ["conf:2", "conf:2"]);
  t.true(g.admit(prop(2, 1000)), "nothing was taken from the bucket");
});

test("a forwarded operator's vault command (issuer keys, the bound-shares activation) is dropped, stamped or not; a client's command passes", (t) => {
  const { g, warned } = gate(() => 0);
  const normal = (data: Uint8Array) => ({ term: 0, index: 0, type: EntryType.Normal, data });
  const activation = encodeCommand({ kind: "bind-shares", requestId: newRequestId() });
  t.false(g.admit(propOf(2, [normal(activation)])));
  t.false(g.admit(propOf(2, [normal(encodeCommand(beginCmd("alice"))), normal(stampTime(activation, 1_000))])));
  t.false(g.admit(propOf(2, [normal(encodeCommand({ kind: "issuers", requestId: newRequestId(), signedKeys: "a.b.c" }))])));
  t.deepEqual(warned.map((w) => w.key), ["operator:2", "operator:2", "operator:2"]);
  t.true(g.admit(propOf(2, [normal(stampTime(encodeCommand(beginCmd("alice")), 1_000)), normal(new Uint8Array(3))])), "a client's command and an undecodable payload pass (apply refuses the latter)");
});

test("a proposal of very many entries is judged without a call-stack overflow", (t) => {
  const { g } = gate(() => 0);
  const many = Array.from({ length: 300_000 }, (_, i) => ({ term: 0, index: i, type: EntryType.Normal, data: new Uint8Array(0) }));
  t.true(g.admit(propOf(2, many)));
});

test("bounds must be positive", (t) => {
  t.throws(() => new ForwardGate({ maxEntryBytes: 0, bytesPerSecond: 1, warn: () => {} }), { instanceOf: RangeError });
  t.throws(() => new ForwardGate({ maxEntryBytes: 1, bytesPerSecond: Number.NaN, warn: () => {} }), { instanceOf: RangeError });
});
