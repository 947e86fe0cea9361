import test from "ava";
import { type Registration, signConfirm } from "../../proto/crypto/index.js";
import { VaultInvariantError, VaultStateMachine, encodeCommand } from "../../node/vault/index.js";
import {
  CLUSTER,
  Harness,
  beginCmd,
  blindedPoint,
  confirmCmd,
  deleteCmd,
  expectError,
  expectOk,
  hex,
  newRequestId,
  register,
  registerCmd,
  contentDigest,
} from "../../testkit/vault.js";

const alice = register("alice", { guessLimit: 3 });

/** A harness holding alice's record (version 1). */
function withAlice(reg: Registration = alice): Harness {
  const h = new Harness();
  const r = h.result(registerCmd(reg));
  if (!r.ok) throw new Error(`setup register failed: ${r.message}`);
  return h;
}

function attemptsOf(h: Harness, user = "alice"): number {
  return h.sm.getRecord(user)?.attempts ?? -1;
}

test("register stores the record with a full counter and returns its digest", (t) => {
  const h = new Harness();
  const r = expectOk(t, h.result(registerCmd(alice)), "register");
  t.is(r.version, 1);
  t.is(r.attemptsRemaining, 3);
  t.is(hex(r.recordDigest), hex(alice.digest));
  const view = h.sm.getRecord("alice");
  t.truthy(view);
  t.is(hex(view?.digest ?? new Uint8Array()), hex(alice.digest));
  t.false(view?.locked);
  t.is(view?.record.shares.length, 3);
  t.is(h.sm.appliedIndex, 2);
});

test("register → begin → confirm resets the counter and clears pending attempts", (t) => {
  const h = withAlice();
  const b1 = expectOk(t, h.result(beginCmd("alice", blindedPoint(1))), "begin");
  t.is(b1.attemptId, h.index);
  t.is(b1.attemptsRemaining, 2);
  t.is(b1.version, 1);
  const b2 = expectOk(t, h.result(beginCmd("alice", blindedPoint(2))), "begin");
  t.is(b2.attemptsRemaining, 1);
  t.is(hex(h.sm.pendingAttempt("alice", b1.attemptId)?.blinded ?? new Uint8Array()), hex(blindedPoint(1)));
  const c = expectOk(t, h.result(confirmCmd(alice, b2.attemptId)), "confirm");
  t.is(c.attemptsRemaining, 3);
  t.is(attemptsOf(h), 0);
  t.deepEqual(h.sm.getRecord("alice")?.pending, []);
  t.is(h.sm.pendingAttempt("alice", b1.attemptId), undefined);
  t.is(h.sm.pendingAttempt("alice", b2.attemptId), undefined);
});

test("wrong attempts count down; at the limit the next begin wipes the shares and locks for ever", (t) => {
  const h = withAlice();
  const ids: number[] = [];
  t.deepEqual(h.sm.stats(), { records: 1, locked: 0 });
  for (const left of [2, 1, 0]) {
    const b = expectOk(t, h.result(beginCmd("alice")), "begin");
    t.is(b.attemptsRemaining, left);
    ids.push(b.attemptId);
  }
  // The last attempt can still be evaluated: the limit is reached, not passed.
  t.truthy(h.sm.pendingAttempt("alice", ids[2] ?? 0));
  const over = h.result(beginCmd("alice"));
  expectError(t, over, "RESOURCE_EXHAUSTED", "GUESS_LIMIT_REACHED");
  t.is(over.ok ? -1 : over.attemptsRemaining, 0);
  const view = h.sm.getRecord("alice");
  t.true(view?.locked);
  t.deepEqual(h.sm.stats(), { records: 1, locked: 1 });
  t.deepEqual(view?.record.shares, []);
  t.deepEqual(view?.pending, []);
  t.is(view?.attemptsRemaining, 0);
  for (const id of ids) t.is(h.sm.pendingAttempt("alice", id), undefined);
  t.false(hex(h.sm.snapshot()).includes(hex(alice.record.shares[0]?.wrappedShare ?? new Uint8Array([1]))), "wrapped shares are gone from the snapshot");

  // Nothing brings it back: neither a begin nor a validly signed confirm of an old attempt.
  const locked = hex(contentDigest(h.sm));
  const again = h.result(beginCmd("alice"));
  expectError(t, again, "FAILED_PRECONDITION", "RECORD_LOCKED");
  t.is(again.ok ? -1 : again.attemptsRemaining, 0);
  for (const id of ids) expectError(t, h.result(confirmCmd(alice, id)), "FAILED_PRECONDITION", "ATTEMPT_NOT_FOUND");
  t.is(hex(contentDigest(h.sm)), locked);
  t.true(h.sm.getRecord("alice")?.locked);
});

test("a node serves an attempt only once its own applied state holds it", (t) => {
  const leader = withAlice();
  const follower = new Harness(VaultStateMachine.restore({ clusterId: CLUSTER }, leader.sm.snapshot()));
  follower.index = leader.index;
  const cmd = beginCmd("alice", blindedPoint(9));
  const b = expectOk(t, leader.result(cmd), "begin");
  t.truthy(leader.sm.pendingAttempt("alice", b.attemptId));
  t.is(follower.sm.pendingAttempt("alice", b.attemptId), undefined, "not applied here yet");
  t.is(leader.sm.pendingAttempt("bob", b.attemptId), undefined);
  t.is(leader.sm.pendingAttempt("alice", b.attemptId - 1), undefined);
  follower.result(cmd);
  t.is(hex(follower.sm.pendingAttempt("alice", b.attemptId)?.blinded ?? new Uint8Array()), hex(blindedPoint(9)));
  t.is(follower.sm.pendingAttempt("alice", b.attemptId)?.version, 1);
});

test("a confirmation is refused and changes nothing: bad signature, unknown attempt, other version, unknown user", (t) => {
  const h = withAlice();
  const b = expectOk(t, h.result(beginCmd("alice")), "begin");
  const before = hex(contentDigest(h.sm));
  const other = register("alice", { guessLimit: 3 }); // same user, another reset key
  expectError(t, h.result(confirmCmd(alice, b.attemptId, { key: other.resetPrivateKey })), "PERMISSION_DENIED", "BAD_SIGNATURE");
  const sigForOther = confirmCmd(alice, b.attemptId + 1); // valid signature, attempt id not pending
  expectError(t, h.result({ ...sigForOther, attemptId: b.attemptId }), "PERMISSION_DENIED", "BAD_SIGNATURE");
  expectError(t, h.result(confirmCmd(alice, b.attemptId + 100)), "FAILED_PRECONDITION", "ATTEMPT_NOT_FOUND");
  expectError(t, h.result(confirmCmd(alice, b.attemptId, { version: 2 })), "FAILED_PRECONDITION", "VERSION_MISMATCH");
  expectError(t, h.result({ ...confirmCmd(alice, b.attemptId), user: "bob" }), "NOT_FOUND", "RECORD_NOT_FOUND");
  t.is(hex(contentDigest(h.sm)), before);
  t.is(attemptsOf(h), 1);
  t.truthy(h.sm.pendingAttempt("alice", b.attemptId));
});

test("a refused confirmation carries the attempts remaining", (t) => {
  const h = withAlice();
  const b = expectOk(t, h.result(beginCmd("alice")), "begin");
  const r = h.result(confirmCmd(alice, b.attemptId, { key: 12345n }));
  t.false(r.ok);
  t.is(r.ok ? -1 : r.attemptsRemaining, 2);
});

test("a replayed request id counts once and returns the same attempt id", (t) => {
  const h = withAlice();
  const cmd = beginCmd("alice");
  const first = h.apply(cmd);
  const second = h.apply(cmd);
  t.deepEqual(second.result, first.result);
  t.is(hex(second.requestId ?? new Uint8Array()), hex(cmd.requestId));
  t.is(attemptsOf(h), 1);
  t.is(h.sm.getRecord("alice")?.pending.length, 1);
  // A retried confirmation answers the first outcome after the counter moved on.
  const b = expectOk(t, first.result, "begin");
  const conf = confirmCmd(alice, b.attemptId);
  expectOk(t, h.result(conf), "confirm");
  expectOk(t, h.result(beginCmd("alice")), "begin");
  const retry = expectOk(t, h.result(conf), "confirm");
  t.is(retry.attemptsRemaining, 3, "the first outcome");
  t.is(attemptsOf(h), 1, "the retry did not reset the new attempt");
});

test("a refused command's outcome is remembered too", (t) => {
  const h = new Harness();
  const cmd = beginCmd("alice");
  expectError(t, h.result(cmd), "NOT_FOUND", "RECORD_NOT_FOUND");
  h.result(registerCmd(alice));
  expectError(t, h.result(cmd), "NOT_FOUND", "RECORD_NOT_FOUND");
  t.is(attemptsOf(h), 0);
});

test("a request id reused for a different request is refused and changes nothing", (t) => {
  const h = withAlice();
  const id = newRequestId();
  expectOk(t, h.result(beginCmd("alice", blindedPoint(1), id)), "begin");
  const before = hex(contentDigest(h.sm));
  const r = h.result(beginCmd("alice", blindedPoint(2), id));
  expectError(t, r, "INVALID_ARGUMENT", "REQUEST_ID_REUSED");
  t.is(hex(contentDigest(h.sm)), before);
  t.is(attemptsOf(h), 1);
});

test("the request-id table is a bounded FIFO: an evicted retry is applied again", (t) => {
  const h = new Harness(new VaultStateMachine({ clusterId: CLUSTER, requestIdCapacity: 3 }));
  h.result(registerCmd(register("alice", { guessLimit: 10 })));
  const old = beginCmd("alice");
  expectOk(t, h.result(old), "begin");
  for (let i = 0; i < 3; i++) expectOk(t, h.result(beginCmd("alice")), "begin");
  t.is(h.sm.rememberedRequests, 3);
  t.is(attemptsOf(h), 4);
  const retry = expectOk(t, h.result(old), "begin");
  t.is(retry.attemptId, h.index, "applied as a new attempt");
  t.is(attemptsOf(h), 5);
});

test("overwrite with the current owner's signature replaces the record and resets the counter", (t) => {
  const h = withAlice();
  h.result(beginCmd("alice"));
  const v2 = register("alice", { version: 2, previous: alice, guessLimit: 5 });
  const r = expectOk(t, h.result(registerCmd(v2)), "register");
  t.is(r.version, 2);
  t.is(r.attemptsRemaining, 5);
  const view = h.sm.getRecord("alice");
  t.is(view?.attempts, 0);
  t.is(hex(view?.digest ?? new Uint8Array()), hex(v2.digest));
  t.deepEqual(view?.pending, []);
});

test("overwrite is refused with a bad signature, a skipped version, or no record; and a new record cannot replace one", (t) => {
  const h = withAlice();
  h.result(beginCmd("alice"));
  const before = hex(contentDigest(h.sm));
  const stranger = register("alice", { version: 2, previous: register("alice"), guessLimit: 5 });
  expectError(t, h.result(registerCmd(stranger)), "PERMISSION_DENIED", "BAD_SIGNATURE");
  const v3 = register("alice", { version: 3, previous: alice });
  expectError(t, h.result(registerCmd(v3)), "FAILED_PRECONDITION", "VERSION_MISMATCH");
  expectError(t, h.result(registerCmd(register("alice"))), "ALREADY_EXISTS", "RECORD_EXISTS");
  t.is(hex(contentDigest(h.sm)), before);
  t.is(attemptsOf(h), 1);
  const bob2 = register("bob", { version: 2, previous: register("bob") });
  expectError(t, h.result(registerCmd(bob2)), "NOT_FOUND", "RECORD_NOT_FOUND");
});

test("an owner may overwrite a locked record; the old shares stay gone", (t) => {
  const carol = register("carol", { guessLimit: 1 });
  const h2 = withAlice(carol);
  h2.result(beginCmd("carol"));
  expectError(t, h2.result(beginCmd("carol")), "RESOURCE_EXHAUSTED", "GUESS_LIMIT_REACHED");
  const v2 = register("carol", { version: 2, previous: carol, guessLimit: 4 });
  expectOk(t, h2.result(registerCmd(v2)), "register");
  const view = h2.sm.getRecord("carol");
  t.false(view?.locked);
  t.is(view?.attemptsRemaining, 4);
  t.is(hex(view?.digest ?? new Uint8Array()), hex(v2.digest));
});

test("delete needs the reset key's signature over the current version", (t) => {
  const h = withAlice();
  const before = hex(contentDigest(h.sm));
  expectError(t, h.result(deleteCmd(alice, { key: 999n })), "PERMISSION_DENIED", "BAD_SIGNATURE");
  expectError(t, h.result(deleteCmd(alice, { version: 2 })), "FAILED_PRECONDITION", "VERSION_MISMATCH");
  t.is(hex(contentDigest(h.sm)), before);
  expectOk(t, h.result(deleteCmd(alice)), "delete");
  t.is(h.sm.getRecord("alice"), undefined);
  expectError(t, h.result(deleteCmd(alice)), "NOT_FOUND", "RECORD_NOT_FOUND");
  expectError(t, h.result(beginCmd("alice")), "NOT_FOUND", "RECORD_NOT_FOUND");
  // The user may register again from scratch.
  expectOk(t, h.result(registerCmd(register("alice"))), "register");
});

test("attempt ids are log indexes: a confirmation signed for one attempt does not confirm another", (t) => {
  const h = withAlice();
  const b1 = expectOk(t, h.result(beginCmd("alice")), "begin");
  const b2 = expectOk(t, h.result(beginCmd("alice")), "begin");
  t.not(b1.attemptId, b2.attemptId);
  const sig = signConfirm(alice.resetPrivateKey, { clusterId: "another-cluster", user: "alice", version: 1 }, b1.attemptId);
  const cmd = confirmCmd(alice, b1.attemptId);
  expectError(t, h.result({ ...cmd, requestId: newRequestId(), signature: sig }), "PERMISSION_DENIED", "BAD_SIGNATURE");
  expectOk(t, h.result(confirmCmd(alice, b1.attemptId)), "confirm");
});

test("an empty payload only advances the applied index", (t) => {
  const h = withAlice();
  const before = hex(contentDigest(h.sm));
  const out = h.apply(new Uint8Array(0));
  t.is(out.requestId, null);
  t.is(h.sm.appliedIndex, h.index);
  t.is(hex(contentDigest(h.sm)), before);
  t.is(h.sm.rememberedRequests, 1);
});

test("skip advances the index; applying an index twice or backwards throws loudly", (t) => {
  const sm = new VaultStateMachine({ clusterId: CLUSTER });
  sm.skip(1);
  t.is(sm.appliedIndex, 1);
  sm.apply(3, new Uint8Array(0), [1]);
  t.throws(() => sm.apply(3, encodeCommand(beginCmd("alice")), [1]), { instanceOf: VaultInvariantError });
  t.throws(() => sm.skip(2), { instanceOf: VaultInvariantError });
  t.throws(() => sm.apply(Number.NaN, new Uint8Array(0), [1]), { instanceOf: VaultInvariantError });
  t.is(sm.appliedIndex, 3);
});

test("the cluster id is validated", (t) => {
  t.throws(() => new VaultStateMachine({ clusterId: "" }));
  t.throws(() => new VaultStateMachine({ clusterId: CLUSTER, requestIdCapacity: 0 }), { instanceOf: VaultInvariantError });
});

/** stats() recomputed by a full scan of the users a test touched. */
function scanStats(sm: VaultStateMachine, users: readonly string[]): { records: number; locked: number } {
  const views = users.map((u) => sm.getRecord(u)).filter((v) => v !== undefined);
  return { records: views.length, locked: views.filter((v) => v.locked).length };
}

/** mulberry32: a seeded PRNG, so a failing sequence can be replayed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let x = Math.imul(a ^ (a >>> 15), 1 | a);
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
    return ((x ^ (x >>> 14)) >>> 0) / 2 ** 32;
  };
}

test("stats() counters equal a full scan after random command sequences and after a snapshot restore", (t) => {
  const users = ["u0", "u1", "u2", "u3"];
  const first = new Map(users.map((u) => [u, register(u, { guessLimit: 2 })]));
  for (const seed of [1, 2, 3]) {
    const rand = prng(seed);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)] as T;
    const h = new Harness();
    const current = new Map(first);
    let locked = 0;
    for (let step = 0; step < 120; step++) {
      const u = pick(users);
      const reg = current.get(u) as Registration;
      const view = h.sm.getRecord(u);
      const op = pick(["register", "begin", "begin", "begin", "confirm", "delete", "overwrite"] as const);
      if (op === "register") h.result(registerCmd(first.get(u) as Registration));
      if (op === "begin") h.result(beginCmd(u, blindedPoint(step)));
      if (op === "confirm" && view !== undefined && view.pending.length > 0) h.result(confirmCmd(reg, pick(view.pending).attemptId));
      if (op === "delete" && h.result(deleteCmd(reg)).ok) current.set(u, first.get(u) as Registration);
      if (op === "overwrite" && view !== undefined) {
        const next = register(u, { guessLimit: 2, version: view.record.version + 1, previous: reg });
        if (h.result(registerCmd(next)).ok) current.set(u, next);
      }
      t.deepEqual(h.sm.stats(), scanStats(h.sm, users), `seed ${seed} step ${step} (${op} ${u})`);
      locked = Math.max(locked, h.sm.stats().locked);
    }
    t.true(locked > 0, `seed ${seed} locked some record (the sequence exercises locking)`);
    const r = VaultStateMachine.restore({ clusterId: CLUSTER }, h.sm.snapshot());
    t.deepEqual(r.stats(), scanStats(r, users), `seed ${seed}: restored`);
    t.deepEqual(r.stats(), h.sm.stats());
  }
});

test("a record read after a begin or a confirmation (kept in the cache) equals the record read back from the store's bytes", (t) => {
  const users = ["u0", "u1", "u2"];
  const regs = new Map(users.map((u) => [u, register(u, { guessLimit: 4 })]));
  const rand = prng(7);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)] as T;
  const h = new Harness();
  for (const u of users) h.result(registerCmd(regs.get(u) as Registration));
  let [begins, confirms] = [0, 0];
  for (let step = 0; step < 80; step++) {
    const u = pick(users);
    const view = h.sm.getRecord(u);
    if (rand() < 0.7 || view === undefined || view.pending.length === 0) {
      const entry = encodeCommand(beginCmd(u, blindedPoint(100 + step)));
      if (h.result(entry).ok) begins++;
      entry.fill(0); // the entry's buffer is reused: the record must not hold a view of it
    } else if (h.result(confirmCmd(regs.get(u) as Registration, pick(view.pending).attemptId)).ok) {
      confirms++;
    }
    const fromBytes = new VaultStateMachine({ clusterId: CLUSTER, store: h.sm.store });
    for (const v of users) t.deepEqual(h.sm.getRecord(v), fromBytes.getRecord(v), `step ${step}, ${v}`);
  }
  t.true(begins > 20 && confirms > 2, `${begins} begins and ${confirms} confirmations applied`);
});
