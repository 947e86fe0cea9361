// Record identity and supersession (issue 9, docs/vault.md §2): a begin bound
// to the digest of the record the client read is refused without counting
// when the committed record is another one (deleted and registered again at
// version 1); a confirmation supersedes every pending attempt and the
// refusal says so; begin entries written before (kind 2, no digest) still
// decode and apply as before; format-1 snapshots still restore.
import test from "ava";
import { encodeLegacySnapshot } from "../../testkit/vault-store.js";
import { sha256 } from "@noble/hashes/sha2.js";
import { type Registration, OprfWrongPasswordError, finishRecovery, startRecovery } from "../../proto/crypto/index.js";
import { VaultStateMachine, decodeCommand, encodeCommand } from "../../node/vault/index.js";
import { evaluateAsNode } from "../../testkit/protocol.js";
import {
  CLUSTER, Harness, NODES, beginCmd, blindedPoint, confirmCmd, deleteCmd, expectError, expectOk, hex, register, registerCmd, contentDigest,
} from "../../testkit/vault.js";

/** A harness holding `reg`. */
function holding(reg: Registration): Harness {
  const h = new Harness();
  if (!h.result(registerCmd(reg)).ok) throw new Error("setup: register refused");
  return h;
}

/** Node 1 and 2's evaluations of B under the record `reg` (what the nodes serve for a counted attempt). */
function evaluations(reg: Registration, blinded: Uint8Array) {
  return NODES.slice(0, 2).map((n) => ({ nodeId: n.id, point: evaluateAsNode(n, reg.record, blinded) }));
}

test("aliasing: a begin bound to the deleted record's digest is refused (RECORD_CHANGED) and counts nothing; re-read, the right password opens the new record", (t) => {
  const old = register("carol", { guessLimit: 5 });
  const h = holding(old);
  // The client reads the record, then it is deleted and registered again at version 1 (same password).
  const read = old.record;
  const { blinded, state } = startRecovery("pw-of-carol", read);
  expectOk(t, h.result(deleteCmd(old)), "delete");
  const key = new Uint8Array(32).fill(7);
  const fresh = register("carol", { guessLimit: 5, backupKey: key });
  expectOk(t, h.result(registerCmd(fresh)), "register");
  t.is(fresh.record.version, read.version, "the same version: a version check cannot tell them apart");
  const before = hex(contentDigest(h.sm));

  const refused = h.result({ ...beginCmd("carol", blinded), recordDigest: old.digest });
  expectError(t, refused, "FAILED_PRECONDITION", "RECORD_CHANGED");
  t.regex(refused.ok ? "" : refused.message, /changed since it was read.*no attempt was counted/);
  t.is(refused.ok ? -1 : refused.attemptsRemaining, 5);
  t.is(h.sm.getRecord("carol")?.attempts, 0);
  t.deepEqual(h.sm.getRecord("carol")?.pending, []);
  t.is(hex(contentDigest(h.sm)), before, "nothing but the request table changed");

  // The SDK re-reads and begins again, bound to the new digest: the key opens.
  const again = startRecovery("pw-of-carol", fresh.record);
  const b = expectOk(t, h.result({ ...beginCmd("carol", again.blinded), recordDigest: fresh.digest }), "begin");
  t.is(b.attemptsRemaining, 4);
  const out = finishRecovery(again.state, fresh.record, evaluations(fresh, again.blinded));
  t.is(hex(out.backupKey), hex(key));

  // Without the binding (the behaviour before): the stale read's attempt is counted and the right password fails.
  const h2 = holding(old);
  expectOk(t, h2.result(deleteCmd(old)), "delete");
  expectOk(t, h2.result(registerCmd(fresh)), "register");
  const counted = expectOk(t, h2.result(beginCmd("carol", blinded)), "begin");
  t.is(counted.attemptsRemaining, 4);
  t.throws(() => finishRecovery(state, read, evaluations(fresh, blinded)), { instanceOf: OprfWrongPasswordError });
});

test("a bound begin with the committed digest counts as before; a locked record with another digest answers RECORD_CHANGED first", (t) => {
  const reg = register("dan", { guessLimit: 1 });
  const h = holding(reg);
  const b = expectOk(t, h.result({ ...beginCmd("dan"), recordDigest: reg.digest }), "begin");
  t.is(b.attemptsRemaining, 0);
  expectError(t, h.result({ ...beginCmd("dan"), recordDigest: reg.digest }), "RESOURCE_EXHAUSTED", "GUESS_LIMIT_REACHED");
  expectError(t, h.result({ ...beginCmd("dan"), recordDigest: reg.digest }), "FAILED_PRECONDITION", "RECORD_LOCKED");
  expectError(t, h.result({ ...beginCmd("dan"), recordDigest: sha256(Uint8Array.of(1)) }), "FAILED_PRECONDITION", "RECORD_CHANGED");
  expectError(t, h.result({ ...beginCmd("nobody"), recordDigest: reg.digest }), "NOT_FOUND", "RECORD_NOT_FOUND");
});

test("an overwrite changes the digest: a begin bound to the previous version is refused without counting", (t) => {
  const v1 = register("erin", { guessLimit: 4 });
  const h = holding(v1);
  const v2 = register("erin", { guessLimit: 4, version: 2, previous: v1 });
  expectOk(t, h.result(registerCmd(v2)), "register");
  expectError(t, h.result({ ...beginCmd("erin"), recordDigest: v1.digest }), "FAILED_PRECONDITION", "RECORD_CHANGED");
  t.is(h.sm.getRecord("erin")?.attempts, 0);
});

test("begin entries of kind 2 (no digest, as logged before) decode unchanged and apply as before", (t) => {
  const reg = register("fay", { guessLimit: 3 });
  const old = encodeCommand(beginCmd("fay", blindedPoint(3)));
  t.is(old[5], 2, "kind code 2");
  t.is(old.length, 4 + 1 + 1 + 16 + 2 + 3 + 33, "the pre-digest layout, byte for byte");
  t.is((decodeCommand(old) as { recordDigest?: Uint8Array }).recordDigest, undefined);
  const bound = encodeCommand({ ...beginCmd("fay", blindedPoint(3)), recordDigest: reg.digest });
  t.is(bound[5], 6, "a bound begin has its own kind code");
  t.is(bound.length, old.length + 32);
  t.is(hex((decodeCommand(bound) as { recordDigest?: Uint8Array }).recordDigest ?? new Uint8Array()), hex(reg.digest));
  const h = holding(reg);
  const b = expectOk(t, h.result(old), "begin");
  t.is(b.attemptsRemaining, 2);
  t.truthy(h.sm.pendingAttempt("fay", b.attemptId));
  t.throws(() => encodeCommand({ ...beginCmd("fay"), recordDigest: new Uint8Array(31) }), { message: /record digest/ });
});

test("supersession: a confirmation settles every pending attempt; confirming or asking about an earlier one answers ATTEMPT_SUPERSEDED, an id never begun ATTEMPT_NOT_FOUND", (t) => {
  const reg = register("gus", { guessLimit: 5 });
  const h = holding(reg);
  const a1 = expectOk(t, h.result(beginCmd("gus")), "begin").attemptId;
  const a2 = expectOk(t, h.result(beginCmd("gus")), "begin").attemptId;
  t.is(h.sm.whyNotPending("gus", a1), undefined);
  const c = expectOk(t, h.result(confirmCmd(reg, a2)), "confirm");
  t.is(c.attemptsRemaining, 5);
  const confirmedAt = h.index;
  t.is(h.sm.getRecord("gus")?.confirmedAt, confirmedAt);
  const late = h.result(confirmCmd(reg, a1));
  expectError(t, late, "FAILED_PRECONDITION", "ATTEMPT_SUPERSEDED");
  t.is(late.ok ? "" : late.message, `attempt ${a1} was superseded by a later confirmation of this record ("gus", confirmed at ${confirmedAt})`);
  t.is(late.ok ? -1 : late.attemptsRemaining, 5);
  t.is(h.sm.whyNotPending("gus", a1)?.reason, "ATTEMPT_SUPERSEDED");
  t.is(h.sm.whyNotPending("gus", a2)?.reason, "ATTEMPT_SUPERSEDED");
  t.is(h.sm.whyNotPending("gus", confirmedAt + 50)?.reason, "ATTEMPT_NOT_FOUND");
  expectError(t, h.result(confirmCmd(reg, confirmedAt + 50)), "FAILED_PRECONDITION", "ATTEMPT_NOT_FOUND");
  t.is(h.sm.getRecord("gus")?.attempts, 0, "refusals counted nothing");
  // A later attempt is pending again; an overwrite starts the new version with no confirmation.
  const a3 = expectOk(t, h.result(beginCmd("gus")), "begin").attemptId;
  t.is(h.sm.whyNotPending("gus", a3), undefined);
  expectOk(t, h.result(registerCmd(register("gus", { guessLimit: 5, version: 2, previous: reg }))), "register");
  t.is(h.sm.getRecord("gus")?.confirmedAt, 0);
  t.is(h.sm.whyNotPending("gus", a1)?.reason, "ATTEMPT_NOT_FOUND");
});

test("snapshots carry the confirmation index: a restored node and a replaying node have equal state digests", (t) => {
  const reg = register("hal", { guessLimit: 5 });
  const h = holding(reg);
  const a = expectOk(t, h.result(beginCmd("hal")), "begin").attemptId;
  expectOk(t, h.result(confirmCmd(reg, a)), "confirm");
  const restored = VaultStateMachine.restore({ clusterId: CLUSTER }, h.sm.snapshot());
  t.is(restored.getRecord("hal")?.confirmedAt, h.index);
  t.is(hex(restored.digest()), hex(h.sm.digest()));
  t.is(restored.whyNotPending("hal", a)?.reason, "ATTEMPT_SUPERSEDED");
});

test("a format-1 snapshot (records without the confirmation index) still restores, with no confirmation known", (t) => {
  const reg = register("ida", { guessLimit: 5 });
  const h = holding(reg);
  const a = expectOk(t, h.result(beginCmd("ida")), "begin").attemptId;
  const v3 = encodeLegacySnapshot(h.sm);
  // Format 1 is format 3 without the (empty) CA after the request-id capacity
  // and without the u64 that follows each record's digest.
  const caAt = 4 + 1 + 2 + CLUSTER.length + 8 + 4;
  const at = Buffer.from(v3).indexOf(Buffer.from(reg.digest)) + reg.digest.length;
  const body = Uint8Array.of(...v3.subarray(0, caAt), ...v3.subarray(caAt + 2, at), ...v3.subarray(at + 8, v3.length - 32));
  body[4] = 1;
  const v1 = Uint8Array.of(...body, ...sha256(body));
  const restored = VaultStateMachine.restore({ clusterId: CLUSTER }, v1);
  t.is(restored.getRecord("ida")?.confirmedAt, 0);
  t.is(restored.getRecord("ida")?.attempts, 1);
  t.truthy(restored.pendingAttempt("ida", a));
  t.is(hex(contentDigest(restored)), hex(contentDigest(h.sm)), "converted into the same records");
  t.is(restored.rememberedRequests, h.sm.rememberedRequests);
});
