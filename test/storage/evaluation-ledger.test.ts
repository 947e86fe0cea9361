// EvaluationLedger (node/storage/evaluation-ledger.ts): at most `limit`
// distinct attempts per record epoch, durable across a reopen; the same
// attempt again is no new one; epochs (digest, confirmation) count apart;
// a record's epoch is named by its confirmed attempt, else (confirmed before
// states kept it) by its confirmation's index.
import test from "ava";
import { EvaluationLedger, epochOf } from "../../node/storage/index.js";
import { tempDir } from "../temp.js";

const digest = (b: number) => new Uint8Array(32).fill(b);
const blinded = (b: number) => new Uint8Array(33).fill(b);
const epoch = { digest: digest(1), confirmation: 0 };

test("an epoch admits `limit` distinct attempts, then no other; the same attempt again is answered 'again'", async (t) => {
  const ledger = await EvaluationLedger.open(tempDir(t));
  t.teardown(() => ledger.close());
  t.is(await ledger.admit(epoch, { attemptId: 5, blinded: blinded(5) }, 2), "admitted");
  t.is(await ledger.admit(epoch, { attemptId: 5, blinded: blinded(5) }, 2), "again");
  t.is(await ledger.admit(epoch, { attemptId: 7, blinded: blinded(7) }, 2), "admitted");
  t.is(await ledger.admit(epoch, { attemptId: 9, blinded: blinded(9) }, 2), "spent");
  t.is(await ledger.admit(epoch, { attemptId: 5, blinded: blinded(6) }, 2), "spent", "the same id with another blinded element is another attempt");
  t.is(await ledger.admit(epoch, { attemptId: 7, blinded: blinded(7) }, 2), "again", "an admitted attempt may be evaluated again");
  t.deepEqual(ledger.admitted(epoch), [5, 7]);
});

test("epochs count apart: another digest, or another confirmation of the same record", async (t) => {
  const ledger = await EvaluationLedger.open(tempDir(t));
  t.teardown(() => ledger.close());
  t.is(await ledger.admit(epoch, { attemptId: 1, blinded: blinded(1) }, 1), "admitted");
  t.is(await ledger.admit(epoch, { attemptId: 2, blinded: blinded(2) }, 1), "spent");
  t.is(await ledger.admit({ digest: digest(1), confirmation: 3 }, { attemptId: 4, blinded: blinded(4) }, 1), "admitted");
  t.is(await ledger.admit({ digest: digest(2), confirmation: 0 }, { attemptId: 2, blinded: blinded(2) }, 1), "admitted");
});

test("an epoch behind the newest one of the same record is 'behind', also for an attempt admitted there before; other records are not affected", async (t) => {
  const ledger = await EvaluationLedger.open(tempDir(t));
  t.teardown(() => ledger.close());
  const at = (confirmation: number, d = 1) => ({ digest: digest(d), confirmation });
  t.is(await ledger.admit(at(0), { attemptId: 1, blinded: blinded(1) }, 3), "admitted");
  t.is(await ledger.admit(at(4), { attemptId: 6, blinded: blinded(6) }, 3), "admitted");
  t.is(await ledger.admit(at(0), { attemptId: 2, blinded: blinded(2) }, 3), "behind");
  t.is(await ledger.admit(at(0), { attemptId: 1, blinded: blinded(1) }, 3), "behind", "not even again: the record moved on");
  t.is(await ledger.admit(at(3), { attemptId: 5, blinded: blinded(5) }, 3), "behind", "an epoch between, never seen, is behind too");
  t.is(await ledger.admit(at(4), { attemptId: 7, blinded: blinded(7) }, 3), "admitted", "the newest epoch counts on");
  t.is(await ledger.admit(at(9), { attemptId: 10, blinded: blinded(10) }, 3), "admitted", "a later one opens");
  t.is(await ledger.admit(at(0, 2), { attemptId: 3, blinded: blinded(3) }, 3), "admitted", "another digest (0x02…) is another record");
  t.is(await ledger.admit(at(0, 0), { attemptId: 3, blinded: blinded(3) }, 3), "admitted", "a digest sorting just before (0x00…) too");
  t.deepEqual(ledger.admitted(at(0)), [1]);
});

test("what was admitted is there after a reopen", async (t) => {
  const dir = tempDir(t);
  const a = await EvaluationLedger.open(dir);
  t.is(await a.admit(epoch, { attemptId: 3, blinded: blinded(3) }, 1), "admitted");
  await a.close();
  const b = await EvaluationLedger.open(dir);
  t.teardown(() => b.close());
  t.is(await b.admit(epoch, { attemptId: 4, blinded: blinded(4) }, 1), "spent");
  t.deepEqual(b.admitted(epoch), [3]);
});

test("concurrent admits of one epoch never pass the limit", async (t) => {
  const ledger = await EvaluationLedger.open(tempDir(t));
  t.teardown(() => ledger.close());
  const verdicts = await Promise.all(Array.from({ length: 20 }, (_, i) => ledger.admit(epoch, { attemptId: i + 1, blinded: blinded(i) }, 3)));
  t.is(verdicts.filter((v) => v === "admitted").length, 3);
  t.is(ledger.admitted(epoch).length, 3);
});

test("malformed epochs and attempts are refused, not stored", async (t) => {
  const ledger = await EvaluationLedger.open(tempDir(t));
  t.teardown(() => ledger.close());
  t.throws(() => ledger.admit({ digest: new Uint8Array(31), confirmation: 0 }, { attemptId: 1, blinded: blinded(1) }, 1), { instanceOf: RangeError });
  t.throws(() => ledger.admit(epoch, { attemptId: 0, blinded: blinded(1) }, 1), { instanceOf: RangeError });
  t.throws(() => ledger.admit(epoch, { attemptId: 1, blinded: new Uint8Array(32) }, 1), { instanceOf: RangeError });
  t.deepEqual(ledger.admitted(epoch), []);
});

test("epochOf: a record's confirmation is the attempt it confirmed, wherever it was applied; a record confirmed before states kept that id keeps its index; none is 0", (t) => {
  const d = digest(7);
  t.deepEqual(epochOf({ digest: d, confirmedAt: 0, confirmedAttempt: 0 }), { digest: d, confirmation: 0 });
  t.deepEqual(epochOf({ digest: d, confirmedAt: 12, confirmedAttempt: 9 }), { digest: d, confirmation: 9 });
  t.deepEqual(epochOf({ digest: d, confirmedAt: 40, confirmedAttempt: 9 }), { digest: d, confirmation: 9 }, "the same confirmation replayed at another index");
  t.deepEqual(epochOf({ digest: d, confirmedAt: 12, confirmedAttempt: 0 }), { digest: d, confirmation: 12 }, "legacy: the epoch it had before");
});

test("a ledger written when epochs were confirmation indexes keeps counting a record confirmed then; a later confirmation opens a new epoch", async (t) => {
  const ledger = await EvaluationLedger.open(tempDir(t));
  t.teardown(() => ledger.close());
  const d = digest(8);
  const legacy = { digest: d, confirmation: 12 }; // what the ledger was given before: (digest, confirmedAt)
  t.is(await ledger.admit(legacy, { attemptId: 13, blinded: blinded(13) }, 1), "admitted");
  t.is(await ledger.admit(epochOf({ digest: d, confirmedAt: 12, confirmedAttempt: 0 }), { attemptId: 14, blinded: blinded(14) }, 1), "spent");
  t.is(await ledger.admit(epochOf({ digest: d, confirmedAt: 15, confirmedAttempt: 13 }), { attemptId: 16, blinded: blinded(16) }, 1), "admitted");
});
