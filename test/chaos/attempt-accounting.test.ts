// The attempt-accounting rule (docs/chaos.md "Attempt accounting", issue 9)
// as the checkers model it: the two chaos verdicts of issue 9, replayed from
// the recorded histories, and one small history per modelling rule, each
// valid only because of that rule.
import test from "ava";
import { readFileSync } from "node:fs";
import { checkCounters, checkRightPassword } from "../../chaos/checkers/index.js";
import { opsByUser } from "../../chaos/checkers/common.js";
import { type CounterState, counterModel, linOpsOf } from "../../chaos/checkers/counter-model.js";
import { checkLinearizable } from "../../chaos/checkers/linearizable.js";
import { type HistoryEvent, parseHistory } from "../../chaos/history.js";
import { H } from "./history-builder.js";

const fixture = (name: string): HistoryEvent[] => parseHistory(readFileSync(new URL(`fixtures/${name}`, import.meta.url), "utf8"));

/** The linearization the counters checker found for `user`, as "label → state after it" lines. */
function linearization(events: readonly HistoryEvent[], user: string): { label: string; state: CounterState }[] {
  const { linOps } = linOpsOf(opsByUser(events).get(user)!);
  const r = checkLinearizable(counterModel, linOps, 2_000_000);
  if (r.status !== "ok") throw new Error(`not linearizable: ${JSON.stringify(r).slice(0, 300)}`);
  const byId = new Map(linOps.map((o) => [o.id, o]));
  let s = counterModel.init;
  return r.order.map((id) => {
    const o = byId.get(id)!;
    s = o.apply(s)!;
    return { label: o.label, state: s };
  });
}

const stepOf = (order: ReturnType<typeof linearization>, label: string) => {
  const i = order.findIndex((x) => x.label === label);
  if (i < 0) throw new Error(`no step ${label}`);
  return { i, ...order[i]!, before: order[i - 1]!.state };
};

// ---------- the two runs of issue 9 ----------

test("seed 90417, user-3 (no fault): a delete's confirmation superseded by a concurrent recovery's is valid under the model", (t) => {
  // p4's recover (confirmed), p1's delete and p2's wrong guess had three attempts pending at once (p2: 2 remaining of 5).
  // records.ts `confirm` resets the counter AND clears every pending attempt, so p1's later ConfirmRecovery was refused
  // (ATTEMPT_NOT_FOUND), the SDK swallowed it (warning CONFIRM_SUPERSEDED, not recorded for deletes then) and the
  // Delete, which needs no pending attempt, went ahead. The old model (one counter, "confirm needs attempts > 0") could
  // not place the second confirmation: 1 violation.
  const events = fixture("chaos-3n-90417-user-3.jsonl");
  t.true(checkCounters(events).valid);
  const order = linearization(events, "user-3");
  const p4 = stepOf(order, "p4 recover#3.confirm(committed)");
  const p1 = stepOf(order, "p1 delete#5.confirm(either)");
  t.deepEqual(p4.before.pending.length, 3, "three attempts pending when p4 confirms");
  t.true(p1.i > p4.i);
  t.deepEqual(p1.state, p1.before, "p1's confirmation changed nothing: it was superseded");
});

test("5-node user-22: explained by supersession and a stale password label, not a violation", (t) => {
  // p3's wrong guess answered 1 remaining of 5: p2, p4, p1 (delete) and p3 had four attempts pending at once on the
  // re-registered record; p4's confirmation (confirmed) reset the counter and superseded the others; p1's delete
  // confirmation was refused as superseded and the delete went ahead, as in seed 90417. No recover spent two attempts.
  // p2's "right" password answered WRONG_PASSWORD (4 remaining) correctly: the workload used the password of the record
  // deleted at 224.18 s (delete never cleared its `current` password); the re-registered record (p3, invoked 227.40 s,
  // acknowledged 227.63 s, after p2 picked its password at 227.61 s) has another one. So the right-password checker,
  // which needs the password to be certainly the record's (set, acknowledged, and unchanged through the recovery),
  // does not flag it, and it must not.
  const events = fixture("chaos-5n-1204-user-22.jsonl");
  t.true(checkCounters(events).valid);
  t.true(checkRightPassword(events).valid);
  const order = linearization(events, "user-22");
  const p3 = stepOf(order, "p3 recover#60.begin(remaining=1)");
  t.is(p3.state.pending.length, 4, "four attempts pending at p3's begin");
  const p4 = stepOf(order, "p4 recover#58.confirm(committed)");
  const p1 = stepOf(order, "p1 delete#59.confirm(either)");
  t.true(p1.i > p4.i && p4.i > p3.i);
  t.deepEqual(p1.state, p1.before, "p1's delete confirmation was superseded");
});

// ---------- one rule per history ----------

const L = (guessLimit: number) => ({ guessLimit, version: 1 });
const wrong = { passwordCorrect: false };
const right = { passwordCorrect: true };
const WRONG = (r: number, warnings: string[] = []) => ({ error: "WRONG_PASSWORD", attemptsRemaining: r, warnings });
const KEY = (warnings: string[] = []) => ({ keyReleased: true, keyMatches: true, confirmed: !warnings.some((w) => w.startsWith("CONFIRM_")), warnings });

test("supersession: a confirmation settles every pending attempt; the superseded recovery still returns the key", (t) => {
  // p1 and p2 begin (3 remaining after both); p1 confirms; p2's confirmation is refused as superseded; p3 then has 4 left.
  const h = new H().op(9, "register", "u", 0, 1, "ok", L(5), { version: 1, warnings: [] });
  h.op(1, "recover", "u", 10, 40, "ok", right, KEY());
  h.op(2, "recover", "u", 11, 50, "ok", right, KEY(["CONFIRM_SUPERSEDED"]));
  h.op(4, "recover", "u", 12, 20, "fail", wrong, WRONG(2));
  h.op(3, "recover", "u", 60, 70, "fail", wrong, WRONG(4));
  t.true(checkCounters(h.sorted()).valid);

  // Both confirmations claimed committed: impossible, the first supersedes the other's attempt.
  const both = new H().op(9, "register", "u", 0, 1, "ok", L(5), { version: 1, warnings: [] });
  both.op(1, "recover", "u", 10, 40, "ok", right, KEY());
  both.op(2, "recover", "u", 11, 50, "ok", right, KEY());
  both.op(4, "recover", "u", 12, 20, "fail", wrong, WRONG(2));
  t.false(checkCounters(both.sorted()).valid);
});

test("NEW_ATTEMPT: a recovery that began a second attempt spent two", (t) => {
  // p1's first attempt is the one p4 sees (3 left of 5); p2's confirmation supersedes it; p1 begins again (4 left),
  // and p3 then sees that second attempt (3 left). With one attempt for p1, p3 would see 4.
  const history = (p1Warnings: string[]) => {
    const h = new H().op(9, "register", "u", 0, 1, "ok", L(5), { version: 1, warnings: [] });
    h.op(1, "recover", "u", 10, 200, "fail", wrong, WRONG(4, p1Warnings));
    h.op(4, "recover", "u", 20, 30, "fail", wrong, WRONG(3));
    h.op(2, "recover", "u", 40, 100, "ok", right, KEY());
    h.op(3, "recover", "u", 300, 310, "fail", wrong, WRONG(3));
    return h.sorted();
  };
  t.true(checkCounters(history(["NEW_ATTEMPT"])).valid);
  t.false(checkCounters(history([])).valid, "without the warning the same answers are impossible");
});

test("NEW_ATTEMPT: the first attempt must have been superseded before the second began", (t) => {
  // No confirmation anywhere: nothing could supersede p1's first attempt, so a NEW_ATTEMPT is impossible.
  const h = new H().op(9, "register", "u", 0, 1, "ok", L(5), { version: 1, warnings: [] });
  h.op(1, "recover", "u", 10, 200, "fail", wrong, WRONG(3, ["NEW_ATTEMPT"]));
  t.false(checkCounters(h.sorted()).valid);
});

test("RECORD_CHANGED: a BeginRecovery refused because the record changed counts no attempt", (t) => {
  const history = (refused: { error: string; reason: string }) => {
    const h = new H().op(9, "register", "u", 0, 1, "ok", L(3), { version: 1, warnings: [] });
    h.op(1, "recover", "u", 10, 20, "fail", right, { ...refused, warnings: [] });
    h.op(2, "recover", "u", 30, 40, "fail", wrong, WRONG(2));
    return h.sorted();
  };
  t.true(checkCounters(history({ error: "RECORD_CHANGED", reason: "beginRecovery:RECORD_CHANGED" })).valid);
  // Recorded by its gRPC code, the refusal is still recognised by its reason (not read as "locked or exhausted").
  t.true(checkCounters(history({ error: "FAILED_PRECONDITION", reason: "beginRecovery:RECORD_CHANGED" })).valid);
  // Counting it would leave 1, not 2.
  const counted = new H().op(9, "register", "u", 0, 1, "ok", L(3), { version: 1, warnings: [] });
  counted.op(1, "recover", "u", 10, 20, "fail", wrong, WRONG(2));
  counted.op(2, "recover", "u", 30, 40, "fail", wrong, WRONG(2));
  t.false(checkCounters(counted.sorted()).valid);
});

test("incarnations: a record deleted and registered again starts with no attempts and nothing pending", (t) => {
  const h = new H().op(9, "register", "u", 0, 1, "ok", L(3), { version: 1, warnings: [] });
  h.op(1, "recover", "u", 10, 20, "fail", wrong, WRONG(2));
  h.op(1, "recover", "u", 30, 40, "fail", wrong, WRONG(1));
  // p2's attempt was begun on the first incarnation; the delete took it away; its confirmation cannot commit later.
  h.op(2, "recover", "u", 45, 200, "ok", right, KEY(["CONFIRM_SUPERSEDED"]));
  h.op(3, "delete", "u", 50, 60, "ok", right, { warnings: [] });
  h.op(9, "register", "u", 70, 80, "ok", L(3), { version: 1, warnings: [] });
  h.op(1, "recover", "u", 90, 100, "fail", wrong, WRONG(2));
  h.op(4, "read-attempts", "u", 110, 120, "ok", {}, { attemptsRemaining: 2, version: 1 });
  t.true(checkCounters(h.sorted()).valid);

  const carried = new H().op(9, "register", "u", 0, 1, "ok", L(3), { version: 1, warnings: [] });
  carried.op(1, "recover", "u", 10, 20, "fail", wrong, WRONG(2));
  carried.op(3, "delete", "u", 50, 60, "ok", right, { warnings: [] });
  carried.op(9, "register", "u", 70, 80, "ok", L(3), { version: 1, warnings: [] });
  carried.op(1, "recover", "u", 90, 100, "fail", wrong, WRONG(1));
  t.false(checkCounters(carried.sorted()).valid, "the new incarnation does not inherit the old one's attempts");
});

// ---------- right password ----------

test("right password: the record's acknowledged password answered WRONG_PASSWORD is a violation", (t) => {
  const h = new H().op(9, "register", "u", 0, 1, "ok", { ...L(5), setsPasswordSeq: 7 }, { version: 1, warnings: [] });
  h.op(1, "recover", "u", 10, 20, "fail", { ...right, passwordSeq: 7 }, WRONG(4));
  const r = checkRightPassword(h.sorted());
  t.false(r.valid);
  t.regex(r.violations[0]!.description, /record u: the record's password was answered WRONG_PASSWORD/);
  // Histories without sequence numbers: passwordCorrect is the workload's last acknowledged password.
  const old = new H().op(9, "register", "u", 0, 1, "ok", L(5), { version: 1 }).op(1, "recover", "u", 10, 20, "fail", right, { error: "WRONG_PASSWORD", attemptsRemaining: 4 });
  t.false(checkRightPassword(old.sorted()).valid);
});

test("right password: no verdict while the password may have changed, or when another password was used", (t) => {
  const base = () => new H().op(9, "register", "u", 0, 1, "ok", { ...L(5), setsPasswordSeq: 7 }, { version: 1, warnings: [] });
  // A delete and a re-registration with password 8 may have taken effect before the recovery's begin.
  const reregistered = base().op(3, "delete", "u", 5, 8, "ok", { ...right, passwordSeq: 7 }, { warnings: [] });
  reregistered.op(2, "register", "u", 9, 30, "ok", { ...L(5), setsPasswordSeq: 8 }, { version: 1, warnings: [] });
  reregistered.op(1, "recover", "u", 10, 20, "fail", { ...right, passwordSeq: 7 }, WRONG(4));
  t.true(checkRightPassword(reregistered.sorted()).valid);
  // A password change of unknown outcome overlaps the recovery.
  const changing = base().op(2, "change-password", "u", 5, null, "info", { ...right, passwordSeq: 7, setsPasswordSeq: 8 });
  changing.op(1, "recover", "u", 10, 20, "fail", { ...right, passwordSeq: 7 }, WRONG(4));
  t.true(checkRightPassword(changing.sorted()).valid);
  // The recovery used another password than the one set.
  const other = base().op(1, "recover", "u", 10, 20, "fail", { ...right, passwordSeq: 6 }, WRONG(4));
  t.true(checkRightPassword(other.sorted()).valid);
  // A refused registration (RECORD_EXISTS) changes nothing.
  const refused = base().op(2, "register", "u", 5, 8, "fail", { ...L(5), setsPasswordSeq: 8 }, { error: "RECORD_EXISTS", warnings: [] });
  refused.op(1, "recover", "u", 10, 20, "fail", { ...right, passwordSeq: 7 }, WRONG(4));
  t.false(checkRightPassword(refused.sorted()).valid);
});

test("a record deleted between an operation's begin and its confirmation: the attempt counted all the same", (t) => {
  // p1's BeginRecovery counted (p2 then sees 3 of 5 left); a delete took the record before p1's ConfirmRecovery.
  const history = (reason: string) => {
    const h = new H().op(9, "register", "u", 0, 1, "ok", L(5), { version: 1, warnings: [] });
    h.op(1, "recover", "u", 10, 100, "fail", right, { error: "RECORD_NOT_FOUND", reason, warnings: [] });
    h.op(2, "recover", "u", 20, 30, "fail", wrong, WRONG(3));
    h.op(3, "delete", "u", 40, 50, "ok", right, { warnings: [] });
    return h.sorted();
  };
  t.true(checkCounters(history("ConfirmRecovery:RECORD_NOT_FOUND")).valid);
  t.true(checkCounters(history("Evaluate:RECORD_NOT_FOUND")).valid);
  // Refused by GetRecordInfo, p1 counted nothing, and p2's answer is impossible.
  t.false(checkCounters(history("GetRecordInfo:RECORD_NOT_FOUND")).valid);
});

test("a change-password whose overwrite found the record deleted: its attempt and confirmation counted (ci-smoke, user-13)", (t) => {
  // p1 began (p2 then sees 3 of 5 left), confirmed (superseding p2's attempt), and its Register found the record gone.
  const history = (reason: string) => {
    const h = new H().op(9, "register", "u", 0, 1, "ok", L(5), { version: 1, warnings: [] });
    h.op(1, "change-password", "u", 10, 100, "fail", { ...right, setsPasswordSeq: 8 }, { error: "RECORD_NOT_FOUND", reason, warnings: [] });
    h.op(2, "recover", "u", 20, 30, "fail", wrong, WRONG(3));
    h.op(3, "delete", "u", 40, 50, "ok", right, { warnings: ["CONFIRM_SUPERSEDED"] });
    return h.sorted();
  };
  t.true(checkCounters(history("Register:RECORD_NOT_FOUND")).valid);
  // Refused by GetRecordInfo, p1 counted nothing, and p2's answer is impossible.
  t.false(checkCounters(history("GetRecordInfo:RECORD_NOT_FOUND")).valid);
});
