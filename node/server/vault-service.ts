// VaultService (proto/bkv/v1/vault.proto) on top of a RaftLoop and the node's
// HSM. Every call passes the ClientGate (auth.ts: admission limits and the
// caller's token) and every request field is validated (proto/crypto +
// node/vault validateCommand) before anything is proposed; a mutating call
// on a follower is proposed there and forwarded to the leader by Raft.
import { create } from "@bufbuild/protobuf";
import { type Metadata, status } from "@grpc/grpc-js";
import {
  type RegistrationRecord, holdsBoundShare, validateUserId,
} from "../../proto/crypto/index.js";
import {
  BeginRecoveryResponseSchema, ConfirmRecoveryResponseSchema, DeleteResponseSchema, EvaluateResponseSchema,
  GetClusterDescriptorResponseSchema, GetRecordInfoResponseSchema, RegisterResponseSchema, type RegisterRequest,
  type VaultService,
} from "../../proto/gen/bkv/v1/vault_pb.js";
import { ErrorReason } from "../../proto/gen/bkv/v1/status_pb.js";
import type { ImplementationOf } from "../../proto/rpc.js";
import { type Command, type RecordView, type VaultResult, encodeCommand, vaultError } from "../vault/index.js";
import { type EvaluatedAttempt, type EvaluationLedger, epochOf } from "../storage/index.js";
import type { NodeHsm } from "../hsm/index.js";
import { RpcFailure, fromVaultError, invalidArgument, type LeaderHint } from "./errors.js";
import { unaryHandler } from "./handlers.js";
import { TurnQueue } from "./turn-queue.js";
import type { VaultLoop } from "./raft-view.js";
import type { Logger } from "./log.js";
import type { Metrics } from "./metrics.js";
import type { ClientGate } from "./auth.js";

export interface VaultServiceDeps {
  readonly nodeId: number;
  readonly clusterId: string;
  readonly threshold: number;
  readonly loop: () => VaultLoop;
  readonly hsm: NodeHsm;
  /** This node's count of the evaluations it released per record epoch (node/storage/evaluation-ledger.ts). */
  readonly ledger: Pick<EvaluationLedger, "admit">;
  readonly log: Logger;
  readonly metrics: Metrics;
  readonly leaderHint: () => LeaderHint;
  /** How long Evaluate waits for this node to apply the attempt, and a linearizable read for its read index. */
  readonly evaluateWaitMs: number;
  /** Authentication and admission limits, checked before each handler. */
  readonly gate: ClientGate;
}

export function vaultService(d: VaultServiceDeps): ImplementationOf<typeof VaultService> {
  const unary = handlerFactory(d);
  return {
    register: unary("Register", async (req, metadata) => {
      const c = registerCommand(req);
      refuseInactiveBoundShares(d, c.record);
      const r = ok(await propose(d, withToken(d, c, metadata)), "register");
      return create(RegisterResponseSchema, { version: r.version, attemptsRemaining: r.attemptsRemaining, recordDigest: r.recordDigest });
    }),
    beginRecovery: unary("BeginRecovery", async (req, metadata) => {
      const c: Command = {
        kind: "begin", requestId: req.requestId, user: req.userId, blinded: req.blindedElement,
        ...(req.recordDigest.length === 0 ? {} : { recordDigest: req.recordDigest }),
      };
      const r = ok(await propose(d, withToken(d, c, metadata)), "begin");
      return create(BeginRecoveryResponseSchema, { attemptId: BigInt(r.attemptId), attemptsRemaining: r.attemptsRemaining, version: r.version });
    }),
    confirmRecovery: unary("ConfirmRecovery", async (req) => {
      const c: Command = {
        kind: "confirm", requestId: req.requestId, user: req.userId, version: req.version,
        attemptId: safeId(req.attemptId, "attempt_id"), signature: req.signature,
      };
      const r = ok(await propose(d, c), "confirm");
      return create(ConfirmRecoveryResponseSchema, { attemptsRemaining: r.attemptsRemaining });
    }),
    delete: unary("Delete", async (req) => {
      const c: Command = { kind: "delete", requestId: req.requestId, user: req.userId, version: req.version, signature: req.ownerSignature };
      ok(await propose(d, c), "delete");
      return create(DeleteResponseSchema, {});
    }),
    getRecordInfo: unary("GetRecordInfo", async (req) => {
      checkUser(req.userId);
      await readPoint(d, req.stale);
      const loop = d.loop();
      const view = loop.vault.getRecord(req.userId);
      if (view === undefined) throw notFound(req.userId);
      const rec = view.record;
      return create(GetRecordInfoResponseSchema, {
        userId: rec.user, version: rec.version, threshold: rec.threshold, guessLimit: rec.guessLimit,
        attemptsRemaining: view.attemptsRemaining, locked: view.locked, salt: rec.salt,
        scryptParams: { n: rec.scrypt.N, r: rec.scrypt.r, p: rec.scrypt.p },
        ciphertext: rec.ciphertext, resetPublicKey: rec.resetPublicKey,
        publicShares: rec.shares.map((s) => ({ nodeId: BigInt(s.nodeId), publicShare: s.publicShare })),
        recordDigest: view.digest, appliedIndex: BigInt(loop.vault.appliedIndex),
      });
    }),
    evaluate: unary("Evaluate", (req) => evaluate(d, req.userId, req.attemptId)),
    getClusterDescriptor: unary("GetClusterDescriptor", async (req) => {
      await readPoint(d, req.stale);
      const loop = d.loop();
      const voters = new Set(loop.voters);
      const nodes = loop.vault.nodes().filter((n) => voters.has(n.nodeId)).map((n) => ({
        nodeId: BigInt(n.nodeId), address: n.clientAddress, agreementPublicKey: n.agreementPublicKey,
        identityPublicKey: n.identityPublicKey, signature: n.signature,
      }));
      return create(GetClusterDescriptorResponseSchema, { descriptor: { clusterId: d.clusterId, threshold: d.threshold, nodes } });
    }),
  };
}

/**
 * The client port's admissions and validations run at most this long per event-loop turn (TurnQueue):
 * a burst of calls is spread over turns, with the Ready loop's and the answers' turns between.
 */
const PORT_TURN_MS = 10;

/** Wraps an async handler: the gate first, metrics, and every failure mapped to a status with ErrorDetail. */
function handlerFactory(d: VaultServiceDeps) {
  return unaryHandler({
    turns: new TurnQueue(PORT_TURN_MS),
    leaderHint: d.leaderHint, log: d.log, record: (method, code, ms) => d.metrics.request(method, code, ms),
    // Authentication and admission before anything else (node/server/auth.ts, admission.ts): nothing is proposed for a
    // refused call. A user id no token can name (empty, too long) is bad input, said as such before the token is read.
    admit: async (call) => {
      const user = requestUser(call.request);
      if (user !== undefined) checkUser(user);
      await d.gate.admit(call.getPeer(), call.metadata, user);
    },
  });
}

/** The user a request concerns: every VaultService request but GetClusterDescriptor's has a user_id. */
function requestUser(req: unknown): string | undefined {
  const user = (req as { userId?: unknown }).userId;
  return typeof user === "string" ? user : undefined;
}

/**
 * A register or begin carries the caller's token, which every node verifies
 * again on apply against the issuer keys in the replicated state (node/vault
 * jwt.ts). The gate verified it against the same keys before the handler ran.
 */
function withToken(d: VaultServiceDeps, c: Extract<Command, { kind: "register" | "begin" }>, metadata: Metadata): Command {
  const token = d.gate.bearer(metadata);
  return token === undefined ? c : { ...c, token };
}

async function propose(d: VaultServiceDeps, c: Command): Promise<VaultResult> {
  let data: Uint8Array;
  try {
    data = encodeCommand(c); // validates first (validateCommand): a point is decoded once here, not twice
  } catch (err) {
    throw invalidArgument(err instanceof Error ? err.message : String(err));
  }
  const requestId = c.kind === "announce" ? new Uint8Array(0) : c.requestId;
  d.metrics.proposals.inc({ kind: c.kind });
  return d.loop().propose(requestId, data);
}

type Ok<K extends string> = Extract<VaultResult, { ok: true; kind: K }>;

function ok<K extends VaultResult extends infer R ? R extends { ok: true; kind: infer X extends string } ? X : never : never>(r: VaultResult, kind: K): Ok<K> {
  if (!r.ok) throw fromVaultError(r);
  if (r.kind !== kind) throw new RpcFailure(status.INVALID_ARGUMENT, `the request id was already used for a ${r.kind} request`, { reason: ErrorReason.REQUEST_ID_REUSED });
  return r as Ok<K>;
}

function registerCommand(req: RegisterRequest): Extract<Command, { kind: "register" }> {
  const sp = req.scryptParams;
  if (sp === undefined) throw invalidArgument("scrypt_params is required");
  const record: RegistrationRecord = {
    user: req.userId, version: req.version, threshold: req.threshold, guessLimit: req.guessLimit,
    shares: req.shares.map((s, i) => ({ nodeId: safeId(s.nodeId, `shares[${i}].node_id`), publicShare: s.publicShare, wrappedShare: s.wrappedShare })),
    ciphertext: req.ciphertext, resetPublicKey: req.resetPublicKey, salt: req.salt, scrypt: { N: sp.n, r: sp.r, p: sp.p },
  };
  return { kind: "register", requestId: req.requestId, record, ownerSignature: req.ownerSignature };
}

/**
 * A state from before bound shares takes unbound ones only until the
 * activation entry; apply would refuse a bound share as that release's
 * decoder did (INVALID_ARGUMENT). Refused here first, with its own reason,
 * which the SDK answers by registering unbound shares; nothing is proposed.
 */
function refuseInactiveBoundShares(d: VaultServiceDeps, record: RegistrationRecord): void {
  if (d.loop().vault.boundSharesOnly || !holdsBoundShare(record)) return;
  throw new RpcFailure(status.FAILED_PRECONDITION, "this cluster has not activated bound shares (wrap blob v2) yet: register unbound shares (v1), or ask an operator to run bkv admin require-bound-shares once every node is upgraded", { reason: ErrorReason.BOUND_SHARES_NOT_ACTIVE });
}

function safeId(v: bigint, field: string): number {
  if (v <= 0n || v > BigInt(Number.MAX_SAFE_INTEGER)) throw invalidArgument(`${field} must be a positive integer below 2^53 (got ${v})`);
  return Number(v);
}

/** A linearizable read waits for a ReadIndex applied here (ProposalError → UNAVAILABLE with the leader hint); a stale one reads at once. */
async function readPoint(d: VaultServiceDeps, stale: boolean): Promise<void> {
  if (stale) await Promise.resolve();
  else await d.loop().readBarrier(d.evaluateWaitMs);
}

function checkUser(user: string): void {
  try {
    validateUserId(user);
  } catch (err) {
    throw invalidArgument(`user_id: ${(err as Error).message}`);
  }
}

function notFound(user: string): RpcFailure {
  return new RpcFailure(status.NOT_FOUND, `user ${JSON.stringify(user.slice(0, 64))} has no record`, { reason: ErrorReason.RECORD_NOT_FOUND });
}

/**
 * DESIGN §5 recovery step 2: only for an attempt this node's own applied
 * state holds; waits up to evaluateWaitMs for the attempt's index to apply.
 */
async function evaluate(d: VaultServiceDeps, user: string, attemptIdWire: bigint) {
  checkUser(user);
  const attemptId = safeId(attemptIdWire, "attempt_id");
  // The client asks every share holder at once: on the leader, send the
  // other nodes the commit index their Evaluate waits for, held or not.
  d.loop().sendHeldCommits();
  if (!(await d.loop().waitApplied(attemptId, d.evaluateWaitMs))) throw await notApplied(d, user, attemptId);
  const vault = d.loop().vault;
  const view = vault.getRecord(user);
  if (view === undefined) throw notFound(user);
  if (view.locked) {
    throw new RpcFailure(status.FAILED_PRECONDITION, "the record is locked: its guess limit was reached and its shares are destroyed", { reason: ErrorReason.RECORD_LOCKED, attemptsRemaining: 0 });
  }
  const pending = vault.pendingAttempt(user, attemptId);
  if (pending === undefined) throw fromVaultError(vault.whyNotPending(user, attemptId) ?? vaultError("ATTEMPT_NOT_FOUND", `attempt ${attemptId} is not pending`));
  const share = view.record.shares.find((s) => s.nodeId === d.nodeId);
  if (share === undefined) {
    throw new RpcFailure(status.FAILED_PRECONDITION, `node ${d.nodeId} holds no share of this record`, { reason: ErrorReason.UNSPECIFIED, attemptsRemaining: view.attemptsRemaining });
  }
  await admitEvaluation(d, user, view, { attemptId, blinded: pending.blinded });
  const t0 = performance.now();
  const { evaluated, signature } = await d.hsm.evaluateSigned(share.wrappedShare, pending.blinded, share.publicShare, {
    clusterId: d.clusterId, user, version: pending.version, attemptId, nodeId: d.nodeId,
  });
  d.metrics.hsmEvaluation.observe((performance.now() - t0) / 1000);
  return create(EvaluateResponseSchema, {
    nodeId: BigInt(d.nodeId), blindedElement: pending.blinded, evaluatedElement: evaluated, signature,
    version: pending.version, attemptsRemaining: view.attemptsRemaining,
  });
}

/**
 * An attempt this node did not apply in time. A client learns an attempt id
 * only once its begin committed, so an id above the leader's read index
 * names no attempt, now or later: ATTEMPT_NOT_FOUND (a retry cannot help).
 * Else this node is behind: UNAVAILABLE ATTEMPT_NOT_APPLIED, retry shortly
 * or ask another share holder; also when no leader answers the read.
 */
async function notApplied(d: VaultServiceDeps, user: string, attemptId: number): Promise<RpcFailure> {
  // An index this node already knows committed needs no round to the leader: the read index is at least it.
  const known = d.loop().commitIndex;
  const committed = attemptId <= known ? known : await d.loop().readIndex(d.evaluateWaitMs).catch(() => null);
  if (committed !== null && attemptId > committed) {
    return fromVaultError(vaultError("ATTEMPT_NOT_FOUND", `attempt ${attemptId} for ${JSON.stringify(user.slice(0, 64))} was never begun: the cluster has committed up to index ${committed} (an attempt id is its begin's index)`));
  }
  return new RpcFailure(status.UNAVAILABLE, `this node has not applied attempt ${attemptId} yet; retry shortly`, { reason: ErrorReason.ATTEMPT_NOT_APPLIED });
}

/**
 * Records the evaluation in this node's ledger (durably) before the HSM
 * releases it; refuses one past the record's guess limit in its epoch
 * (epochOf: its digest and the attempt its last confirmation confirmed),
 * whatever the applied state says (a state that forgot counted attempts, or
 * a confirmation replayed at another index: docs/threat-model.md, "Closed: a
 * state fed to one node takes its counters back").
 */
export async function admitEvaluation(d: VaultServiceDeps, user: string, view: RecordView, attempt: EvaluatedAttempt): Promise<void> {
  const limit = view.record.guessLimit;
  const epoch = epochOf(view);
  const verdict = await Promise.resolve().then(() => d.ledger.admit(epoch, attempt, limit)).catch((err: unknown) => {
    d.log.error("the evaluation ledger cannot record an evaluation: none is released", { error: (err as Error).message });
    throw new RpcFailure(status.UNAVAILABLE, "this node cannot record the evaluation; ask the other share holders", { reason: ErrorReason.UNSPECIFIED });
  });
  if (verdict === "admitted" || verdict === "again") return;
  d.metrics.evaluationsRefused.inc({ reason: "ledger" });
  if (verdict === "behind") {
    d.log.error("evaluation refused: this node already evaluated the record after a later confirmation than its state holds (its state was taken back: a rogue member?)", {
      user: user.slice(0, 64), attemptId: attempt.attemptId, confirmedAt: view.confirmedAt, confirmedAttempt: view.confirmedAttempt,
    });
    throw new RpcFailure(status.FAILED_PRECONDITION, `node ${d.nodeId} already evaluated this record after a later confirmation than its state holds: it evaluates no more in the earlier one`, { reason: ErrorReason.UNSPECIFIED });
  }
  d.log.error("evaluation refused: this node already evaluated the record's guess limit of attempts since its last confirmation, though its state says attempts remain (its state was taken back: a rogue member?)", {
    user: user.slice(0, 64), attemptId: attempt.attemptId, guessLimit: limit, attemptsRemaining: view.attemptsRemaining, confirmedAt: view.confirmedAt, confirmedAttempt: view.confirmedAttempt,
  });
  throw new RpcFailure(status.FAILED_PRECONDITION, `node ${d.nodeId} already evaluated ${limit} attempts of this record since its last confirmation: it evaluates no more until the owner confirms a recovery`, { reason: ErrorReason.UNSPECIFIED });
}
