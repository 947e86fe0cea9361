import test from "ava";
import { type Entry, EntryType } from "../../node/raft/types.js";
import { decodeProposal, encodeProposal, entryKey, StateMachine } from "./state-machine.js";

const ent = (index: number, term: number, data: Uint8Array, type = EntryType.Normal): Entry => ({ index, term, type, data });

test("proposal ids round-trip; foreign data is not a proposal", (t) => {
  t.is(decodeProposal(encodeProposal(12345)), 12345);
  t.is(decodeProposal(new Uint8Array(0)), null);
  t.is(decodeProposal(new TextEncoder().encode("zzz")), null);
  t.is(decodeProposal(new TextEncoder().encode("pxyz")), null);
});

test("entry keys distinguish term, type and data", (t) => {
  const d = encodeProposal(1);
  t.is(entryKey(ent(1, 1, d)), entryKey(ent(9, 1, d)));
  t.not(entryKey(ent(1, 1, d)), entryKey(ent(1, 2, d)));
  t.not(entryKey(ent(1, 1, d)), entryKey(ent(1, 1, d, EntryType.ConfChange)));
  t.not(entryKey(ent(1, 1, d)), entryKey(ent(1, 1, encodeProposal(2))));
});

test("equal histories give equal digests; different ones differ; duplicates are counted once", (t) => {
  const a = new StateMachine();
  const b = new StateMachine();
  for (const sm of [a, b]) {
    sm.apply(ent(1, 1, new Uint8Array(0)));
    sm.apply(ent(2, 1, encodeProposal(5)));
    sm.apply(ent(3, 1, encodeProposal(5)));
  }
  t.is(a.digest(), b.digest());
  t.deepEqual(a.appliedIds(), [5]);
  t.is(a.duplicates, 1);
  const c = new StateMachine();
  c.apply(ent(1, 1, new Uint8Array(0)));
  c.apply(ent(2, 2, encodeProposal(5)));
  t.not(c.digest(), a.digest());
});

test("snapshots round-trip and refuse malformed data", (t) => {
  const a = new StateMachine();
  a.apply(ent(1, 1, encodeProposal(3)));
  const b = StateMachine.decode(a.encode());
  t.is(b.digest(), a.digest());
  t.is(b.applied, 1);
  t.true(b.has(3));
  b.apply(ent(2, 1, encodeProposal(4)));
  a.apply(ent(2, 1, encodeProposal(4)));
  t.is(b.digest(), a.digest());
  t.throws(() => StateMachine.decode(new TextEncoder().encode('{"applied":1}')), { message: /malformed/ });
  t.throws(() => StateMachine.decode(new TextEncoder().encode("not json")));
});
