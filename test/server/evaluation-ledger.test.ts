// admitEvaluation (node/server/vault-service.ts) over a real EvaluationLedger:
// a node releases at most guess_limit evaluations per record epoch, whatever
// state it is fed. The attack it closes (found in review, stop 31): a rogue
// leader forks two honest followers' histories before a registration, counts
// L attempts on Y (Y evaluates each), installs X's honest state (the record
// absent: the rollback check compares nothing) and commits the same
// registration entry again on Y: a fresh counter, L more attempts Y would
// evaluate. Here Y's state machine goes through exactly that; Y's ledger
// refuses the second round. And the owner's genuine confirmation committed
// again at another index in another history: the epoch is named by the
// attempt it confirmed, so Y's ledger refuses that round too; and an
// epoch behind the newest the ledger holds for the record is refused.
import test from "ava";
import type { status } from "@grpc/grpc-js";
import { MemoryStore, VaultStateMachine, encodeCommand, rollbackFrom } from "../../node/vault/index.js";
import { StoreState } from "../../node/vault/state.js";
import { confirmationKey } from "../../node/vault/keys.js";
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

/**
 * The owner's genuine confirmation of `attempt` (its entry, seen in the log)
 * committed again by a rogue leader in another history: `base`'s entries,
 * `fillers` other entries, the confirmation, then fillers past `past`'s
 * index; the state a node of `past`'s history is made to install.
 */
function replayedHistory(base: readonly Uint8Array[], confirmation: Uint8Array, fillers: number, past: Harness): Harness {
  const X = new Harness();
  for (const e of base) X.apply(e);
  for (let i = 0; i < fillers; i++) X.apply(beginCmd("nobody"));
  if (!X.apply(confirmation).result.ok) throw new Error("setup: the replayed confirmation was refused");
  while (X.index <= past.index) X.apply(beginCmd("nobody"));
  return X;
}

/** `X`'s state as the node installs it (the rollback check passes: a later confirmation is not compared). */
function install(X: Harness): Harness {
  const Y = new Harness(VaultStateMachine.restore({ clusterId: CLUSTER }, X.sm.snapshot()));
  Y.index = X.index;
  return Y;
}

// Closed (docs/threat-model.md, "Closed: a confirmation replayed at another
// index"): the ledger's epoch was (digest, confirmation index), so this gave
// 2L evaluations on one node without a new confirmation.
test("the owner's confirmation replayed at another index in another history opens no new epoch: the node that evaluated L refuses the rest", async (t) => {
  const y = await node(t, tempDir(t));
  const reg = register("victim", { guessLimit: L });
  const common = [encodeCommand(registerCmd(reg)), encodeCommand(beginCmd("victim", blindedPoint(600)))];
  const Y = new Harness();
  for (const e of common) Y.apply(e);
  const attempt = Y.index;
  const confirmation = encodeCommand(confirmCmd(reg, attempt)); // the owner's genuine confirmation, seen in the log
  t.true(Y.apply(confirmation).result.ok);
  begins(Y, "victim", L, 610);
  t.deepEqual(await y.evaluateAll(Y, "victim"), ["released", "released", "released"]);
  for (const fillers of [1, 4]) {
    const X = replayedHistory(common, confirmation, fillers, Y);
    t.not(X.sm.getRecord("victim")?.confirmedAt, Y.sm.getRecord("victim")?.confirmedAt, "the same confirmation at another index");
    t.is(runToEnd(rollbackFrom(Y.sm.store, X.sm.store)), null, "a later confirmation is not compared");
    const Y2 = install(X);
    begins(Y2, "victim", L, 620 + fillers * 10);
    t.is(Y2.sm.getRecord("victim")?.attemptsRemaining, 0, "the installed state authorizes L more attempts");
    t.deepEqual(await y.evaluateAll(Y2, "victim"), [9, 9, 9], `replayed after ${fillers} filler(s): the same epoch (the confirmed attempt ${attempt}), FAILED_PRECONDITION for each`);
  }
  t.true((await y.metrics.registry.metrics()).includes('bkv_evaluations_refused_total{reason="ledger",node="2"} 6'));
});

test("honest use after the fix: each genuine confirmation of a later attempt opens a new epoch of L, also on a node that installed the state", async (t) => {
  const y = await node(t, tempDir(t));
  const reg = register("owner", { guessLimit: L });
  const h = new Harness();
  h.apply(registerCmd(reg));
  for (let round = 0; round < 3; round++) {
    begins(h, "owner", L, 700 + round * 10);
    t.deepEqual(await y.evaluateAll(h, "owner"), ["released", "released", "released"], `round ${round}`);
    t.true(h.apply(confirmCmd(reg, h.index)).result.ok);
  }
  const installed = install(h);
  begins(installed, "owner", L, 800);
  t.deepEqual(await y.evaluateAll(installed, "owner"), ["released", "released", "released"], "the epoch opened by the last confirmation, read from an imported state");
});

// The residual (docs/threat-model.md): a record whose last confirmation was
// applied before states kept the confirmed attempt has the confirmation's
// index as its epoch; that confirmation replayed afterwards is stored with
// its attempt id: one more epoch, then no other.
test("a record confirmed before the upgrade gets no extra epoch from its replayed confirmation: the attempt it confirmed is behind the confirmation's index", async (t) => {
  const y = await node(t, tempDir(t));
  const reg = register("legacy", { guessLimit: L });
  const common = [encodeCommand(registerCmd(reg)), encodeCommand(beginCmd("legacy", blindedPoint(900)))];
  const store = new MemoryStore();
  const Y = new Harness(new VaultStateMachine({ clusterId: CLUSTER, store }));
  for (const e of common) Y.apply(e);
  const attempt = Y.index;
  const confirmation = encodeCommand(confirmCmd(reg, attempt));
  t.true(Y.apply(confirmation).result.ok);
  const s = StoreState.open(store, CLUSTER); // as the release before kept it: no confirmed attempt
  s.write(confirmationKey("legacy"), null);
  s.flush();
  const Yold = new Harness(new VaultStateMachine({ clusterId: CLUSTER, store }));
  Yold.index = Y.index;
  t.is(Yold.sm.getRecord("legacy")?.confirmedAttempt, 0);
  begins(Yold, "legacy", L, 910);
  t.deepEqual(await y.evaluateAll(Yold, "legacy"), ["released", "released", "released"], "the legacy epoch (its index)");
  const released: number[] = [];
  for (const fillers of [1, 4]) {
    const Y2 = install(replayedHistory(common, confirmation, fillers, Yold));
    t.is(Y2.sm.getRecord("legacy")?.confirmedAttempt, attempt);
    begins(Y2, "legacy", L, 920 + fillers * 10);
    released.push((await y.evaluateAll(Y2, "legacy")).filter((v) => v === "released").length);
  }
  t.deepEqual(released, [0, 0], "the replay's epoch (the confirmed attempt) is behind the legacy one (the confirmation's index): refused");
});

// Found in review (stop 32): the owner's confirmation of an earlier attempt
// a1, replayed in a fork at an index after the node's own confirmation of a
// later a2, installs (the rollback check compares the confirmation index,
// which is higher) and puts the record back in the epoch of a1, whose unused
// evaluations the ledger would release. The ledger refuses an epoch behind
// the newest it holds for the record.
test("a state that takes a record back to an older confirmation's epoch gets no evaluations from a node that evaluated in a later one", async (t) => {
  const y = await node(t, tempDir(t));
  const reg = register("ann", { guessLimit: L });
  const Y = new Harness();
  Y.apply(registerCmd(reg));
  Y.apply(beginCmd("ann", blindedPoint(1)));
  const a1 = Y.index;
  t.deepEqual(await y.evaluateAll(Y, "ann"), ["released"], "epoch 0: one evaluation, the right password");
  t.true(Y.apply(confirmCmd(reg, a1)).result.ok);
  Y.apply(beginCmd("ann", blindedPoint(2)));
  const a2 = Y.index;
  t.deepEqual(await y.evaluateAll(Y, "ann"), ["released"], "epoch a1");
  t.true(Y.apply(confirmCmd(reg, a2)).result.ok);
  Y.apply(beginCmd("ann", blindedPoint(3)));
  t.deepEqual(await y.evaluateAll(Y, "ann"), ["released"], "epoch a2");
  // The fork: the same registration and begin at a1, fillers past Y's index, then a1's confirmation replayed.
  const F = new Harness();
  F.apply(registerCmd(reg));
  F.apply(beginCmd("ann", blindedPoint(1)));
  t.is(F.index, a1);
  while (F.index <= Y.index + 1) F.apply(beginCmd("nobody"));
  t.true(F.apply(confirmCmd(reg, a1)).result.ok, "the owner's genuine confirmation of a1, committed again");
  begins(F, "ann", L, 40);
  t.is(F.sm.getRecord("ann")?.confirmedAttempt, a1, "the fork's record is back in the epoch of a1");
  t.deepEqual(await y.evaluateAll(F, "ann"), [9, 9, 9], "behind the newest epoch (a2): FAILED_PRECONDITION, nothing released");
  t.deepEqual(y.ledger.admitted({ digest: Y.sm.getRecord("ann")!.digest, confirmation: a1 }), [a2], "epoch a1 still holds only its one evaluation");
});
