// AdminService (proto/bkv/v1/admin.proto), served on the admin address with
// the peers' mTLS (callers need a cluster-CA certificate). Membership changes
// are one at a time; the peer address of a new member travels in the
// ConfChange context.
import { create } from "@bufbuild/protobuf";
import { status, type handleUnaryCall } from "@grpc/grpc-js";
import {
  AddLearnerResponseSchema, GetClusterStatusResponseSchema, MemberKind, type AdminService, PromoteLearnerResponseSchema,
  RemoveNodeResponseSchema, TakeSnapshotResponseSchema, TransferLeadershipResponseSchema,
} from "../../proto/gen/bkv/v1/admin_pb.js";
import { ErrorReason } from "../../proto/gen/bkv/v1/status_pb.js";
import type { ImplementationOf } from "../../proto/rpc.js";
import { type ConfChange, ConfChangeType, NONE } from "../raft/index.js";
import { RpcFailure, invalidArgument, toServiceError, type LeaderHint } from "./errors.js";
import { encodePeerContext } from "./raft-loop.js";
import type { AdminLoop, RaftView } from "./raft-view.js";
import type { Logger } from "./log.js";

export interface AdminDeps {
  readonly nodeId: number;
  readonly clusterId: string;
  readonly loop: () => AdminLoop;
  readonly peerReachable: (id: number) => boolean;
  readonly leaderHint: () => LeaderHint;
  readonly log: Logger;
}

export function adminService(d: AdminDeps): ImplementationOf<typeof AdminService> {
  const unary = <Req, Res>(method: string, f: (req: Req) => Promise<Res>): handleUnaryCall<Req, Res> => (call, cb) => {
    f(call.request).then((r) => cb(null, r), (err: unknown) => {
      cb(toServiceError(err, d.leaderHint, (x) => d.log.error("admin internal error", { method, error: x })));
    });
  };
  const change = async (type: ConfChangeType, nodeId: bigint, peerAddress = ""): Promise<bigint> => {
    const id = memberId(nodeId);
    const loop = d.loop();
    checkChange(loop, type, id);
    requireLeader(loop, d);
    d.log.info("proposing membership change", { change: ConfChangeType[type], member: id });
    const cc: ConfChange = { type, nodeId: id, context: encodePeerContext(peerAddress) };
    return BigInt(await loop.proposeConfChange(cc));
  };
  return {
    getClusterStatus: unary("GetClusterStatus", async (req) => {
      await Promise.resolve();
      return clusterStatus(d, req.includeStateDigest);
    }),
    addLearner: unary("AddLearner", async (req) => {
      if (!/^[^\s]+:\d{1,5}$/.test(req.peerAddress)) throw invalidArgument(`peer_address must be host:port (got ${JSON.stringify(req.peerAddress)})`);
      return create(AddLearnerResponseSchema, { index: await change(ConfChangeType.AddLearner, req.nodeId, req.peerAddress) });
    }),
    promoteLearner: unary("PromoteLearner", async (req) => create(PromoteLearnerResponseSchema, { index: await change(ConfChangeType.PromoteLearner, req.nodeId) })),
    removeNode: unary("RemoveNode", async (req) => create(RemoveNodeResponseSchema, { index: await change(ConfChangeType.RemoveNode, req.nodeId) })),
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
  };
}

/**
 * This node's view. With `withDigest`, the vault's state digest (O(state),
 * synchronous: the index and the digest are read in the same turn of the
 * event loop, so they belong together).
 */
function clusterStatus(d: AdminDeps, withDigest: boolean) {
  const loop = d.loop();
  const digest = withDigest ? { stateDigest: loop.vault.digest(), stateDigestIndex: BigInt(loop.vault.appliedIndex) } : {};
  const members = [...loop.voters.map((id) => [id, MemberKind.VOTER] as const), ...loop.learners.map((id) => [id, MemberKind.LEARNER] as const)];
  return create(GetClusterStatusResponseSchema, {
    clusterId: d.clusterId, nodeId: BigInt(d.nodeId), role: loop.role + 1, leaderId: BigInt(loop.leaderId),
    term: BigInt(loop.term), commitIndex: BigInt(loop.commitIndex), appliedIndex: BigInt(loop.vault.appliedIndex),
    snapshotIndex: BigInt(loop.lastSnapshotIndex),
    members: members.map(([id, kind]) => ({
      nodeId: BigInt(id), peerAddress: loop.peers.get(id) ?? "", kind,
      matchIndex: BigInt(loop.matchIndex(id)), reachable: id === d.nodeId || d.peerReachable(id),
    })),
    ...digest,
  });
}

function memberId(v: bigint): number {
  if (v <= 0n || v > BigInt(Number.MAX_SAFE_INTEGER)) throw invalidArgument(`node_id must be a positive integer below 2^53 (got ${v})`);
  return Number(v);
}

function membership(message: string): RpcFailure {
  return new RpcFailure(status.FAILED_PRECONDITION, message, { reason: ErrorReason.MEMBERSHIP });
}

function checkChange(loop: RaftView, type: ConfChangeType, id: number): void {
  const voter = loop.voters.includes(id);
  const learner = loop.learners.includes(id);
  if (type === ConfChangeType.AddLearner && (voter || learner || loop.peers.has(id))) throw membership(`node ${id} is already a member`);
  if (type === ConfChangeType.PromoteLearner && !learner) throw membership(`node ${id} is not a learner`);
  if (type === ConfChangeType.RemoveNode && !voter && !learner) throw membership(`node ${id} is not a member`);
}

function requireLeader(loop: RaftView, d: AdminDeps): void {
  if (loop.isLeader) return;
  const h = d.leaderHint();
  throw new RpcFailure(status.UNAVAILABLE, `this node is not the leader; send admin calls to node ${h.leaderId}`, {
    reason: h.leaderId === NONE ? ErrorReason.NO_LEADER : ErrorReason.NOT_LEADER, leaderId: BigInt(h.leaderId), leaderAddress: h.leaderAddress,
  });
}
