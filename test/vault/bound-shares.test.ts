// Bound shares on apply (docs/threat-model.md, "Closed: a victim's shares
// copied into another record"): a new state takes bound shares (wrap blob
// v2) only; a state from before them takes v1 only (as its release did,
// so both releases agree during an upgrade) until an activation entry, then
// v2 only; a bound share made for another record is refused.
import test from "ava";
import { type Registration, randomScalar, wrapShare } from "../../proto/crypto/index.js";
import { VaultStateMachine, encodeCommand, vaultError } from "../../node/vault/index.js";
import { metaKey } from "../../node/vault/keys.js";
import { CLUSTER, Harness, NODES, issuerPolicy, expectError, expectOk, newRequestId, register, registerCmd } from "../../testkit/vault.js";

/** `reg` with every share re-wrapped as an unbound blob (v1), as a client before bound shares made it. */
function unbound(reg: Registration, user = reg.record.user): Registration {
  const shares = reg.record.shares.map((s, i) => ({ ...s, wrappedShare: wrapShare(NODES[i]!.agreementPublicKey, randomScalar()) }));
  return { ...reg, record: { ...reg.record, user, shares } };
}


const legacyState = () => new Harness(new VaultStateMachine({ clusterId: CLUSTER, boundSharesOnly: false }));
const bindShares = () => ({ kind: "bind-shares" as const, requestId: newRequestId() });

test("a new state takes bound shares only: a v1 registration is refused, INVALID_ARGUMENT, and nothing is stored", (t) => {
  const h = new Harness();
  t.true(h.sm.boundSharesOnly);
  t.not(h.sm.store.get(metaKey("bound")), undefined, "the flag is part of the replicated state (its digest)");
  expectError(t, h.result(registerCmd(unbound(register("alice")))), "INVALID_ARGUMENT", "INVALID_ARGUMENT");
  t.is(h.sm.getRecord("alice"), undefined);
  expectOk(t, h.result(registerCmd(register("alice"))), "register");
});

test("a legacy state takes unbound shares only: a bound registration is what the release before made of it, an undecodable command (no token check, the same outcome remembered)", (t) => {
  const h = new Harness(new VaultStateMachine({ clusterId: CLUSTER, boundSharesOnly: false, issuers: issuerPolicy() }));
  t.false(h.sm.boundSharesOnly);
  t.is(h.sm.store.get(metaKey("bound")), undefined);
  const bound = registerCmd(register("new-sdk"));
  const out = h.apply(bound);
  t.deepEqual(out.result, vaultError("INVALID_ARGUMENT", "wrapped share has unsupported version 2"), "the release before's decoder's words, not a token refusal");
  t.is(out.command, null, "as undecodable: audited as invalid");
  t.is(h.sm.getRecord("new-sdk"), undefined);
  const again = h.apply(bound);
  t.deepEqual(again.result, out.result, "remembered under its request id, as the release before did");
  const legacy = legacyState();
  expectOk(t, legacy.result(registerCmd(unbound(register("old-sdk")))), "register");
});

test("after the activation: bound shares only; the flag is in the digest, idempotent, kept by a snapshot; a copy is refused (BAD_SIGNATURE)", (t) => {
  const h = legacyState();
  expectOk(t, h.result(registerCmd(unbound(register("old")))), "register");
  const before = h.sm.digest();
  expectOk(t, h.result(bindShares()), "bind-shares");
  t.true(h.sm.boundSharesOnly);
  t.notDeepEqual(h.sm.digest(), before);
  expectOk(t, h.result(bindShares()), "bind-shares");
  expectError(t, h.result(registerCmd(unbound(register("new")))), "INVALID_ARGUMENT", "INVALID_ARGUMENT");
  const victim = register("victim");
  expectOk(t, h.result(registerCmd(victim)), "register");
  expectError(t, h.result(registerCmd({ ...victim, record: { ...victim.record, user: "mallory" } })), "PERMISSION_DENIED", "BAD_SIGNATURE");
  t.is(h.sm.getRecord("mallory"), undefined);
  t.not(h.sm.getRecord("old"), undefined, "records registered before stay, and evaluate as before");
  const restored = VaultStateMachine.restore({ clusterId: CLUSTER }, h.sm.snapshot());
  t.true(restored.boundSharesOnly);
  t.deepEqual(restored.digest(), h.sm.digest());
});

test("the same entries give the same state on every node: a v1 registration applied before the activation stays, one after is refused", (t) => {
  const entries = [
    encodeCommand(registerCmd(unbound(register("a")))),
    encodeCommand(bindShares()),
    encodeCommand(registerCmd(unbound(register("b")))),
    encodeCommand(registerCmd(register("c"))),
  ];
  const [x, y] = [legacyState(), legacyState()];
  for (const e of entries) {
    x.apply(e);
    y.apply(e);
  }
  t.deepEqual(x.sm.digest(), y.sm.digest());
  t.not(x.sm.getRecord("a"), undefined);
  t.is(x.sm.getRecord("b"), undefined);
  t.not(x.sm.getRecord("c"), undefined);
});
