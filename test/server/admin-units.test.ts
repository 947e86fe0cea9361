// Unit tests of the admin port's small pieces: the request-id table, the
// caller check, the health verdict, the digest ring, and a joining node's
// phase.
import test from "ava";
import { status } from "@grpc/grpc-js";
import { AdminRequestTable } from "../../node/server/admin-requests.js";
import { adminCaller, methodRefusal, requestRefusal } from "../../node/server/admin-auth.js";
import { RpcFailure } from "../../node/server/errors.js";
import { notServingReason } from "../../node/server/health.js";
import { joinPhase } from "../../node/server/join.js";
import { ProposalError } from "../../node/server/raft-loop.js";
import { adminService, recentDigests } from "../../node/server/admin-service.js";
import type { AdminLoop } from "../../node/server/raft-view.js";
import { type ConfChange, ConfChangeType } from "../../node/raft/index.js";

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
  for (const cn of ["operator", "operator-alice", "node-1", "node-42"]) t.true(adminCaller(cn) !== null, cn);
  for (const cn of [undefined, "", "mallory", "node-0", "node-", "operators", "operator-", "xoperator", "node-1 "]) t.false(adminCaller(cn) !== null, String(cn));
});

test("admin methods: an operator calls every one; a node certificate GetClusterStatus, and AddLearner / PromoteLearner of itself only", (t) => {
  const operator = adminCaller("operator-alice")!;
  const node2 = adminCaller("node-2")!;
  t.deepEqual(node2, { kind: "node", nodeId: 2n });
  const admin = "bkv.v1.AdminService";
  for (const m of ["RemoveNode", "TransferLeadership", "TakeSnapshot", "SaveSnapshot", "RotateIssuerKeys", "AddLearner"]) t.is(methodRefusal(operator, admin, m), null, m);
  for (const m of ["GetClusterStatus", "AddLearner", "PromoteLearner"]) t.is(methodRefusal(node2, admin, m), null, m);
  for (const m of ["RemoveNode", "TransferLeadership", "TakeSnapshot", "SaveSnapshot", "RotateIssuerKeys"]) {
    t.regex(methodRefusal(node2, admin, m) ?? "", new RegExp(`${m} needs an operator certificate`), m);
  }
  t.is(methodRefusal(node2, "grpc.health.v1.Health", "Check"), null, "health only reads");
  t.is(methodRefusal(node2, "grpc.reflection.v1.ServerReflection", "ServerReflectionInfo"), null, "reflection only reads");
  t.not(methodRefusal(node2, "another.Service", "GetClusterStatus"), null, "a method name alone is not enough");
  t.is(requestRefusal(node2, "AddLearner", { nodeId: 2n, peerAddress: "x:1" }), null);
  t.is(requestRefusal(node2, "PromoteLearner", { nodeId: 2n }), null);
  t.is(requestRefusal(node2, "AddLearner", { nodeId: 5n }), "node 2's certificate may AddLearner node 2 only");
  t.is(requestRefusal(node2, "PromoteLearner", {}), "node 2's certificate may PromoteLearner node 2 only");
  t.is(requestRefusal(operator, "AddLearner", { nodeId: 5n }), null);
  t.is(requestRefusal(node2, "GetClusterStatus", {}), null);
});

test("health: NOT_SERVING once stopping, without a leader, beyond the apply lag bound, or with a failing HSM probe; the first reason is named", (t) => {
  const ok = { stopping: false, leaderId: 1, applyLag: 0, maxApplyLag: 100, hsm: { ok: true, error: "" } };
  t.is(notServingReason(ok), null);
  t.is(notServingReason({ ...ok, applyLag: 100 }), null);
  t.is(notServingReason({ ...ok, applyLag: 101 }), "apply lag 101 > 100 entries");
  t.is(notServingReason({ ...ok, hsm: { ok: false, error: "signing failed (CKR_DEVICE_ERROR)" } }), "HSM probe failing: signing failed (CKR_DEVICE_ERROR)");
  t.is(notServingReason({ ...ok, leaderId: 0, applyLag: 500 }), "no leader known");
  t.is(notServingReason({ ...ok, stopping: true, leaderId: 0 }), "stopping");
});

test("recent digests: the last indexes applied that the vault remembers, oldest first", (t) => {
  const remembered = new Map([[7, 7], [8, 8], [10, 10], [11, 11]]);
  const vault = (applied: number) => ({
    appliedIndex: applied,
    digestAt: (i: number) => (remembered.has(i) ? new Uint8Array([remembered.get(i)!]) : undefined),
  });
  t.deepEqual(recentDigests(vault(11), 4).map((d) => [d.index, d.digest[0]]), [[8, 8], [10, 10], [11, 11]], "index 9 is not remembered");
  t.deepEqual(recentDigests(vault(11), 2).map((d) => d.index), [10, 11]);
  t.deepEqual(recentDigests(vault(0)), [], "nothing applied, nothing listed");
});

test("join phase: new, learner, voter, outside", (t) => {
  const view = (voters: number[], learners: number[], applied: number) => ({ voters, learners, vault: { appliedIndex: applied } as never });
  t.is(joinPhase(view([], [], 0), 4), "new");
  t.is(joinPhase(view([1, 2, 3], [4], 10), 4), "learner");
  t.is(joinPhase(view([1, 2, 3, 4], [], 10), 4), "voter");
  t.is(joinPhase(view([1, 2, 3], [], 10), 4), "outside", "removed, or a snapshot from before its addition");
});

// --- AdminService's membership checks on a fake AdminLoop (this layer only) ---

interface FakeLoop {
  voters: number[];
  learners: number[];
  /** Node ids with an announcement in the vault state (default none). */
  announced?: number[];
  commitIndex: number;
  match: Record<number, number>;
  proposed: ConfChange[];
}

function service(f: FakeLoop, reachable: readonly number[], promoteMaxLag = 100) {
  const loop = {
    leaderId: 1, isLeader: true, role: 2, term: 3, commitIndex: f.commitIndex, voters: f.voters, learners: f.learners,
    lastSnapshotIndex: 0, peers: new Map<number, string>(), vault: { nodes: () => (f.announced ?? []).map((nodeId) => ({ nodeId })) },
    matchIndex: (id: number) => f.match[id] ?? 0,
    proposeConfChange: (cc: ConfChange) => { f.proposed.push(cc); return Promise.resolve(f.commitIndex + 1); },
    transferLeadership: () => Promise.resolve(1), requestSnapshot: () => Promise.reject(new Error("unused")),
    snapshotStream: () => { throw new Error("unused"); },
  } as unknown as AdminLoop;
  const quiet = { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined };
  return adminService({
    nodeId: 1, clusterId: "c", loop: () => loop, peerReachable: (id) => reachable.includes(id),
    leaderHint: () => ({ leaderId: 1, leaderAddress: "", self: 1 }), adminAddressOf: () => "", promoteMaxLag,
    facts: () => Promise.reject(new Error("unused")), log: quiet, record: () => undefined,
  });
}

/** Calls a unary handler; resolves with its error's details (or "OK"). */
function callHandler(h: unknown, request: object): Promise<string> {
  return new Promise((resolve) => {
    const call = { request, cancelled: false, getDeadline: () => Infinity };
    (h as (call: object, cb: (err: { details?: string } | null) => void) => void)(call, (err) => resolve(err === null ? "OK" : err.details ?? "?"));
  });
}

const promote = (nodeId: bigint) => ({ requestId: new Uint8Array(0), nodeId });
const remove = (nodeId: bigint, force = false) => ({ requestId: new Uint8Array(0), nodeId, force });

test("PromoteLearner: refused while the learner is unreachable, acknowledged nothing, or lags beyond promoteMaxLag", async (t) => {
  const f: FakeLoop = { voters: [1, 2, 3], learners: [4], commitIndex: 500, match: { 2: 500, 3: 500, 4: 0 }, proposed: [] };
  t.regex(await callHandler(service(f, [2, 3]).promoteLearner, promote(4n)), /node 4 has not caught up: it is not reachable from the leader/);
  t.regex(await callHandler(service(f, [2, 3, 4]).promoteLearner, promote(4n)), /it has not acknowledged any entry yet/);
  f.match[4] = 399;
  t.regex(await callHandler(service(f, [2, 3, 4]).promoteLearner, promote(4n)), /it is 101 entries behind the commit index 500 \(at most 100 allowed\)/);
  t.is(f.proposed.length, 0);
  f.match[4] = 400;
  t.is(await callHandler(service(f, [2, 3, 4]).promoteLearner, promote(4n)), "OK");
  t.deepEqual(f.proposed.map((cc) => [cc.type, cc.nodeId]), [[ConfChangeType.PromoteLearner, 4]]);
});

test("RemoveNode: refused when the voters left lack a reachable quorum or none would be left, unless forced; learners always go", async (t) => {
  const f: FakeLoop = { voters: [1, 2, 3], learners: [4], commitIndex: 10, match: {}, proposed: [] };
  t.regex(await callHandler(service(f, [3]).removeNode, remove(3n)), /removing node 3 would leave voters \[1, 2\] of which 1 \(\[1\]\) are reachable, fewer than their quorum of 2/);
  t.is(await callHandler(service(f, [3]).removeNode, remove(2n)), "OK", "removing the unreachable one keeps [1, 3] reachable");
  t.is(await callHandler(service(f, [3]).removeNode, remove(3n, true)), "OK", "forced");
  t.is(await callHandler(service(f, []).removeNode, remove(4n)), "OK", "a learner does not count for the quorum");
  t.is(f.proposed.length, 3);
  const alone: FakeLoop = { voters: [1], learners: [], commitIndex: 10, match: {}, proposed: [] };
  t.regex(await callHandler(service(alone, []).removeNode, remove(1n, true)), /node 1 is the last voter/);
});

test("AddLearner: an id that was a member once (its announcement is in the state) is never added back", async (t) => {
  const f: FakeLoop = { voters: [1, 2], learners: [], announced: [1, 2, 3], commitIndex: 10, match: {}, proposed: [] };
  const add = (nodeId: bigint) => ({ requestId: new Uint8Array(0), nodeId, peerAddress: "127.0.0.1:7003" });
  t.regex(await callHandler(service(f, [2]).addLearner, add(3n)), /node 3 was a member and was removed: an id is never added back/);
  t.is(f.proposed.length, 0, "before the fix, node 3's own certificate could add it back (review, stop 31)");
  t.is(await callHandler(service(f, [2]).addLearner, add(4n)), "OK", "a new id");
});
