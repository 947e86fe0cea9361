// findSharedShares (node/vault/shared-shares.ts): the shares a state holds
// in the records of two or more users, which only a cluster bootstrapped
// before bound shares can hold (copies registered before its activation).
import test from "ava";
import { MemoryStore, SHARED_SHARES_RECORDS_PER_STEP, SHARED_SHARE_USERS_LISTED, VaultStateMachine, findSharedShares } from "../../node/vault/index.js";
import { RegistrationCloner } from "../../testkit/clones.js";
import { CLUSTER, Harness, NODES, expectOk, registerCmd, runToEnd } from "../../testkit/vault.js";

const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");

function legacyState(): { h: Harness; store: MemoryStore } {
  const store = new MemoryStore();
  return { h: new Harness(new VaultStateMachine({ clusterId: CLUSTER, boundSharesOnly: false, store })), store };
}

test("copies of one user's shares under other users are reported, each share with its holders; records of their own shares are not", (t) => {
  const { h, store } = legacyState();
  const clones = new RegistrationCloner(CLUSTER, NODES, 2);
  for (const user of ["victim", "mallory", "trent"]) expectOk(t, h.result(registerCmd(clones.registration(user, "unbound"))), "register");
  // Records of their own shares (each cloner splits a secret of its own).
  for (const user of ["alice", "bob"]) expectOk(t, h.result(registerCmd(new RegistrationCloner(CLUSTER, NODES, 2).registration(user, "unbound"))), "register");
  const report = runToEnd(findSharedShares(store));
  t.is(report.records, 5);
  t.is(report.shared.length, NODES.length, "every share of the template, once");
  const template = clones.registration("x", "unbound").record.shares;
  for (const s of report.shared) {
    t.deepEqual(s.users, ["mallory", "trent", "victim"], "the holders in key order");
    t.is(s.holders, 3);
    t.is(hex(s.publicShare), hex(template.find((x) => x.nodeId === s.nodeId)!.publicShare));
  }
});

test("a copy of some shares only (the threshold's worth) is reported for those shares", (t) => {
  const { h, store } = legacyState();
  const victim = new RegistrationCloner(CLUSTER, NODES, 2).registration("victim", "unbound");
  const own = new RegistrationCloner(CLUSTER, NODES, 2).registration("mallory", "unbound");
  // Mallory's record: the victim's shares of nodes 1 and 2, a share of her own for node 3.
  const mixed = { ...own, record: { ...own.record, shares: own.record.shares.map((s) => (s.nodeId === 3 ? s : victim.record.shares.find((v) => v.nodeId === s.nodeId)!)) } };
  expectOk(t, h.result(registerCmd(victim)), "register");
  expectOk(t, h.result(registerCmd(mixed)), "register");
  const report = runToEnd(findSharedShares(store));
  t.deepEqual(report.shared.map((s) => [s.nodeId, s.users]), [[1, ["mallory", "victim"]], [2, ["mallory", "victim"]]]);
});

test("a state of its own shares only reports nothing; a large group lists its first users and counts them all; the scan yields as it goes", (t) => {
  const { h, store } = legacyState();
  for (let i = 0; i < 5; i++) expectOk(t, h.result(registerCmd(new RegistrationCloner(CLUSTER, NODES, 2).registration(`own-${i}`, "unbound"))), "register");
  t.deepEqual(runToEnd(findSharedShares(store)).shared, []);

  const clones = new RegistrationCloner(CLUSTER, NODES, 2);
  const n = SHARED_SHARE_USERS_LISTED + SHARED_SHARES_RECORDS_PER_STEP;
  for (let i = 0; i < n; i++) h.apply(registerCmd(clones.registration(`c-${String(i).padStart(4, "0")}`, "unbound")));
  const scan = findSharedShares(store);
  let yields = 0;
  let r = scan.next();
  for (; r.done !== true; r = scan.next()) yields++;
  t.true(yields >= 2 * Math.floor((n + 5) / SHARED_SHARES_RECORDS_PER_STEP), `yields ${yields}`);
  t.is(r.value.records, n + 5);
  t.is(r.value.shared.length, NODES.length);
  for (const s of r.value.shared) {
    t.is(s.holders, n);
    t.is(s.users.length, SHARED_SHARE_USERS_LISTED);
    t.is(s.users[0], "c-0000");
  }
});
