// The confirmed-attempt table ("c" || user → u64, node/vault/keys.ts): the
// attempt id a record's last confirmation confirmed, which is what the
// owner's reset key signed, so the same wherever in a log that confirmation
// is applied (confirmedAt, its log index, is not). The evaluation ledger's
// epoch (node/storage/evaluation-ledger.ts, docs/threat-model.md). Written
// by a confirmation, removed with the record's confirmation (an overwrite)
// or the record (a delete), covered by the digest, carried by snapshots; a
// state without the table (written before it) opens and imports.
import test from "ava";
import { CorruptSnapshotError, MemoryStore, VaultStateMachine, encodeCommand } from "../../node/vault/index.js";
import { ALL_KEYS, PREFIX, confirmationKey, tableRange, u64 } from "../../node/vault/keys.js";
import { COUNTERS, StoreState } from "../../node/vault/state.js";
import { LtHash } from "../../node/vault/digest.js";
import type { Registration } from "../../proto/crypto/index.js";
import {
  CLUSTER, Harness, beginCmd, blindedPoint, confirmCmd, deleteCmd, expectError, expectOk, hex, register, registerCmd,
} from "../../testkit/vault.js";
import { editSnapshot } from "../../testkit/vault-store.js";

/** A harness over `store` holding `reg`, with one attempt begun and confirmed: returns the attempt id. */
function confirmedOnce(reg: Registration, store = new MemoryStore()): { h: Harness; attempt: number } {
  const h = new Harness(new VaultStateMachine({ clusterId: CLUSTER, store }));
  if (!h.result(registerCmd(reg)).ok) throw new Error("setup: register refused");
  h.result(beginCmd(reg.record.user, blindedPoint(1)));
  const attempt = h.index;
  h.result(beginCmd(reg.record.user, blindedPoint(2))); // a later one, superseded by the confirmation
  if (!h.result(confirmCmd(reg, attempt)).ok) throw new Error("setup: confirm refused");
  return { h, attempt };
}

/** The u64 stored under "c" || user, or undefined. */
function stored(h: Harness, user: string): string | undefined {
  const v = h.sm.store.get(confirmationKey(user));
  return v === undefined ? undefined : hex(v);
}

/** The digest recomputed from the store's pairs (as test/vault/digest.test.ts). */
function fromScratch(store: MemoryStore): string {
  const sum = new LtHash();
  const counters = new Map<string, Uint8Array>();
  for (const [k, v] of store.scan(...ALL_KEYS)) {
    const name = Buffer.from(k).toString("latin1");
    if (COUNTERS.some((c) => name === `m${c}`)) counters.set(name.slice(1), v);
    else if (name !== "mdigest") sum.add(k, v);
  }
  return hex(sum.digest(Buffer.concat(COUNTERS.map((c) => counters.get(c) ?? new Uint8Array(0)))));
}

/** What a store written before the table holds for the same log: the "c" pairs removed (through the state: the digest follows). */
function withoutConfirmedAttempts(store: MemoryStore): void {
  const s = StoreState.open(store, CLUSTER);
  for (const [k] of [...store.scan(...tableRange(PREFIX.confirmation))]) s.write(k, null);
  s.flush();
}

test("a confirmation stores the attempt it confirmed (not its own index); begins, a lock and refused confirmations keep it", (t) => {
  const reg = register("ann", { guessLimit: 2 });
  const { h, attempt } = confirmedOnce(reg);
  const view = h.sm.getRecord("ann");
  t.is(view?.confirmedAttempt, attempt);
  t.is(view?.confirmedAt, h.index, "confirmedAt stays the confirmation's log index");
  t.not(attempt, h.index);
  t.is(stored(h, "ann"), hex(u64(attempt)));
  expectOk(t, h.result(beginCmd("ann", blindedPoint(3))), "begin");
  const unconfirmed = h.index;
  expectError(t, h.result(confirmCmd(reg, unconfirmed, { key: 12345n })), "PERMISSION_DENIED", "BAD_SIGNATURE");
  expectError(t, h.result(confirmCmd(reg, attempt)), "FAILED_PRECONDITION", "ATTEMPT_SUPERSEDED");
  t.is(h.sm.getRecord("ann")?.confirmedAttempt, attempt, "a begin and refused confirmations change nothing");
  h.result(beginCmd("ann", blindedPoint(4)));
  expectError(t, h.result(beginCmd("ann", blindedPoint(5))), "RESOURCE_EXHAUSTED", "GUESS_LIMIT_REACHED");
  t.true(h.sm.getRecord("ann")?.locked);
  t.is(h.sm.getRecord("ann")?.confirmedAttempt, attempt, "the lock keeps it");
  const other = register("bea");
  h.result(registerCmd(other));
  t.is(h.sm.getRecord("bea")?.confirmedAttempt, 0, "a record never confirmed has none");
  t.is(stored(h, "bea"), undefined);
});

test("a later confirmation replaces it; an overwrite and a delete remove it; a record registered again starts without one", (t) => {
  const reg = register("cy", { guessLimit: 5 });
  const { h, attempt } = confirmedOnce(reg);
  h.result(beginCmd("cy", blindedPoint(6)));
  const second = h.index;
  expectOk(t, h.result(confirmCmd(reg, second)), "confirm");
  t.true(second > attempt);
  t.is(h.sm.getRecord("cy")?.confirmedAttempt, second);
  const v2 = register("cy", { guessLimit: 5, version: 2, previous: reg });
  expectOk(t, h.result(registerCmd(v2)), "register");
  t.is(h.sm.getRecord("cy")?.confirmedAttempt, 0, "an overwrite is a fresh record");
  t.is(stored(h, "cy"), undefined);
  h.result(beginCmd("cy", blindedPoint(7)));
  const third = h.index;
  expectOk(t, h.result(confirmCmd(v2, third)), "confirm");
  t.is(h.sm.getRecord("cy")?.confirmedAttempt, third);
  expectOk(t, h.result(deleteCmd(v2)), "delete");
  t.is(stored(h, "cy"), undefined, "the delete removed it with the record");
  expectOk(t, h.result(registerCmd(register("cy"))), "register");
  t.is(h.sm.getRecord("cy")?.confirmedAttempt, 0);
  t.is(hex(h.sm.digest()), fromScratch(h.sm.store as MemoryStore), "the incremental digest followed every write and removal");
});

test("the same confirmation applied at another index in another history stores the same attempt (confirmedAt differs)", (t) => {
  const reg = register("dee");
  const [x, y] = [new Harness(), new Harness()];
  for (const h of [x, y]) { h.result(registerCmd(reg)); h.result(beginCmd("dee", blindedPoint(8))); }
  const attempt = x.index;
  const confirmation = confirmCmd(reg, attempt);
  expectOk(t, x.result(confirmation), "confirm");
  y.result(beginCmd("nobody"));
  expectOk(t, y.result(confirmation), "confirm");
  t.not(x.sm.getRecord("dee")?.confirmedAt, y.sm.getRecord("dee")?.confirmedAt);
  t.is(x.sm.getRecord("dee")?.confirmedAttempt, attempt);
  t.is(y.sm.getRecord("dee")?.confirmedAttempt, attempt);
});

test("the digest covers it: the same state with and without the pair differs; a node that applied the log and one that replayed it hold the same bytes", (t) => {
  const reg = register("eve");
  const a = confirmedOnce(reg);
  const log = [registerCmd(reg), beginCmd("eve", blindedPoint(1)), beginCmd("eve", blindedPoint(2)), confirmCmd(reg, a.attempt)].map((c) => encodeCommand(c));
  const [x, y] = [new Harness(), new Harness()];
  for (const e of log) { x.apply(e); y.apply(e); }
  t.is(x.sm.getRecord("eve")?.confirmedAttempt, a.attempt);
  t.is(hex(x.sm.snapshot()), hex(y.sm.snapshot()), "deterministic: every node stores the same pairs");
  const store = new MemoryStore();
  VaultStateMachine.restore({ clusterId: CLUSTER, store }, x.sm.snapshot());
  withoutConfirmedAttempts(store);
  const without = new VaultStateMachine({ clusterId: CLUSTER, store });
  t.not(hex(without.digest()), hex(x.sm.digest()), "the pair alone changes the digest");
  t.is(hex(without.digest()), fromScratch(store));
  t.is(fromScratch(x.sm.store as MemoryStore), hex(x.sm.digest()));
});

test("a snapshot carries it: export, import, the same view and digest; the importer refuses one that is not a u64; a forged one gives another digest (no honest node vouches)", (t) => {
  const reg = register("fay");
  const { h, attempt } = confirmedOnce(reg);
  const snap = h.sm.snapshot();
  const restored = VaultStateMachine.restore({ clusterId: CLUSTER }, snap);
  t.deepEqual(restored.getRecord("fay"), h.sm.getRecord("fay"));
  t.is(restored.getRecord("fay")?.confirmedAttempt, attempt);
  t.is(hex(restored.digest()), hex(h.sm.digest()));
  t.is(hex(restored.snapshot()), hex(snap));
  const long = editSnapshot(CLUSTER, snap, (s) => s.write(confirmationKey("fay"), Uint8Array.of(0, ...u64(attempt))));
  t.throws(() => VaultStateMachine.restore({ clusterId: CLUSTER }, long), { instanceOf: CorruptSnapshotError, message: /confirmed attempt of 9 bytes/ });
  for (const [what, edit] of [
    ["another attempt", (s: StoreState) => s.write(confirmationKey("fay"), u64(attempt + 1))],
    ["removed", (s: StoreState) => s.write(confirmationKey("fay"), null)],
    ["a user without a record", (s: StoreState) => s.write(confirmationKey("ghost"), u64(attempt))],
  ] as const) {
    const forged = VaultStateMachine.restore({ clusterId: CLUSTER }, editSnapshot(CLUSTER, snap, edit));
    t.not(hex(forged.digest()), hex(h.sm.digest()), what);
  }
});

test("a state written before the table (a confirmed record, no pair) opens, exports and imports; its record's view has confirmedAttempt 0 until its next confirmation", (t) => {
  const reg = register("gil", { guessLimit: 5 });
  const store = new MemoryStore();
  const { h } = confirmedOnce(reg, store);
  const confirmedAt = h.index;
  withoutConfirmedAttempts(store);
  const old = new Harness(new VaultStateMachine({ clusterId: CLUSTER, store }));
  old.index = h.index;
  t.is(old.sm.getRecord("gil")?.confirmedAttempt, 0);
  t.is(old.sm.getRecord("gil")?.confirmedAt, confirmedAt);
  const imported = VaultStateMachine.restore({ clusterId: CLUSTER }, old.sm.snapshot());
  t.is(hex(imported.digest()), hex(old.sm.digest()));
  t.is(imported.getRecord("gil")?.confirmedAttempt, 0);
  old.result(beginCmd("gil", blindedPoint(9)));
  const next = old.index;
  t.true(next > confirmedAt, "a later confirmation's attempt is above the old confirmation's index");
  expectOk(t, old.result(confirmCmd(reg, next)), "confirm");
  t.is(old.sm.getRecord("gil")?.confirmedAttempt, next);
  t.is(hex(old.sm.digest()), fromScratch(store));
  expectOk(t, old.result(deleteCmd(reg)), "delete");
  t.is(old.sm.store.get(confirmationKey("gil")), undefined);
});

test("a legacy record without the pair is deleted or overwritten cleanly (nothing to remove)", (t) => {
  const reg = register("hub", { guessLimit: 5 });
  const store = new MemoryStore();
  const { h } = confirmedOnce(reg, store);
  withoutConfirmedAttempts(store);
  const old = new Harness(new VaultStateMachine({ clusterId: CLUSTER, store }));
  old.index = h.index;
  expectOk(t, old.result(registerCmd(register("hub", { guessLimit: 5, version: 2, previous: reg }))), "register");
  t.is(old.sm.getRecord("hub")?.confirmedAttempt, 0);
  t.is(hex(old.sm.digest()), fromScratch(store));
});
