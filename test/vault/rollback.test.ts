// rollbackFrom (node/vault/rollback.ts): a state that would take a counter,
// a lock or the state's time back is named; one that only moved forward
// along some history (more attempts, a confirmation, a deletion, another
// registration of the user) is not. States are built by applying real
// commands to real state machines over in-memory stores.
import test from "ava";
import { MemoryStore, VaultStateMachine, encodeCommand, rollbackFrom, stampTime } from "../../node/vault/index.js";
import { CLUSTER, Harness, beginCmd, blindedPoint, confirmCmd, deleteCmd, register, registerCmd, runToEnd } from "../../testkit/vault.js";

function verdict(current: Harness, incoming: Harness): string | null {
  return runToEnd(rollbackFrom(current.sm.store, incoming.sm.store));
}

/** Two harnesses that applied the same registration of "alice" (guess limit 3). */
function twins() {
  const reg = register("alice", { guessLimit: 3 });
  const entry = encodeCommand(registerCmd(reg)); // one entry for both: its owner signature is randomized
  const [a, b] = [new Harness(), new Harness()];
  for (const h of [a, b]) h.apply(entry);
  return { reg, a, b };
}

function begins(h: Harness, n: number): number[] {
  return Array.from({ length: n }, (_, i) => (h.apply(beginCmd("alice", blindedPoint(10 + i))), h.index));
}

test("attempts counted here and missing from the incoming state are a rollback; more attempts there are not", (t) => {
  const { a, b } = twins();
  begins(a, 2);
  t.regex(verdict(a, b) ?? "", /the record of "alice" counts 0 attempts, not 2/);
  begins(b, 3);
  t.is(verdict(a, b), null, "3 attempts over 2: forward");
});

test("a lock lifted is a rollback", (t) => {
  const { a, b } = twins();
  begins(a, 4); // past the guess limit: locked
  begins(b, 2);
  t.regex(verdict(a, b) ?? "", /the record of "alice" is unlocked/);
});

test("a confirmation since, a deletion, or another registration of the user are not rollbacks", (t) => {
  const { reg, a, b } = twins();
  begins(a, 2);
  const [attempt] = begins(b, 1);
  b.apply(confirmCmd(reg, attempt!));
  t.is(verdict(a, b), null, "confirmed later: its counter starts again");
  t.regex(verdict(b, a) ?? "", /loses its confirmation at \d+/, "and losing that confirmation is a rollback");

  const gone = twins();
  begins(gone.a, 2);
  gone.b.apply(deleteCmd(gone.reg));
  t.is(verdict(gone.a, gone.b), null, "deleted: needs the reset key");
  gone.b.apply(registerCmd(register("alice", { guessLimit: 3 })));
  t.is(verdict(gone.a, gone.b), null, "registered again: another record digest");
});

test("an incoming state with an earlier time is a rollback; an empty current state has nothing to lose", (t) => {
  const { a, b } = twins();
  a.apply(stampTime(encodeCommand(beginCmd("bob")), 2_000_000));
  b.apply(stampTime(encodeCommand(beginCmd("bob")), 1_000_000));
  t.regex(verdict(a, b) ?? "", /its time \(1000000\) is before this node's \(2000000\)/);
  const empty = new Harness(new VaultStateMachine({ clusterId: CLUSTER, store: new MemoryStore() }));
  t.is(verdict(empty, a), null);
});
