// The guess bound under a Byzantine leader that equivocates (test/sim/byzantine.ts).
import test from "ava";
import { EntryType, MessageType, message } from "../../node/raft/index.js";
import { encodeCommand } from "../../node/vault/index.js";
import { beginCmd, blindedPoint, makeNode, register, registerCmd } from "../../testkit/vault.js";
import {
  BOUND_CASES, HonestFollower, RogueLeader, USER, countingBound, documentedBound, measureBound,
} from "./byzantine.js";
import { Prng } from "./prng.js";

const SEEDS = [1, 42, 1009];

test("an equivocating leader never obtains more guesses than floor(L·(n−f)/(t−f))", (t) => {
  for (const c of BOUND_CASES) {
    for (const seed of SEEDS) {
      for (const s of ["disjoint", "cyclic"] as const) {
        const m = measureBound(c, s, seed);
        t.true(m.measured <= countingBound(c), `(${c.t}, ${c.n}) L=${c.guessLimit} ${s} seed ${seed}: ${m.measured} > ${countingBound(c)}`);
      }
    }
  }
});

test("the attack reaches its bounds: L·floor((n−f)/(t−f)) with disjoint groups, floor(L·(n−f)/(t−f)) with overlapping ones", (t) => {
  for (const c of BOUND_CASES) {
    const disjoint = measureBound(c, "disjoint", 7);
    const cyclic = measureBound(c, "cyclic", 7);
    t.is(disjoint.measured, documentedBound(c), `(${c.t}, ${c.n}) L=${c.guessLimit} disjoint`);
    t.is(cyclic.measured, countingBound(c), `(${c.t}, ${c.n}) L=${c.guessLimit} cyclic`);
    t.true(cyclic.measured > c.guessLimit, `(${c.t}, ${c.n}) L=${c.guessLimit}: the attack must beat L for the test to mean anything`);
    t.log(`(${c.t}, ${c.n}) L=${c.guessLimit}: disjoint ${disjoint.measured}, cyclic ${cyclic.measured}; honest nodes refused ${cyclic.refusedEvaluations} evaluations`);
  }
});

test("with t > (n+f)/2 the documented L·floor((n−f)/(t−f)) is not exact: (4, 5) gives floor(4L/3)", (t) => {
  for (const guessLimit of [3, 10]) {
    const c = { t: 4, n: 5, f: 1, guessLimit };
    const m = measureBound(c, "cyclic", 11);
    t.true(m.measured > documentedBound(c), `L=${guessLimit}: measured ${m.measured}, documented ${documentedBound(c)}`);
    t.is(m.measured, Math.floor((4 * guessLimit) / 3));
  }
});

test("a seed replays exactly", (t) => {
  for (const c of BOUND_CASES.slice(0, 3)) {
    t.deepEqual(measureBound(c, "cyclic", 5), measureBound(c, "cyclic", 5));
  }
});

/** One honest follower holding a record with `attempts` begun through the rogue. */
function spentFollower(attempts: number) {
  const ids = [1, 2, 3];
  const node = new HonestFollower(1, ids, new Prng(9));
  const rogue = new RogueLeader(3, ids);
  const reg = register(USER, { guessLimit: 3, nodes: ids.map((id) => makeNode(id)) });
  rogue.append(node, encodeCommand(registerCmd(reg)));
  for (let i = 0; i < attempts; i++) rogue.append(node, encodeCommand(beginCmd(USER, blindedPoint(100 + i))));
  return { node, rogue, reg };
}

test("an honest follower refuses the rogue leader's truncation of committed entries", (t) => {
  const { node } = spentFollower(2);
  const { commit, term } = node.raw.status().hardState;
  const before = node.vault.getRecord(USER)?.attempts;
  node.receive(message({
    type: MessageType.App, from: 3, to: 1, term: term + 1, index: 2, logTerm: node.storage.term(2),
    entries: [{ term: term + 1, index: 3, type: EntryType.Normal, data: new Uint8Array(0) }], commit,
  }));
  t.is(node.refusedTruncations, 1);
  t.is(node.vault.getRecord(USER)?.attempts, before);
  t.is(node.raw.status().hardState.commit, commit);
});

// KNOWN BUG (issue 10, reported by helper B2): the follower installs any
// snapshot above its commit index, and the vault state inside is not
// checked against what the follower already applied. A rogue leader (or any
// node: a higher term makes it leader) resets a counter with one MsgSnap.
// test.failing passes while the bug is there and fails once it is fixed.
test.failing("KNOWN BUG: an honest follower refuses a forged snapshot that resets a counter", (t) => {
  const { node, rogue, reg } = spentFollower(3);
  t.is(node.vault.getRecord(USER)?.attempts, 3);
  rogue.forgeSnapshot(node, reg);
  t.is(node.vault.getRecord(USER)?.attempts, 3, "the counter went back from 3 to 0 without a confirmation");
});

test.failing("KNOWN BUG: forged snapshots keep the bound under a Byzantine leader", (t) => {
  for (const c of BOUND_CASES) {
    const m = measureBound(c, "forged-snapshot", 3);
    t.true(m.measured <= countingBound(c), `(${c.t}, ${c.n}) L=${c.guessLimit}: ${m.measured} guesses`);
  }
});

// Why "one compromised node" and "a compromised node that wins an election"
// are the same adversary: Raft takes a MsgApp/MsgSnap of a higher term as
// proof of leadership (no vote certificate), so a follower that sends one
// leads the honest follower that accepts it.
test("a rogue follower leads an honest follower by sending a MsgApp of a higher term (no election)", (t) => {
  const { node } = spentFollower(1); // node 3 led it at term 2
  const { term } = node.raw.status().hardState;
  const last = node.lastIndex;
  node.receive(message({ type: MessageType.App, from: 2, to: 1, term: term + 1, index: last, logTerm: node.storage.term(last), entries: [], commit: last }));
  t.is(node.raw.status().softState.lead, 2);
  t.is(node.raw.status().hardState.term, term + 1);
});
