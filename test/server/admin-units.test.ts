// Unit tests of the admin port's small pieces: the request-id table, the
// caller check, the health verdict, the digest ring, a joining node's
// phase, and handlers on a fake AdminLoop (membership checks,
// RequireBoundShares).
import test from "ava";
import * as grpc from "@grpc/grpc-js";
import { status } from "@grpc/grpc-js";
import { randomBytes } from "node:crypto";
import { create } from "@bufbuild/protobuf";
import { RequireBoundSharesResponseSchema } from "../../proto/gen/bkv/v1/admin_pb.js";
import { AdminRequestTable } from "../../node/server/admin-requests.js";
import { adminCaller, methodRefusal, requestRefusal } from "../../node/server/admin-auth.js";
import { RpcFailure } from "../../node/server/errors.js";
import { notServingReason } from "../../node/server/health.js";
import { joinPhase } from "../../node/server/join.js";
import { ConfChangeIgnoredError, ProposalError } from "../../node/server/raft-loop.js";
import { adminService, recentDigests } from "../../node/server/admin-service.js";
import type { AdminLoop } from "../../node/server/raft-view.js";
import { type ConfChange, ConfChangeType } from "../../node/raft/index.js";
import { commandEvent } from "../../node/server/audit.js";
import { ErrorReason } from "../../proto/gen/bkv/v1/status_pb.js";
import { errorDetailOf } from "../../proto/rpc.js";
import { type Harness, legacyHarness, register, registerCmd } from "../../testkit/vault.js";

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
  for (const m of ["RemoveNode", "TransferLeadership", "TakeSnapshot", "SaveSnapshot", "RotateIssuerKeys", "RequireBoundShares", "AddLearner"]) t.is(methodRefusal(operator, admin, m), null, m);
  for (const m of ["GetClusterStatus", "AddLearner", "PromoteLearner"]) t.is(methodRefusal(node2, admin, m), null, m);
  for (const m of ["RemoveNode", "TransferLeadership", "TakeSnapshot", "SaveSnapshot", "RotateIssuerKeys", "RequireBoundShares"]) {
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
  /** Members' peer addresses (default none). */
  peers?: Record<number, string>;
  /** What proposeConfChange answers (default: the next index). */
  commit?: (cc: ConfChange) => Promise<number>;
}

/** Applies `cc` to the fake's configuration, as a commit would; its index. */
function commitChange(f: FakeLoop, cc: ConfChange): number {
  const others = (ids: number[]) => ids.filter((id) => id !== cc.nodeId);
  if (cc.type === ConfChangeType.AddLearner) f.learners = [...f.learners, cc.nodeId];
  if (cc.type === ConfChangeType.AddLearner) f.peers = { ...f.peers, [cc.nodeId]: new TextDecoder().decode(cc.context) };
  if (cc.type === ConfChangeType.PromoteLearner) [f.learners, f.voters] = [others(f.learners), [...f.voters, cc.nodeId]];
  if (cc.type === ConfChangeType.RemoveNode) [f.learners, f.voters] = [others(f.learners), others(f.voters)];
  return f.commitIndex + 1;
}

function service(f: FakeLoop, reachable: readonly number[], promoteMaxLag = 100) {
  const loop = {
    leaderId: 1, isLeader: true, role: 2, term: 3, commitIndex: f.commitIndex, get voters() { return f.voters; }, get learners() { return f.learners; },
    lastSnapshotIndex: 0, get peers() { return new Map(Object.entries(f.peers ?? {}).map(([id, a]) => [Number(id), a])); },
    vault: { nodes: () => (f.announced ?? []).map((nodeId) => ({ nodeId })) },
    matchIndex: (id: number) => f.match[id] ?? 0,
    proposeConfChange: (cc: ConfChange) => { f.proposed.push(cc); return f.commit?.(cc) ?? Promise.resolve(commitChange(f, cc)); },
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
  f.voters = [1, 2, 3];
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

// Found by test/security/raw-client.test.ts: AddLearner took "127.0.0.1:99999" (and port 0, control
// characters in the host) and committed a learner no member can dial.
test("AddLearner: a peer address no node can dial (port 0 or above 65535, no host, control characters, a path) is INVALID_ARGUMENT; nothing proposed", async (t) => {
  const f: FakeLoop = { voters: [1, 2], learners: [], commitIndex: 10, match: {}, proposed: [] };
  const add = (peerAddress: string) => ({ requestId: new Uint8Array(0), nodeId: 4n, peerAddress });
  for (const bad of ["127.0.0.1:99999", "127.0.0.1:65536", "127.0.0.1:0", ":7000", "host", "ev\u0000il:7000", "a\u0007b:7000", "unix:/tmp/s:7000", "h:7000\n", "h: 7000"]) {
    const err = await answer(service(f, [2]).addLearner, add(bad));
    t.like(err, { ok: false, err: { code: status.INVALID_ARGUMENT } }, JSON.stringify(bad));
    if (!err.ok) t.regex(err.err.details ?? "", /^peer_address must be host:port with a port from 1 to 65535/, JSON.stringify(bad));
  }
  t.is(f.proposed.length, 0);
  for (const good of ["127.0.0.1:65535", "node-4.bkv.svc:7000", "[::1]:1"]) {
    const g: FakeLoop = { voters: [1, 2], learners: [], commitIndex: 10, match: {}, proposed: [] };
    t.like(await answer(service(g, [2]).addLearner, add(good)), { ok: true }, good);
  }
});

test("membership calls the configuration already holds answer already_in_effect and propose nothing: a retry on a new leader", async (t) => {
  const f: FakeLoop = { voters: [1, 2, 3], learners: [4], announced: [1, 2, 3, 4, 5], peers: { 4: "127.0.0.1:7004" }, commitIndex: 10, match: { 4: 10 }, proposed: [] };
  const svc = service(f, [2, 3, 4]);
  const add = (nodeId: bigint, peerAddress: string) => ({ requestId: new Uint8Array(0), nodeId, peerAddress });
  t.like(await answer(svc.addLearner, add(4n, "127.0.0.1:7004")), { ok: true, value: { index: 0n, alreadyInEffect: true } });
  t.like(await answer(svc.addLearner, add(4n, "127.0.0.1:7999")), { ok: false, err: { code: status.FAILED_PRECONDITION, details: "node 4 is already a member, at peer address 127.0.0.1:7004: remove it first to move it" } });
  t.like(await answer(svc.promoteLearner, promote(2n)), { ok: true, value: { index: 0n, alreadyInEffect: true } }, "a voter already");
  t.like(await answer(svc.removeNode, remove(5n)), { ok: true, value: { index: 0n, alreadyInEffect: true } }, "announced once, no longer a member: removed before");
  t.like(await answer(svc.removeNode, remove(9n)), { ok: false, err: { code: status.FAILED_PRECONDITION } }, "never seen: a typo stays an error");
  t.is(f.proposed.length, 0, "before: 'already a member' / 'not a learner' / 'not a member' for a change that had succeeded");
  t.like(await answer(svc.promoteLearner, promote(4n)), { ok: true, value: { index: 11n, alreadyInEffect: false } }, "a change that is not in effect is proposed");
});

test("after a membership change applies, the configuration is checked: an ignored change is already_in_effect when it holds what was asked, else FAILED_PRECONDITION; so is a change of the same kind that made something else", async (t) => {
  const f: FakeLoop = { voters: [1, 2, 3], learners: [], peers: {}, commitIndex: 10, match: {}, proposed: [] };
  // Another change for node 4 (another caller's, or a rogue leader's) applied first at the same address, then ours was ignored.
  f.commit = () => { f.learners = [4]; f.peers = { 4: "127.0.0.1:7004" }; return Promise.reject(new ConfChangeIgnoredError(11, "node 4 is already a member")); };
  const add = (peerAddress: string) => ({ requestId: new Uint8Array(0), nodeId: 4n, peerAddress });
  t.like(await answer(service(f, [2, 3]).addLearner, add("127.0.0.1:7004")), { ok: true, value: { index: 0n, alreadyInEffect: true } });
  f.learners = [];
  f.peers = {};
  f.commit = () => { f.learners = [4]; f.peers = { 4: "127.0.0.1:7999" }; return Promise.reject(new ConfChangeIgnoredError(12, "node 4 is already a member")); };
  t.like(await answer(service(f, [2, 3]).addLearner, add("127.0.0.1:7004")), {
    ok: false, err: { code: status.FAILED_PRECONDITION, details: "the membership change committed at index 12 was ignored: node 4 is already a member" },
  }, "before the fix, the waiter resolved with the ignored entry's index: OK for a change that never happened");
  f.learners = [];
  f.peers = {};
  // A rogue leader's entry of the same kind and node, at its own address, answered the waiter.
  f.commit = () => { f.learners = [4]; f.peers = { 4: "10.66.6.6:9999" }; return Promise.resolve(13); };
  t.like(await answer(service(f, [2, 3]).addLearner, add("127.0.0.1:7004")), {
    ok: false, err: { code: status.FAILED_PRECONDITION, details: "the membership change applied at index 13 did not make what was asked: node 4 is a learner at peer address 10.66.6.6:9999" },
  }, "before the fix: OK, index 13");
});

// --- RequireBoundShares on a fake AdminLoop over a real vault state (a release before bound shares made it) ---

interface BindLoop {
  readonly h: Harness;
  /** The entries proposed, in order. */
  readonly proposed: Uint8Array[];
  isLeader: boolean;
}

/** The admin service over `f`: propose applies the entry to f.h's state machine at once, as a commit would. */
function bindService(f: BindLoop) {
  const loop = {
    get isLeader() { return f.isLeader; },
    leaderId: 2, role: 2, term: 3, commitIndex: 0, voters: [1, 2, 3], learners: [], lastSnapshotIndex: 0, peers: new Map<number, string>(),
    vault: f.h.sm, matchIndex: () => 0,
    propose: (_requestId: Uint8Array, data: Uint8Array) => { f.proposed.push(data); return Promise.resolve(f.h.result(data)); },
  } as unknown as AdminLoop;
  const quiet = { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined };
  const facts = { version: "0.0.0", storeBytes: 0, hsm: { ok: true, error: "" }, notServing: null };
  return adminService({
    nodeId: 1, clusterId: "c", loop: () => loop, peerReachable: () => true,
    leaderHint: () => ({ leaderId: 2, leaderAddress: "127.0.0.1:7102", self: 1 }), adminAddressOf: () => "", promoteMaxLag: 100,
    facts: () => Promise.resolve(facts), log: quiet, record: () => undefined,
  });
}

interface Refusal { code: number; details: string; metadata: grpc.Metadata }
type Answer<T> = { ok: true; value: T } | { ok: false; err: Refusal };

/** Calls a unary handler; resolves with its response or its error. */
function answer<T>(h: unknown, request: object): Promise<Answer<T>> {
  return new Promise((resolve) => {
    const call = { request, cancelled: false, getDeadline: () => Infinity };
    (h as (call: object, cb: (err: Refusal | null, value?: T) => void) => void)(call,
      (err, value) => resolve(err === null ? { ok: true, value: value as T } : { ok: false, err }));
  });
}

const bind = (requestId = new Uint8Array(randomBytes(16))) => ({ requestId });

test("RequireBoundShares: the leader proposes bind-shares and the legacy state flips; a retry answers the first outcome; a later call reports already_required; GetClusterStatus follows; the audit log gets its line", async (t) => {
  const f: BindLoop = { h: legacyHarness(), proposed: [], isLeader: true };
  const svc = bindService(f);
  const status = async () => ((await answer<{ boundSharesOnly: boolean }>(svc.getClusterStatus, { includeStateDigest: false })) as { value: { boundSharesOnly: boolean } }).value.boundSharesOnly;
  t.false(await status(), "a state from before bound shares");
  const first = bind();
  t.deepEqual(await answer(svc.requireBoundShares, first), { ok: true, value: create(RequireBoundSharesResponseSchema, { alreadyRequired: false }) });
  t.true(f.h.sm.boundSharesOnly);
  t.true(await status());
  t.is(f.proposed.length, 1);
  const event = commandEvent(7, f.proposed[0]!, { ok: true, kind: "bind-shares" });
  t.like(event, { kind: "bind-shares", requestId: Buffer.from(first.requestId).toString("hex"), outcome: "ok" });
  t.like(await answer(svc.requireBoundShares, first), { ok: true, value: { alreadyRequired: false } }, "the same request id: its first outcome");
  t.is(f.proposed.length, 1, "the retry proposes nothing");
  t.like(await answer(svc.requireBoundShares, bind()), { ok: true, value: { alreadyRequired: true } });
  t.is(f.proposed.length, 2, "proposed again (idempotent): the audit log records every call");
  t.true(f.h.sm.boundSharesOnly, "irreversible");
});

test("RequireBoundShares and RotateIssuerKeys: a follower answers UNAVAILABLE NOT_LEADER with the leader's admin address; a bad request id and a vault refusal are refused; nothing changes", async (t) => {
  const f: BindLoop = { h: legacyHarness(), proposed: [], isLeader: false };
  const svc = bindService(f);
  const follower = await answer(svc.requireBoundShares, bind());
  if (follower.ok) return t.fail("a follower accepted RequireBoundShares");
  t.is(follower.err.code, grpc.status.UNAVAILABLE);
  t.like(errorDetailOf(follower.err), { reason: ErrorReason.NOT_LEADER, leaderId: 2n, leaderAddress: "127.0.0.1:7102" });
  t.regex(follower.err.details, /this node is not the leader; send admin calls to node 2 at 127\.0\.0\.1:7102/);
  // Issuer-key rotation too: a leader drops an operator's vault command another member forwards (forward-gate.ts).
  const rotation = await answer(svc.rotateIssuerKeys, { requestId: new Uint8Array(randomBytes(16)), signedKeySet: "a.b.c" });
  t.like(rotation, { ok: false, err: { code: grpc.status.UNAVAILABLE } }, "RotateIssuerKeys on a follower");
  t.is(f.proposed.length, 0, "a follower proposes neither");
  f.isLeader = true;
  for (const requestId of [new Uint8Array(0), new Uint8Array(3)]) {
    const bad = await answer(svc.requireBoundShares, { requestId });
    t.like(bad, { ok: false, err: { code: grpc.status.INVALID_ARGUMENT } }, `${requestId.length} bytes`);
  }
  const used = new Uint8Array(randomBytes(16));
  f.h.result(registerCmd(register("alice"), used));
  const reused = await answer(svc.requireBoundShares, bind(used));
  if (reused.ok) return t.fail("a request id of another vault command was accepted");
  t.is(reused.err.code, grpc.status.INVALID_ARGUMENT);
  t.is(errorDetailOf(reused.err)?.reason, ErrorReason.REQUEST_ID_REUSED, "the vault's refusal, through fromVaultError");
  t.is(f.proposed.length, 1, "only the refused one reached the vault");
  t.false(f.h.sm.boundSharesOnly);
});
