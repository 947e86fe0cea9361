// admitEvaluation (node/server/vault-service.ts) over a real EvaluationLedger:
// a node releases at most guess_limit evaluations per record epoch, whatever
// state it is fed. The attack it closes (found in review, stop 31): a rogue
// leader forks two honest followers' histories before a registration, counts
// L attempts on Y (Y evaluates each), installs X's honest state (the record
// absent: the rollback check compares nothing) and commits the same
// registration entry again on Y: a fresh counter, L more attempts Y would
// evaluate. Here Y's state machine goes through exactly that; Y's ledger
// refuses the second round.
import test from "ava";
import type { status } from "@grpc/grpc-js";
import { VaultStateMachine, encodeCommand, rollbackFrom } from "../../node/vault/index.js";
import { EvaluationLedger } from "../../node/storage/index.js";
import { admitEvaluation } from "../../node/server/vault-service.js";
import { RpcFailure } from "../../node/server/errors.js";
import { Metrics } from "../../node/server/metrics.js";
import { jsonLogger } from "../../node/server/log.js";
import { CLUSTER, Harness, beginCmd, blindedPoint, confirmCmd, register, registerCmd, runToEnd } from "../../testkit/vault.js";
import { tempDir } from "../temp.js";

const L = 3;
const quiet = jsonLogger("error", {}, () => ({}), () => {});

async function node(t: { teardown(f: () => Promise<void>): void }, dir: string) {
  const ledger = await EvaluationLedger.open(dir);
  t.teardown(() => ledger.close());
  const metrics = new Metrics(() => null, { node: "2" });
  const d = { nodeId: 2, ledger, log: quiet, metrics } as unknown as Parameters<typeof admitEvaluation>[0];
  /** What Evaluate does between its state checks and the HSM, for every pending attempt of `user` in `h`'s state. */
  const evaluateAll = async (h: Harness, user: string): Promise<Array<"released" | status>> => {
    const view = h.sm.getRecord(user);
    if (view === undefined) throw new Error("no record");
    return Promise.all(view.pending.map(async (p) => {
      try {
        await admitEvaluation(d, user, view, p);
        return "released" as const;
      } catch (err) {
        if (err instanceof RpcFailure) return err.code;
        throw err;
      }
    }));
  };
  return { ledger, metrics, evaluateAll };
}

function begins(h: Harness, user: string, n: number, seed: number): void {
  for (let i = 0; i < n; i++) h.apply(beginCmd(user, blindedPoint(seed + i)));
}

test("a registration replayed over a state that lacks it gets no fresh evaluations from a node that evaluated the first round", async (t) => {
  const y = await node(t, tempDir(t));
  const reg = register("victim", { guessLimit: L });
  const registration = encodeCommand(registerCmd(reg));
  const Y = new Harness();
  Y.apply(registration);
  begins(Y, "victim", L, 100);
  t.deepEqual(await y.evaluateAll(Y, "victim"), ["released", "released", "released"], "round 1: L evaluations");
  // X: another history of the same length and more, without the registration; its state is what Y is made to install.
  const X = new Harness();
  while (X.index <= Y.index + 1) X.apply(beginCmd("nobody"));
  t.is(runToEnd(rollbackFrom(Y.sm.store, X.sm.store)), null, "the rollback check sees nothing to compare (the record is absent)");
  const Y2 = new Harness(VaultStateMachine.restore({ clusterId: CLUSTER }, X.sm.snapshot()));
  Y2.index = X.index;
  t.true(Y2.apply(registration).result.ok, "the same registration entry applies again");
  begins(Y2, "victim", L, 200);
  t.is(Y2.sm.getRecord("victim")?.attemptsRemaining, 0, "the state authorizes L more attempts");
  t.deepEqual(await y.evaluateAll(Y2, "victim"), [9, 9, 9], "round 2: FAILED_PRECONDITION for each, nothing released");
  t.true((await y.metrics.registry.metrics()).includes('bkv_evaluations_refused_total{reason="ledger",node="2"} 3'));
});

test("honest use: the same attempt evaluates again, and a confirmation opens a new epoch of L", async (t) => {
  const y = await node(t, tempDir(t));
  const reg = register("owner", { guessLimit: L });
  const h = new Harness();
  h.apply(registerCmd(reg));
  begins(h, "owner", 2, 300);
  t.deepEqual(await y.evaluateAll(h, "owner"), ["released", "released"]);
  t.deepEqual(await y.evaluateAll(h, "owner"), ["released", "released"], "a retried Evaluate of the same attempts");
  const last = h.index;
  t.true(h.apply(confirmCmd(reg, last)).result.ok);
  begins(h, "owner", L, 400);
  t.deepEqual(await y.evaluateAll(h, "owner"), ["released", "released", "released"], "L more after the owner's confirmation");
});

// Closed (docs/threat-model.md, "Closed: a victim's shares copied into
// another record"): the copy is refused on apply, so no node evaluates the
// victim's shares under an epoch its owner does not control.
test("a victim's shares copied into another user's record are refused on apply: no node evaluates them there", async (t) => {
  const victim = register("victim", { guessLimit: L });
  const mallory = register("mallory", { guessLimit: L });
  // What a thief of a disk or backup, or a rogue member, holds: the victim's record. Re-registered under mallory's account and reset key.
  const copies = [
    { ...victim, record: { ...victim.record, user: "mallory", resetPublicKey: mallory.record.resetPublicKey } },
    { ...mallory, record: { ...mallory.record, shares: victim.record.shares } },
    { ...victim, record: { ...victim.record, user: "mallory" } },
  ];
  const h = new Harness();
  t.true(h.apply(registerCmd(victim)).result.ok);
  for (const copy of copies) {
    const out = h.apply(registerCmd(copy)).result;
    t.false(out.ok);
    t.is(out.ok ? undefined : out.reason, "BAD_SIGNATURE");
    t.regex(out.ok ? "" : out.message, /made for another record/);
  }
  t.is(h.sm.getRecord("mallory"), undefined, "mallory holds no record made of the victim's shares");
  t.false(h.apply(beginCmd("mallory")).result.ok);
});

// A known gap (docs/threat-model.md, "Open: a genuine confirmation replayed
// at another index"): documents it, fails once it is closed.
test("GAP: the owner's confirmation replayed at another index in another history opens another epoch on a node that installs that history", async (t) => {
  const y = await node(t, tempDir(t));
  const reg = register("victim", { guessLimit: L });
  const common = [encodeCommand(registerCmd(reg)), encodeCommand(beginCmd("victim", blindedPoint(600)))];
  const Y = new Harness();
  const X = new Harness();
  for (const e of common) { Y.apply(e); X.apply(e); }
  const attempt = Y.index;
  const confirmation = encodeCommand(confirmCmd(reg, attempt)); // the owner's genuine confirmation, seen in the log
  t.true(Y.apply(confirmation).result.ok);
  begins(Y, "victim", L, 610);
  t.deepEqual(await y.evaluateAll(Y, "victim"), ["released", "released", "released"]);
  X.apply(beginCmd("nobody"));
  t.true(X.apply(confirmation).result.ok, "the same confirmation, one index later");
  while (X.index <= Y.index) X.apply(beginCmd("nobody"));
  t.is(runToEnd(rollbackFrom(Y.sm.store, X.sm.store)), null, "a later confirmation is not compared");
  const Y2 = new Harness(VaultStateMachine.restore({ clusterId: CLUSTER }, X.sm.snapshot()));
  Y2.index = X.index;
  begins(Y2, "victim", L, 620);
  const second = await y.evaluateAll(Y2, "victim");
  t.deepEqual(second, ["released", "released", "released"], "the ledger's epoch is (digest, confirmation index): 2L evaluations on one node without a new confirmation");
});
