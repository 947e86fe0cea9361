// AdminService.FindSharedShares on the node side (admin-service.ts): a scan
// of the node's store as it is now, one at a time, its answer bounded.
import test from "ava";
import { status } from "@grpc/grpc-js";
import { adminService } from "../../node/server/admin-service.js";
import type { AdminLoop } from "../../node/server/raft-view.js";
import { MemoryStore, type ReadableStore, VaultStateMachine } from "../../node/vault/index.js";
import { RegistrationCloner } from "../../testkit/clones.js";
import { CLUSTER, Harness, NODES, registerCmd } from "../../testkit/vault.js";
import { LmdbVaultStore } from "../../node/storage/index.js";
import { tempDir } from "../storage/helpers.js";

const quiet = { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined };

function service(store: () => ReadableStore | null) {
  return adminService({
    nodeId: 2, clusterId: CLUSTER, loop: () => ({}) as AdminLoop, peerReachable: () => true,
    leaderHint: () => ({ leaderId: 2, leaderAddress: "", self: 2 }), adminAddressOf: () => "", promoteMaxLag: 100,
    facts: () => Promise.reject(new Error("unused")), log: quiet, record: () => undefined, store,
  });
}

interface Found { nodeId: bigint; appliedIndex: bigint; records: bigint; truncated: boolean; shared: Array<{ nodeId: bigint; users: string[]; holders: bigint }> }
type Answer = { ok: true; value: Found } | { ok: false; code: number; details: string };

function call(h: unknown): Promise<Answer> {
  return new Promise((resolve) => {
    const c = { request: {}, cancelled: false, getDeadline: () => Infinity };
    (h as (c: object, cb: (err: { code: number; details: string } | null, value?: Found) => void) => void)(c,
      (err, value) => resolve(err === null ? { ok: true, value: value! } : { ok: false, code: err.code, details: err.details }));
  });
}

/** A state of a release before bound shares holding `copies` records of one template (copies of each other) and one record of its own. */
function legacyStore(copies: number): { store: MemoryStore; applied: number } {
  const store = new MemoryStore();
  const h = new Harness(new VaultStateMachine({ clusterId: CLUSTER, boundSharesOnly: false, store }));
  const clones = new RegistrationCloner(CLUSTER, NODES, 2);
  for (let i = 0; i < copies; i++) h.apply(registerCmd(clones.registration(`copy-${i}`, "unbound")));
  h.apply(registerCmd(new RegistrationCloner(CLUSTER, NODES, 2).registration("own", "unbound")));
  return { store, applied: h.index };
}

test("FindSharedShares answers every shared share with its holders, at the state's applied index", async (t) => {
  const { store, applied } = legacyStore(3);
  const r = await call(service(() => store).findSharedShares);
  if (!r.ok) return t.fail(r.details);
  t.like(r.value, { nodeId: 2n, appliedIndex: BigInt(applied), records: 4n, truncated: false });
  t.deepEqual(r.value.shared.map((s) => [s.nodeId, s.holders, s.users]), NODES.map((n) => [BigInt(n.id), 3n, ["copy-0", "copy-1", "copy-2"]]));
});

test("FindSharedShares: UNAVAILABLE before the store is open; one scan at a time (the second RESOURCE_EXHAUSTED); nothing shared, nothing listed", async (t) => {
  t.like(await call(service(() => null).findSharedShares), { ok: false, code: status.UNAVAILABLE });
  const { store } = legacyStore(600);
  const svc = service(() => store);
  const [first, second] = await Promise.all([call(svc.findSharedShares), call(svc.findSharedShares)]);
  t.true(first.ok);
  t.like(second, { ok: false, code: status.RESOURCE_EXHAUSTED });
  t.true((await call(svc.findSharedShares)).ok, "the slot is free again");
  const own = new MemoryStore();
  new Harness(new VaultStateMachine({ clusterId: CLUSTER, boundSharesOnly: false, store: own })).apply(registerCmd(new RegistrationCloner(CLUSTER, NODES, 2).registration("a", "unbound")));
  t.like(await call(service(() => own).findSharedShares), { ok: true, value: { records: 1n, shared: [] } });
});

test("FindSharedShares over the node's lmdb store, page after page (each page a scan of its own from the key after the last)", async (t) => {
  const store = await LmdbVaultStore.open(tempDir(t));
  t.teardown(() => store.close());
  const h = new Harness(new VaultStateMachine({ clusterId: CLUSTER, boundSharesOnly: false, store }));
  const clones = new RegistrationCloner(CLUSTER, NODES, 2);
  for (let i = 0; i < 700; i++) h.apply(registerCmd(new RegistrationCloner(CLUSTER, NODES, 2).registration(`own-${i}`, "unbound")));
  for (const user of ["aaa-copy", "zzz-copy"]) h.apply(registerCmd(clones.registration(user, "unbound")));
  await store.commit();
  const r = await call(service(() => store).findSharedShares);
  if (!r.ok) return t.fail(r.details);
  t.is(r.value.records, 702n);
  t.deepEqual(r.value.shared.map((s) => s.users), NODES.map(() => ["aaa-copy", "zzz-copy"]), "holders on the first and the last page");
});
