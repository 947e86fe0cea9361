// Unit tests of the admin port's small pieces: the request-id table, the
// caller check, the health verdict, the digest ring, and a joining node's
// phase.
import test from "ava";
import { status } from "@grpc/grpc-js";
import { AdminRequestTable } from "../../node/server/admin-requests.js";
import { admitsAdminCaller } from "../../node/server/admin-auth.js";
import { RpcFailure } from "../../node/server/errors.js";
import { notServingReason } from "../../node/server/health.js";
import { joinPhase } from "../../node/server/join.js";
import { ProposalError } from "../../node/server/raft-loop.js";
import { StateDigestRing } from "../../node/server/state-digests.js";

const rid = (n: number) => new Uint8Array(16).fill(n);

test("request table: a retry answers the first outcome, success or refusal, and runs nothing again", async (t) => {
  const table = new AdminRequestTable();
  let runs = 0;
  const ok = () => { runs++; return Promise.resolve(runs); };
  t.is(await table.run(rid(1), "AddLearner node 4", ok), 1);
  t.is(await table.run(rid(1), "AddLearner node 4", ok), 1);
  const refuse = () => { runs++; return Promise.reject(new RpcFailure(status.FAILED_PRECONDITION, "node 4 is already a member")); };
  await t.throwsAsync(table.run(rid(2), "AddLearner node 4", refuse), { message: /already a member/ });
  await t.throwsAsync(table.run(rid(2), "AddLearner node 4", ok), { message: /already a member/ });
  t.is(runs, 2);
});

test("request table: a call still running is awaited by its retry", async (t) => {
  const table = new AdminRequestTable();
  let release!: (v: number) => void;
  const first = table.run(rid(1), "x", () => new Promise<number>((r) => { release = r; }));
  const retry = table.run(rid(1), "x", () => Promise.resolve(99));
  release(7);
  t.deepEqual(await Promise.all([first, retry]), [7, 7]);
});

test("request table: an unsettled outcome (UNAVAILABLE, ProposalError) is forgotten so that the retry runs", async (t) => {
  const table = new AdminRequestTable();
  await t.throwsAsync(table.run(rid(1), "x", () => Promise.reject(new ProposalError("TIMEOUT", "not applied in time"))));
  t.is(await table.run(rid(1), "x", () => Promise.resolve(2)), 2);
  await t.throwsAsync(table.run(rid(3), "x", () => Promise.reject(new RpcFailure(status.UNAVAILABLE, "not the leader"))));
  t.is(await table.run(rid(3), "x", () => Promise.resolve(4)), 4);
});

test("request table: an id reused for another request, or of the wrong length, is INVALID_ARGUMENT; an empty id opts out", async (t) => {
  const table = new AdminRequestTable();
  await table.run(rid(1), "AddLearner node 4", () => Promise.resolve(1));
  const reused = t.throws(() => table.run(rid(1), "AddLearner node 5", () => Promise.resolve(2))) as RpcFailure;
  t.is(reused.code, status.INVALID_ARGUMENT);
  t.regex(reused.message, /was used for another request \(AddLearner node 4\)/);
  t.is((t.throws(() => table.run(new Uint8Array(3), "x", () => Promise.resolve(1))) as RpcFailure).code, status.INVALID_ARGUMENT);
  let runs = 0;
  await table.run(new Uint8Array(0), "x", () => Promise.resolve(++runs));
  await table.run(new Uint8Array(0), "x", () => Promise.resolve(++runs));
  t.is(runs, 2);
});

test("request table: bounded; the oldest settled outcomes go first, running calls stay", async (t) => {
  const table = new AdminRequestTable(3);
  const pending = table.run(rid(0), "p", () => new Promise<number>(() => undefined));
  for (let i = 1; i <= 5; i++) await table.run(rid(i), `r${i}`, () => Promise.resolve(i));
  t.is(table.size, 3);
  t.is(await table.run(rid(5), "r5", () => Promise.resolve(-1)), 5, "the newest is kept");
  t.is(await table.run(rid(1), "r1", () => Promise.resolve(-1)), -1, "the oldest was evicted: runs again");
  t.is(table.run(rid(0), "p", () => Promise.resolve(-1)), pending, "the running call is never evicted");
});

test("admin callers: operator and node certificates only", (t) => {
  for (const cn of ["operator", "operator-alice", "node-1", "node-42"]) t.true(admitsAdminCaller(cn), cn);
  for (const cn of [undefined, "", "mallory", "node-0", "node-", "operators", "operator-", "xoperator", "node-1 "]) t.false(admitsAdminCaller(cn), String(cn));
});

test("health: NOT_SERVING without a leader, beyond the apply lag bound, or with a failing HSM probe; the first reason is named", (t) => {
  const ok = { leaderId: 1, applyLag: 0, maxApplyLag: 100, hsm: { ok: true, error: "" } };
  t.is(notServingReason(ok), null);
  t.is(notServingReason({ ...ok, applyLag: 100 }), null);
  t.is(notServingReason({ ...ok, applyLag: 101 }), "apply lag 101 > 100 entries");
  t.is(notServingReason({ ...ok, hsm: { ok: false, error: "signing failed (CKR_DEVICE_ERROR)" } }), "HSM probe failing: signing failed (CKR_DEVICE_ERROR)");
  t.is(notServingReason({ ...ok, leaderId: 0, applyLag: 500 }), "no leader known");
});

test("digest ring: one digest per recorded index, ascending, bounded", (t) => {
  const ring = new StateDigestRing(2);
  let computed = 0;
  const digest = () => { computed++; return new Uint8Array([computed]); };
  ring.record(5, digest);
  ring.record(5, digest);
  ring.record(4, digest);
  t.is(computed, 1, "an index not above the last is not digested again");
  ring.record(7, digest);
  ring.record(9, digest);
  t.deepEqual(ring.list().map((d) => d.index), [7, 9]);
});

test("join phase: new, learner, voter, removed", (t) => {
  const view = (voters: number[], learners: number[], applied: number) => ({ voters, learners, vault: { appliedIndex: applied } as never });
  t.is(joinPhase(view([], [], 0), 4), "new");
  t.is(joinPhase(view([1, 2, 3], [4], 10), 4), "learner");
  t.is(joinPhase(view([1, 2, 3, 4], [], 10), 4), "voter");
  t.is(joinPhase(view([1, 2, 3], [], 10), 4), "removed");
});
