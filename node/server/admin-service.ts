// AdminService (proto/bkv/v1/admin.proto), served on the admin address with
// mTLS (admin-auth.ts admits operator and node certificates). Membership
// changes are one at a time, made on the leader; a follower answers
// UNAVAILABLE NOT_LEADER with the leader's ADMIN address (where its config
// names it). Mutating calls honour request_id (admin-requests.ts), and a
// membership call whose change the configuration already holds answers
// already_in_effect without proposing (a retry on a new leader). The peer
// address of a new member travels in the ConfChange context. Vault commands
// an operator proposes (the issuer key set, bind-shares) get their audit line
// from the applied log, as every command does (audit.ts).
import { create } from "@bufbuild/protobuf";
import { status, type handleServerStreamingCall } from "@grpc/grpc-js";
import {
  AddLearnerResponseSchema, GetClusterStatusResponseSchema, HsmState, ListStateDigestsResponseSchema, MemberKind,
  type AdminService, PromoteLearnerResponseSchema, RemoveNodeResponseSchema, type SaveSnapshotRequest,
  type SaveSnapshotResponse, SaveSnapshotResponseSchema, TakeSnapshotResponseSchema, TransferLeadershipResponseSchema,
  RotateIssuerKeysResponseSchema, RequireBoundSharesResponseSchema, FindSharedSharesResponseSchema, type FindSharedSharesResponse,
} from "../../proto/gen/bkv/v1/admin_pb.js";
import { ErrorReason } from "../../proto/gen/bkv/v1/status_pb.js";
import type { ImplementationOf } from "../../proto/rpc.js";
import { type ConfChange, ConfChangeType, NONE } from "../raft/index.js";
import { stallMessage, writeChunks } from "../transport/index.js";
import { RpcFailure, fromVaultError, invalidArgument, type LeaderHint } from "./errors.js";
import { type Command, type ReadableStore, type SharedSharesReport, encodeCommand, findSharedShares } from "../vault/index.js";
import { withTurns } from "./store-snapshots.js";
import { type HandlerContext, failureOf, unaryHandler } from "./handlers.js";
import { ConfChangeIgnoredError } from "./loop-types.js";
import { AdminRequestTable } from "./admin-requests.js";
import { encodePeerContext } from "./membership.js";
import type { AdminLoop, RaftView, VaultReader } from "./raft-view.js";
import type { Logger } from "./log.js";

/** What GetClusterStatus reports of the node beyond Raft: read on each call. */
export interface NodeFacts {
  readonly version: string;
  readonly storeBytes: number;
  readonly hsm: { readonly ok: boolean; readonly error: string };
  /** Why health is NOT_SERVING, or null (health.ts notServingReason). */
  readonly notServing: string | null;
}

export interface AdminDeps {
  readonly nodeId: number;
  readonly clusterId: string;
  readonly loop: () => AdminLoop;
  readonly peerReachable: (id: number) => boolean;
  /** The leader and its ADMIN address. */
  readonly leaderHint: () => LeaderHint;
  /** A member's admin address from this node's config ("" when unknown). */
  readonly adminAddressOf: (id: number) => string;
  /** PromoteLearner refuses a learner further behind the leader's commit index than this. */
  readonly promoteMaxLag: number;
  readonly facts: () => Promise<NodeFacts>;
  readonly log: Logger;
  /** Metrics: one call's method, status name and duration. */
  readonly record: (method: string, code: string, ms: number) => void;
  readonly requests?: AdminRequestTable;
  /** This node's vault store as it is now (it is replaced when a snapshot is installed), or null before it is open (FindSharedShares). */
  readonly store?: () => ReadableStore | null;
}

export function adminService(d: AdminDeps): ImplementationOf<typeof AdminService> {
  const ctx: HandlerContext = { leaderHint: d.leaderHint, log: d.log, record: d.record };
  const unary = unaryHandler(ctx);
  const table = d.requests ?? new AdminRequestTable();
  const scans = new ScanSlot();
  const change = async (want: WantedChange, force = false): Promise<ChangeOutcome> => {
    const loop = d.loop();
    requireLeader(loop, d); // a follower's view of the membership may be stale: the leader judges
    if (inEffect(loop, want)) return alreadyInEffect(d, want);
    checkChange(loop, want);
    if (want.type === ConfChangeType.PromoteLearner) checkCaughtUp(loop, d, want.id);
    if (want.type === ConfChangeType.RemoveNode) checkVotersAfterRemoval(loop, d, want.id, force);
    d.log.info("proposing membership change", { change: ConfChangeType[want.type], member: want.id, force });
    const cc: ConfChange = { type: want.type, nodeId: want.id, context: encodePeerContext(want.peerAddress ?? "") };
    const applied = await loop.proposeConfChange(cc).catch((err: unknown) => {
      if (err instanceof ConfChangeIgnoredError) return err;
      throw err;
    });
    const now = d.loop();
    if (!holds(now, want)) throw membership(applied instanceof ConfChangeIgnoredError ? applied.message : `the membership change applied at index ${applied} did not make what was asked: ${memberDescription(now, want.id)}`);
    return applied instanceof ConfChangeIgnoredError ? alreadyInEffect(d, want) : { index: BigInt(applied), alreadyInEffect: false };
  };
  return {
    rotateIssuerKeys: unary("RotateIssuerKeys", async (req) => {
      await rotateIssuerKeys(d, req.requestId, req.signedKeySet);
      return create(RotateIssuerKeysResponseSchema, {});
    }),
    requireBoundShares: unary("RequireBoundShares", async (req) => {
      const alreadyRequired = await table.run(req.requestId, "RequireBoundShares", () => requireBoundShares(d, req.requestId));
      return create(RequireBoundSharesResponseSchema, { alreadyRequired });
    }),
    getClusterStatus: unary("GetClusterStatus", async (req) => clusterStatus(d, req.includeStateDigest, await d.facts())),
    addLearner: unary("AddLearner", async (req) => {
      const want = { type: ConfChangeType.AddLearner, id: memberId(req.nodeId), peerAddress: peerAddress(req.peerAddress) };
      return create(AddLearnerResponseSchema, await table.run(req.requestId, `AddLearner node ${req.nodeId} at ${req.peerAddress}`, () => change(want)));
    }),
    promoteLearner: unary("PromoteLearner", async (req) => {
      const want = { type: ConfChangeType.PromoteLearner, id: memberId(req.nodeId) };
      return create(PromoteLearnerResponseSchema, await table.run(req.requestId, `PromoteLearner node ${req.nodeId}`, () => change(want)));
    }),
    removeNode: unary("RemoveNode", async (req) => {
      const want = { type: ConfChangeType.RemoveNode, id: memberId(req.nodeId) };
      return create(RemoveNodeResponseSchema, await table.run(req.requestId, `RemoveNode node ${req.nodeId}${req.force ? " (force)" : ""}`, () => change(want, req.force)));
    }),
    transferLeadership: unary("TransferLeadership", async (req) => {
      const loop = d.loop();
      requireLeader(loop, d);
      const to = req.nodeId === 0n ? NONE : memberId(req.nodeId);
      if (to !== NONE && !loop.voters.includes(to)) throw membership(`node ${to} is not a voter`);
      const leader = await loop.transferLeadership(to, 5000);
      return create(TransferLeadershipResponseSchema, { leaderId: BigInt(leader), term: BigInt(loop.term) });
    }),
    takeSnapshot: unary("TakeSnapshot", async () => {
      const snap = await d.loop().requestSnapshot();
      return create(TakeSnapshotResponseSchema, { index: BigInt(snap.metadata.index), term: BigInt(snap.metadata.term), sizeBytes: BigInt(snap.data.length) });
    }),
    saveSnapshot: saveSnapshot(d, ctx),
    findSharedShares: unary("FindSharedShares", async () => sharedSharesResponse(d.nodeId, await scans.run(() => scanSharedShares(d)))),
    listStateDigests: unary("ListStateDigests", async () => {
      await Promise.resolve();
      const digests = recentDigests(d.loop().vault).map((x) => ({ index: BigInt(x.index), digest: x.digest }));
      return create(ListStateDigestsResponseSchema, { nodeId: BigInt(d.nodeId), digests });
    }),
  };
}

/** Shared shares FindSharedShares lists at most. */
export const SHARED_SHARES_LISTED = 1000;

/** One FindSharedShares scan at a time on a node: each takes its event loop's turns for seconds per million records. */
class ScanSlot {
  private running = false;

  async run<T>(scan: () => Promise<T>): Promise<T> {
    if (this.running) throw new RpcFailure(status.RESOURCE_EXHAUSTED, "a FindSharedShares scan is already running on this node; retry once it has answered");
    this.running = true;
    try {
      return await scan();
    } finally {
      this.running = false;
    }
  }
}

/**
 * Scans this node's store, giving the event loop a turn every page; each
 * page reads the store as it is then (the scan holds no read transaction
 * across turns, so it never pins pages or a store that a snapshot replaces).
 */
async function scanSharedShares(d: AdminDeps): Promise<SharedSharesReport> {
  const current = (): ReadableStore => {
    const store = d.store?.() ?? null;
    if (store === null) throw new RpcFailure(status.UNAVAILABLE, "this node's vault store is not open yet");
    return store;
  };
  const live: ReadableStore = { get: (key) => current().get(key), scan: (start, end) => current().scan(start, end) };
  const t0 = performance.now();
  const report = await withTurns(findSharedShares(live));
  d.log.info("scanned the state for shares held by several users", {
    appliedIndex: report.appliedIndex, records: report.records, shared: report.shared.length, seconds: +((performance.now() - t0) / 1000).toFixed(3),
  });
  return report;
}

function sharedSharesResponse(nodeId: number, r: SharedSharesReport): FindSharedSharesResponse {
  return create(FindSharedSharesResponseSchema, {
    nodeId: BigInt(nodeId), appliedIndex: BigInt(r.appliedIndex), records: BigInt(r.records), truncated: r.shared.length > SHARED_SHARES_LISTED,
    shared: r.shared.slice(0, SHARED_SHARES_LISTED).map((s) => ({ nodeId: BigInt(s.nodeId), publicShare: s.publicShare, users: [...s.users], holders: BigInt(s.holders) })),
  });
}

/** Indexes ListStateDigests reports: the last ones this node applied. */
export const LISTED_DIGESTS = 64;

/**
 * The state digests after the last `n` indexes this node applied, that it
 * still remembers (the vault's digest ring), oldest first: `bkv admin
 * digests` compares the members at the greatest index all of them list.
 */
export function recentDigests(vault: Pick<VaultReader, "appliedIndex" | "digestAt">, n = LISTED_DIGESTS): Array<{ index: number; digest: Uint8Array }> {
  const out: Array<{ index: number; digest: Uint8Array }> = [];
  for (let index = Math.max(1, vault.appliedIndex - n + 1); index <= vault.appliedIndex; index++) {
    const digest = vault.digestAt(index);
    if (digest !== undefined) out.push({ index, digest });
  }
  return out;
}

/**
 * SaveSnapshot: AdminLoop.snapshotStream's chunks, by writeChunks (backpressure; a caller that goes away, also
 * while the node waits for it to read, or reads nothing for its stall limit, ends the stream, which releases the
 * store view it holds).
 */
function saveSnapshot(d: AdminDeps, ctx: HandlerContext): handleServerStreamingCall<SaveSnapshotRequest, SaveSnapshotResponse> {
  const method = "SaveSnapshot";
  return (call) => {
    const t0 = performance.now();
    const send = async (): Promise<void> => {
      const spent = await writeChunks(call, d.loop().snapshotStream(), (data) => create(SaveSnapshotResponseSchema, { data }));
      if (spent.outcome === "cancelled") throw new RpcFailure(status.CANCELLED, "the caller cancelled the snapshot stream");
      if (spent.outcome === "stalled") throw new RpcFailure(status.DEADLINE_EXCEEDED, stallMessage(spent));
    };
    send().then(() => {
      ctx.record(method, "OK", performance.now() - t0);
      call.end();
    }, (err: unknown) => {
      const { error, code } = failureOf(ctx, method, err);
      ctx.record(method, code, performance.now() - t0);
      call.emit("error", error);
    });
  };
}

/**
 * This node's view. With `withDigest`, the vault's state digest (O(1),
 * synchronous: the index and the digest are read in the same turn of the
 * event loop, so they belong together).
 */
function clusterStatus(d: AdminDeps, withDigest: boolean, facts: NodeFacts) {
  const loop = d.loop();
  const digest = withDigest ? { stateDigest: loop.vault.digest(), stateDigestIndex: BigInt(loop.vault.appliedIndex) } : {};
  const members = [...loop.voters.map((id) => [id, MemberKind.VOTER] as const), ...loop.learners.map((id) => [id, MemberKind.LEARNER] as const)];
  return create(GetClusterStatusResponseSchema, {
    clusterId: d.clusterId, nodeId: BigInt(d.nodeId), role: loop.role + 1, leaderId: BigInt(loop.leaderId),
    term: BigInt(loop.term), commitIndex: BigInt(loop.commitIndex), appliedIndex: BigInt(loop.vault.appliedIndex),
    snapshotIndex: BigInt(loop.lastSnapshotIndex),
    members: members.map(([id, kind]) => ({
      nodeId: BigInt(id), peerAddress: loop.peers.get(id) ?? "", kind, adminAddress: d.adminAddressOf(id),
      matchIndex: BigInt(loop.matchIndex(id)), reachable: id === d.nodeId || d.peerReachable(id),
    })),
    version: facts.version, records: BigInt(loop.vault.stats().records), storeBytes: BigInt(facts.storeBytes),
    hsmState: facts.hsm.ok ? HsmState.OK : HsmState.FAILING, hsmError: facts.hsm.error,
    serving: facts.notServing === null, notServingReason: facts.notServing ?? "",
    boundSharesOnly: loop.vault.boundSharesOnly,
    ...digest,
  });
}

function memberId(v: bigint): number {
  if (v <= 0n || v > BigInt(Number.MAX_SAFE_INTEGER)) throw invalidArgument(`node_id must be a positive integer below 2^53 (got ${v})`);
  return Number(v);
}

/**
 * A peer address every member can dial: host:port, the host without whitespace, control characters or a path
 * (grpc-js would read "unix:/x:1" as a socket), the port 1 to 65535. Anything else would commit a learner that
 * no member reaches (a membership change to undo by hand).
 */
function peerAddress(v: string): string {
  const m = /^[^\s\p{Cc}/]+:(\d{1,5})$/u.exec(v);
  const port = m === null ? 0 : Number(m[1]);
  if (port < 1 || port > 65535) throw invalidArgument(`peer_address must be host:port with a port from 1 to 65535 (got ${JSON.stringify(v.slice(0, 256))})`);
  return v;
}

function membership(message: string): RpcFailure {
  return new RpcFailure(status.FAILED_PRECONDITION, message, { reason: ErrorReason.MEMBERSHIP });
}

/** A membership change as an admin call asks it: the node, and for AddLearner its peer address. */
interface WantedChange {
  readonly type: ConfChangeType;
  readonly id: number;
  readonly peerAddress?: string;
}

/** What a membership call answers: the change's index, or 0 when the configuration already held what it asks. */
interface ChangeOutcome {
  readonly index: bigint;
  readonly alreadyInEffect: boolean;
}

/**
 * Whether the configuration already holds what `want` asks, so a retry
 * whose first attempt committed (its reply lost, or its leader gone before
 * the request table could answer) succeeds instead of failing "already a
 * member". A RemoveNode is in effect only for a node that was a member (its
 * announcement is in the state): an id never seen stays an error, as a typo
 * would be.
 */
function inEffect(loop: RaftView, want: WantedChange): boolean {
  return holds(loop, want) && (want.type !== ConfChangeType.RemoveNode || wasMember(loop, want.id));
}

/** Whether the configuration is as `want` would leave it: a member at that peer address, a voter, not a member. */
function holds(loop: RaftView, want: WantedChange): boolean {
  const member = loop.voters.includes(want.id) || loop.learners.includes(want.id);
  switch (want.type) {
    case ConfChangeType.AddLearner: return member && loop.peers.get(want.id) === want.peerAddress;
    case ConfChangeType.PromoteLearner: return loop.voters.includes(want.id);
    case ConfChangeType.RemoveNode: return !member;
    default: return false;
  }
}

function memberDescription(loop: RaftView, id: number): string {
  const kind = loop.voters.includes(id) ? "a voter" : loop.learners.includes(id) ? "a learner" : "not a member";
  const at = loop.peers.get(id);
  return `node ${id} is ${kind}${at === undefined ? "" : ` at peer address ${at}`}`;
}

function alreadyInEffect(d: AdminDeps, want: WantedChange): ChangeOutcome {
  d.log.info("membership change already in effect: nothing proposed", { change: ConfChangeType[want.type], member: want.id });
  return { index: 0n, alreadyInEffect: true };
}

/** Refuses a change the configuration does not allow (one already in effect is answered before: inEffect). */
function checkChange(loop: RaftView, { type, id }: WantedChange): void {
  const voter = loop.voters.includes(id);
  const learner = loop.learners.includes(id);
  if (type === ConfChangeType.AddLearner && (voter || learner || loop.peers.has(id))) {
    throw membership(`node ${id} is already a member, at peer address ${loop.peers.get(id) ?? "unknown"}: remove it first to move it`);
  }
  if (type === ConfChangeType.AddLearner && wasMember(loop, id)) {
    throw membership(`node ${id} was a member and was removed: an id is never added back (a removed node's certificate must not rejoin); give the new node a new id`);
  }
  if (type === ConfChangeType.PromoteLearner && !learner) throw membership(`node ${id} is not a learner`);
  if (type === ConfChangeType.RemoveNode && !voter && !learner) throw membership(`node ${id} is not a member, and never announced itself as one`);
}

/** Whether `id` announced its keys in this state, so joined once: a node announces only once it is a member. */
function wasMember(loop: RaftView, id: number): boolean {
  return loop.vault.nodes().some((n) => n.nodeId === id);
}

/** A learner is promoted only when it is reachable, acknowledged entries, and is within promoteMaxLag of the commit index. */
function checkCaughtUp(loop: AdminLoop, d: AdminDeps, id: number): void {
  const match = loop.matchIndex(id);
  const lag = Math.max(0, loop.commitIndex - match);
  const why = !d.peerReachable(id) ? "it is not reachable from the leader"
    : match === 0 ? "it has not acknowledged any entry yet"
    : lag > d.promoteMaxLag ? `it is ${lag} entries behind the commit index ${loop.commitIndex} (at most ${d.promoteMaxLag} allowed)`
    : null;
  if (why !== null) throw membership(`node ${id} has not caught up: ${why}; retry once it has`);
}

/**
 * Removing a voter must leave a reachable quorum of the voters that remain
 * (the leader counts itself reachable), unless forced; removing the last
 * voter is never done.
 */
function checkVotersAfterRemoval(loop: AdminLoop, d: AdminDeps, id: number, force: boolean): void {
  if (!loop.voters.includes(id)) return;
  const rest = loop.voters.filter((v) => v !== id);
  if (rest.length === 0) throw membership(`node ${id} is the last voter: removing it would leave no cluster`);
  if (force) return;
  const reachable = rest.filter((v) => v === d.nodeId || d.peerReachable(v));
  const quorum = Math.floor(rest.length / 2) + 1;
  if (reachable.length < quorum) {
    throw membership(`removing node ${id} would leave voters [${rest.join(", ")}] of which ${reachable.length} ([${reachable.join(", ")}]) are reachable, fewer than their quorum of ${quorum}: the cluster could not commit; bring a voter back, or remove with force`);
  }
}

function requireLeader(loop: RaftView, d: AdminDeps): void {
  if (loop.isLeader) return;
  const h = d.leaderHint();
  const where = h.leaderAddress === "" ? "" : ` at ${h.leaderAddress}`;
  throw new RpcFailure(status.UNAVAILABLE, `this node is not the leader; send admin calls to node ${h.leaderId}${where}`, {
    reason: h.leaderId === NONE ? ErrorReason.NO_LEADER : ErrorReason.NOT_LEADER, leaderId: BigInt(h.leaderId), leaderAddress: h.leaderAddress,
  });
}

/**
 * Proposes a signed key set (command kind 9); every node verifies it on
 * apply (node/vault rotation.ts).
 */
async function rotateIssuerKeys(d: AdminDeps, requestId: Uint8Array, signedKeys: string): Promise<void> {
  await proposeOperatorCommand(d, { kind: "issuers", requestId, signedKeys }, "proposing a signed issuer key set", {});
  d.log.info("issuer keys rotated", { issuers: d.loop().vault.issuers?.issuers.map((i) => i.iss) });
}

/**
 * Proposes the bind-shares entry (command kind 10): once applied, every node
 * refuses registrations with an unbound share (wrap blob v1). Resolves with
 * whether the leader's state already required bound shares when the call
 * arrived (the entry is proposed either way, idempotent, so the request id
 * and the audit log record every call). Irreversible.
 */
async function requireBoundShares(d: AdminDeps, requestId: Uint8Array): Promise<boolean> {
  const alreadyRequired = d.loop().vault.boundSharesOnly;
  await proposeOperatorCommand(d, { kind: "bind-shares", requestId }, "proposing bind-shares", { alreadyRequired });
  d.log.info("registrations take bound shares only from now on", { alreadyRequired });
  return alreadyRequired;
}

/**
 * An operator's vault command, on the leader only: a leader drops one
 * another member forwards (forward-gate.ts), and the answer reads the
 * state the leader applied. Resolves once applied here; a refusal through
 * fromVaultError, an invalid command as INVALID_ARGUMENT.
 */
async function proposeOperatorCommand(d: AdminDeps, c: Extract<Command, { kind: "issuers" | "bind-shares" }>, what: string, fields: Record<string, unknown>): Promise<void> {
  let data: Uint8Array;
  try {
    data = encodeCommand(c);
  } catch (err) {
    throw invalidArgument(err instanceof Error ? err.message : String(err));
  }
  const loop = d.loop();
  requireLeader(loop, d);
  d.log.info(what, fields);
  const r = await loop.propose(c.requestId, data);
  if (!r.ok) throw fromVaultError(r);
}
