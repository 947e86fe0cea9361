import test from "ava";
import { checkCounters, checkDigests, checkDurability, checkGuessBound, checkLeaders, checkNoRelease, type FinalState } from "../../chaos/checkers/index.js";
import { parseLeaderClaims } from "../../chaos/checkers/leaders.js";
import { checkLinearizable, type LinOp } from "../../chaos/checkers/linearizable.js";
import { H } from "./history-builder.js";

const L3 = { guessLimit: 3 };
const wrong = { passwordCorrect: false };
const right = { passwordCorrect: true };
const WRONG = (r: number) => ({ error: "WRONG_PASSWORD", attemptsRemaining: r });

// ---------- guess bound ----------

test("guess bound: four answered attempts with limit 3 and no confirmation is a violation", (t) => {
  const h = new H().op(1, "register", "u", 0, 1, "ok", L3, { version: 1 });
  for (let i = 0; i < 4; i++) h.op(1, "recover", "u", 10 + i * 10, 15 + i * 10, "fail", wrong, WRONG(Math.max(0, 2 - i)));
  const r = checkGuessBound(h.sorted());
  t.false(r.valid);
  t.regex(r.violations[0]!.description, /4 attempts answered .* guess limit 3/);
});

test("guess bound: a confirmation between attempts starts a new count", (t) => {
  const h = new H().op(1, "register", "u", 0, 1, "ok", L3, { version: 1 });
  for (let i = 0; i < 2; i++) h.op(1, "recover", "u", 10 + i * 10, 15 + i * 10, "fail", wrong, WRONG(2 - i));
  h.op(1, "recover", "u", 50, 55, "ok", right, { keyReleased: true });
  for (let i = 0; i < 3; i++) h.op(1, "recover", "u", 60 + i * 10, 65 + i * 10, "fail", wrong, WRONG(2 - i));
  t.true(checkGuessBound(h.sorted()).valid);
});

test("guess bound: attempts of unknown outcome are noted as possibly authorized, not a violation", (t) => {
  const h = new H().op(1, "register", "u", 0, 1, "ok", L3, { version: 1 });
  h.op(2, "recover", "u", 5, null, "info", wrong);
  for (let i = 0; i < 3; i++) h.op(1, "recover", "u", 10 + i * 10, 15 + i * 10, "fail", wrong, WRONG(2 - i));
  const r = checkGuessBound(h.sorted());
  t.true(r.valid);
  t.true(r.notes.some((n) => /1 attempt\(s\) of unknown outcome/.test(n)));
});

test("guess bound: an attempt answered after the record was seen locked is a violation", (t) => {
  const h = new H().op(1, "register", "u", 0, 1, "ok", L3, { version: 1 });
  h.op(1, "recover", "u", 10, 11, "fail", wrong, { error: "RECORD_LOCKED" });
  h.op(2, "recover", "u", 20, 21, "fail", wrong, WRONG(0));
  const r = checkGuessBound(h.sorted());
  t.false(r.valid);
  t.regex(r.violations[0]!.description, /after the record was seen locked/);
});

test("guess bound: an overwrite lifts the lock", (t) => {
  const h = new H().op(1, "register", "u", 0, 1, "ok", L3, { version: 1 });
  h.op(1, "recover", "u", 10, 11, "fail", wrong, { error: "RECORD_LOCKED" });
  h.op(1, "delete", "u", 12, 13, "ok", right);
  h.op(1, "register", "u", 14, 15, "ok", L3, { version: 1 });
  h.op(2, "recover", "u", 20, 21, "fail", wrong, WRONG(2));
  t.true(checkGuessBound(h.sorted()).valid);
});

// ---------- no release ----------

test("no release: a key returned to a wrong password is a violation", (t) => {
  const h = new H().op(1, "register", "u", 0, 1, "ok", L3, { version: 1 }).op(2, "recover", "u", 5, 9, "ok", wrong, { keyReleased: true });
  const r = checkNoRelease(h.sorted());
  t.false(r.valid);
  t.regex(r.violations[0]!.description, /key released to a wrong password/);
});

test("no release: a released key that is not the registered key is a violation", (t) => {
  const h = new H().op(2, "recover", "u", 5, 9, "ok", right, { keyReleased: true, keyMatches: false });
  t.regex(checkNoRelease(h.sorted()).violations[0]!.description, /other than the registered one/);
});

test("no release: right passwords and refused wrong ones are fine", (t) => {
  const h = new H().op(1, "recover", "u", 5, 9, "ok", right, { keyReleased: true, keyMatches: true }).op(2, "recover", "u", 5, 9, "fail", wrong, WRONG(1));
  t.true(checkNoRelease(h.sorted()).valid);
});

// ---------- durability ----------

const final = (records: FinalState["records"], finalRecoveries?: FinalState["finalRecoveries"]): FinalState => ({ nodes: [], records, ...(finalRecoveries ? { finalRecoveries } : {}) });

test("durability: an acknowledged registration missing after healing is a violation", (t) => {
  const h = new H().op(1, "register", "u", 0, 1, "ok", L3, { version: 1 });
  const r = checkDurability(h.sorted(), final({ u: null }));
  t.false(r.valid);
  t.regex(r.violations[0]!.description, /acknowledged .*register.* lost: after healing the record is absent/);
});

test("durability: an acknowledged password change rolled back to the old version is a violation", (t) => {
  const h = new H().op(1, "register", "u", 0, 1, "ok", L3, { version: 1 }).op(1, "change-password", "u", 2, 3, "ok", right, { version: 2 });
  const r = checkDurability(h.sorted(), final({ u: { version: 1, attemptsRemaining: 3, locked: false } }));
  t.regex(r.violations[0]!.description, /present at version 1/);
});

test("durability: an acknowledged deletion that came back is a violation", (t) => {
  const h = new H().op(1, "register", "u", 0, 1, "ok", L3, { version: 1 }).op(1, "delete", "u", 2, 3, "ok", right);
  t.false(checkDurability(h.sorted(), final({ u: { version: 1, attemptsRemaining: 3, locked: false } })).valid);
});

test("durability: a later write of unknown outcome may explain the final state", (t) => {
  const h = new H().op(1, "register", "u", 0, 1, "ok", L3, { version: 1 }).op(2, "delete", "u", 2, null, "info", right);
  t.true(checkDurability(h.sorted(), final({ u: null })).valid);
  t.true(checkDurability(h.sorted(), final({ u: { version: 1, attemptsRemaining: 3, locked: false } })).valid);
});

test("durability: an unlocked record that does not recover with its acknowledged password is a violation", (t) => {
  const h = new H().op(1, "register", "u", 0, 1, "ok", L3, { version: 1 });
  const r = checkDurability(h.sorted(), final({ u: { version: 1, attemptsRemaining: 3, locked: false } }, { u: "wrong-password" }));
  t.regex(r.violations[0]!.description, /final recovery .* answered wrong-password/);
  t.true(checkDurability(h.sorted(), final({ u: { version: 1, attemptsRemaining: 0, locked: true } }, { u: "locked" })).valid);
});

// ---------- counters (linearizability) ----------

test("counters: a counter that goes back (two begins both report 2 left) is not linearizable", (t) => {
  const h = new H().op(1, "register", "u", 0, 1, "ok", L3, { version: 1 });
  h.op(1, "begin", "u", 10, 11, "ok", {}, { attemptsRemaining: 2 });
  h.op(2, "begin", "u", 20, 21, "ok", {}, { attemptsRemaining: 2 });
  const r = checkCounters(h.sorted());
  t.false(r.valid);
  t.regex(r.violations[0]!.description, /not linearizable.*cannot then place: #2 p2 begin/);
});

test("counters: a confirm with no pending attempt cannot be ordered", (t) => {
  const h = new H().op(1, "register", "u", 0, 1, "ok", L3, { version: 1 }).op(1, "confirm", "u", 10, 11, "ok");
  t.false(checkCounters(h.sorted()).valid);
});

test("counters: overlapping begins whose only valid order is the reverse of their invocation order", (t) => {
  // p1 invokes first but gets 1 left; p2 invokes later (overlapping) and gets 2 left: p2 must go first.
  const h = new H().op(1, "register", "u", 0, 1, "ok", L3, { version: 1 });
  h.op(1, "begin", "u", 10, 40, "ok", {}, { attemptsRemaining: 1 });
  h.op(2, "begin", "u", 20, 30, "ok", {}, { attemptsRemaining: 2 });
  t.true(checkCounters(h.sorted()).valid);
});

test("counters: overlapping begin and confirm — the confirm must fall between two begins", (t) => {
  // begins: 2 left (A), then 2 left again (C) only possible if a confirm B reset between them.
  const h = new H().op(1, "register", "u", 0, 1, "ok", L3, { version: 1 });
  h.op(1, "begin", "u", 10, 50, "ok", {}, { attemptsRemaining: 2 });
  h.op(2, "confirm", "u", 5, 60, "ok");
  h.op(3, "begin", "u", 55, 70, "ok", {}, { attemptsRemaining: 2 });
  t.true(checkCounters(h.sorted()).valid);
  // Without the confirm, the same begins are a violation.
  const bad = new H().op(1, "register", "u", 0, 1, "ok", L3, { version: 1 });
  bad.op(1, "begin", "u", 10, 50, "ok", {}, { attemptsRemaining: 2 });
  bad.op(3, "begin", "u", 55, 70, "ok", {}, { attemptsRemaining: 2 });
  t.false(checkCounters(bad.sorted()).valid);
});

test("counters: an info begin must be assumed to have happened", (t) => {
  // p1's begin timed out (info); the next begin reports 1 left, which only p1's attempt explains.
  const h = new H().op(1, "register", "u", 0, 1, "ok", L3, { version: 1 });
  h.op(1, "begin", "u", 10, null, "info");
  h.op(2, "begin", "u", 20, 21, "ok", {}, { attemptsRemaining: 1 });
  t.true(checkCounters(h.sorted()).valid);
  // Without it, the history is impossible.
  const bad = new H().op(1, "register", "u", 0, 1, "ok", L3, { version: 1 }).op(2, "begin", "u", 20, 21, "ok", {}, { attemptsRemaining: 1 });
  t.false(checkCounters(bad.sorted()).valid);
});

test("counters: an info confirm may or may not have happened", (t) => {
  const h = new H().op(1, "register", "u", 0, 1, "ok", L3, { version: 1 });
  h.op(1, "begin", "u", 10, 11, "ok", {}, { attemptsRemaining: 2 });
  h.op(1, "confirm", "u", 12, null, "info");
  h.op(2, "begin", "u", 20, 21, "ok", {}, { attemptsRemaining: 1 });
  t.true(checkCounters(h.sorted()).valid);
  const h2 = new H().op(1, "register", "u", 0, 1, "ok", L3, { version: 1 });
  h2.op(1, "begin", "u", 10, 11, "ok", {}, { attemptsRemaining: 2 });
  h2.op(1, "confirm", "u", 12, null, "info");
  h2.op(2, "begin", "u", 20, 21, "ok", {}, { attemptsRemaining: 2 });
  t.true(checkCounters(h2.sorted()).valid);
});

test("counters: the lock at the limit — exhausted after limit attempts, then locked; an extra attempt is a violation", (t) => {
  const h = new H().op(1, "register", "u", 0, 1, "ok", { guessLimit: 2 }, { version: 1 });
  h.op(1, "recover", "u", 10, 11, "fail", wrong, WRONG(1));
  h.op(1, "recover", "u", 12, 13, "fail", wrong, WRONG(0));
  h.op(1, "recover", "u", 14, 15, "fail", wrong, { error: "RESOURCE_EXHAUSTED" });
  h.op(1, "recover", "u", 16, 17, "fail", wrong, { error: "RECORD_LOCKED" });
  t.true(checkCounters(h.sorted()).valid);
  h.op(2, "recover", "u", 20, 21, "fail", wrong, WRONG(0));
  t.false(checkCounters(h.sorted()).valid);
});

test("counters: recover and change-password are split into chained steps", (t) => {
  const h = new H().op(1, "register", "u", 0, 1, "ok", L3, { version: 1 });
  h.op(1, "recover", "u", 10, 11, "fail", wrong, WRONG(2));
  h.op(1, "change-password", "u", 12, 20, "ok", right, { version: 2 });
  h.op(2, "read-attempts", "u", 21, 22, "ok", {}, { attemptsRemaining: 3, version: 2 });
  t.true(checkCounters(h.sorted()).valid);
  const bad = new H().op(1, "register", "u", 0, 1, "ok", L3, { version: 1 });
  bad.op(1, "change-password", "u", 12, 20, "ok", right, { version: 2 });
  bad.op(2, "read-attempts", "u", 21, 22, "ok", {}, { attemptsRemaining: 3, version: 1 });
  t.false(checkCounters(bad.sorted()).valid);
});

test("counters: a node's own view of attempts must not go back without a possible reset", (t) => {
  const h = new H().op(1, "register", "u", 0, 1, "ok", L3, { version: 1 });
  h.op(1, "begin", "u", 2, 3, "ok", {}, { attemptsRemaining: 2 });
  h.op(2, "read-attempts", "u", 10, 11, "ok", {}, { node: 2, attemptsRemaining: 2, version: 1 });
  h.op(2, "read-attempts", "u", 12, 13, "ok", {}, { node: 2, attemptsRemaining: 3, version: 1 });
  const r = checkCounters(h.sorted());
  t.false(r.valid);
  t.regex(r.violations[0]!.description, /node 2's attempts remaining went from 2 up to 3/);
});

test("linearizability search: budget exhaustion is inconclusive, not a violation", (t) => {
  const h = new H().op(1, "register", "u", 0, 1, "ok", { guessLimit: 50 }, { version: 1 });
  for (let p = 0; p < 12; p++) h.op(10 + p, "begin", "u", 10, null, "info");
  h.op(2, "begin", "u", 20, 21, "ok", {}, { attemptsRemaining: 0 });
  const r = checkCounters(h.sorted(), { budget: 50 });
  t.true(r.valid);
  t.true(r.notes.some((n) => /inconclusive/.test(n)));
});

test("linearizability search refuses malformed input", (t) => {
  const op = (id: number, invoke: number, complete: number): LinOp<number> => ({ id, invoke, complete, required: true, apply: (s) => s, label: "x" });
  t.throws(() => checkLinearizable({ init: 0, key: String }, [op(1, 5, 4)]), { message: /completes before/ });
  t.throws(() => checkLinearizable({ init: 0, key: String }, [op(1, 1, 2), op(1, 1, 2)]), { message: /duplicate/ });
});

// ---------- leaders and digests ----------

const line = (o: object): string => JSON.stringify({ time: "2026-01-01T00:00:00Z", level: "info", ...o });

test("leaders: two nodes claiming leadership in one term is a violation", (t) => {
  const logs = new Map([
    [1, [line({ msg: "leader changed", node: 1, leader: 1, term: 3, role: "StateLeader" }), "garbage", ""].join("\n")],
    [2, line({ msg: "leader changed", node: 2, leader: 2, term: 3, role: "StateLeader" })],
    [3, line({ msg: "leader changed", node: 3, leader: 1, term: 3, role: "StateFollower" })],
  ]);
  const r = checkLeaders([], logs);
  t.false(r.valid);
  t.regex(r.violations[0]!.description, /term 3 has 2 leaders: node 1 .*node 2/);
});

test("leaders: one leader per term across terms is fine; followers' reports are not claims", (t) => {
  const logs = new Map([
    [1, line({ msg: "leader changed", node: 1, leader: 1, term: 2, role: "StateLeader" })],
    [2, [line({ msg: "leader changed", node: 2, leader: 1, term: 2, role: "StateFollower" }), line({ msg: "leader changed", node: 2, leader: 2, term: 4, role: "StateLeader" })].join("\n")],
  ]);
  t.true(checkLeaders([], logs).valid);
  t.is(parseLeaderClaims(2, logs.get(2)!).length, 1);
  t.deepEqual(parseLeaderClaims(5, line({ msg: "became leader", term: 9 })), [{ node: 5, term: 9, source: "node 5 log line 1" }]);
});

test("digests: different digests at the same index, or no convergence, are violations", (t) => {
  const same = checkDigests({ nodes: [{ node: 1, appliedIndex: 9, digest: "aa" }, { node: 2, appliedIndex: 9, digest: "aa" }] });
  t.true(same.valid);
  const diff = checkDigests({ nodes: [{ node: 1, appliedIndex: 9, digest: "aa" }, { node: 2, appliedIndex: 9, digest: "bb" }] });
  t.regex(diff.violations[0]!.description, /applied index 9 disagree/);
  const lag = checkDigests({ nodes: [{ node: 1, appliedIndex: 9, digest: "aa" }, { node: 2, appliedIndex: 7, digest: "cc" }] });
  t.regex(lag.violations[0]!.description, /did not converge/);
  t.false(checkDigests({ nodes: [] }).valid);
});

test("counters: RECORD_LOCKED from ConfirmRecovery means the begin counted and the record was locked at confirm time", (t) => {
  const locked = { error: "RECORD_LOCKED", reason: "ConfirmRecovery:RECORD_LOCKED" };
  // Genuine: p1's begin is the last allowed; p2's begin at the limit locks the record before p1 confirms.
  const ok = new H().op(1, "register", "u", 0, 1, "ok", { guessLimit: 1 }, { version: 1 });
  ok.op(1, "recover", "u", 10, 40, "fail", right, locked);
  ok.op(2, "recover", "u", 15, 20, "fail", wrong, { error: "RECORD_LOCKED", reason: "BeginRecovery:RECORD_LOCKED" });
  t.true(checkCounters(ok.sorted()).valid);
  // Found by seed smoke1: a concurrent confirmation cleared the attempt and the server called it "locked".
  const bad = new H().op(1, "register", "u", 0, 1, "ok", L3, { version: 1 });
  bad.op(1, "recover", "u", 10, 20, "ok", right, { keyReleased: true, keyMatches: true, confirmed: true });
  bad.op(2, "recover", "u", 12, 30, "fail", right, locked);
  const r = checkCounters(bad.sorted());
  t.false(r.valid);
  t.regex(r.violations[0]!.description, /cannot then place: #2 p2 recover fail .*RECORD_LOCKED/);
});

test("durability: an inconclusive final recovery (too many possible passwords) is a note, not a violation", (t) => {
  const h = new H().op(1, "register", "u", 0, 1, "ok", L3, { version: 1 });
  const r = checkDurability(h.sorted(), final({ u: { version: 1, attemptsRemaining: 1, locked: false } }, { u: "inconclusive" }));
  t.true(r.valid);
  t.true(r.notes.some((n) => /inconclusive/.test(n)));
});
