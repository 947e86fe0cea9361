// Mapping of every failure a service handler can meet to a canonical gRPC
// status, a clear message (never a secret) and a bkv.v1.ErrorDetail.
import { status, type ServerErrorResponse } from "@grpc/grpc-js";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { ProtocolError } from "../../proto/crypto/index.js";
import { ErrorReason, type ErrorDetailSchema } from "../../proto/gen/bkv/v1/status_pb.js";
import { errorWithDetail } from "../../proto/rpc.js";
import { GRPC_STATUS, type VaultError, type VaultReason } from "../vault/index.js";
import { HsmError } from "../hsm/index.js";
import { NONE } from "../raft/index.js";
import { ProposalError } from "./raft-loop.js";
import { AuthError } from "./auth.js";
import { AdmissionRefused } from "./admission.js";

type Detail = MessageInitShape<typeof ErrorDetailSchema>;

/** A failure with its status already chosen. */
export class RpcFailure extends Error {
  override readonly name = "RpcFailure";
  constructor(readonly code: status, message: string, readonly detail?: Detail, readonly trailers: Readonly<Record<string, string>> = {}) {
    super(message);
  }
}

/** The trailer of an admission refusal: milliseconds before the call may be tried again. */
export const RETRY_AFTER_TRAILER = "retry-after-ms";

export function invalidArgument(message: string): RpcFailure {
  return new RpcFailure(status.INVALID_ARGUMENT, message, { reason: ErrorReason.INVALID_ARGUMENT });
}

export interface LeaderHint {
  readonly leaderId: number;
  readonly leaderAddress: string;
  readonly self: number;
}

/** The status of a refused vault command: the code from the vault's code, the reason from the vault's reason. */
export function fromVaultError(e: VaultError, now = Date.now()): RpcFailure {
  const detail: Detail = {
    reason: vaultReason(e.reason),
    ...(e.attemptsRemaining === undefined ? {} : { attemptsRemaining: e.attemptsRemaining }),
    ...(e.notBefore === undefined ? {} : { retryAfterMs: BigInt(Math.max(0, e.notBefore - now)) }),
  };
  return new RpcFailure(GRPC_STATUS[e.code], e.message, detail);
}

/**
 * The ErrorReason of each vault refusal reason: a total switch (a new
 * VaultReason does not compile until it is mapped). Where status.proto has
 * no exact value, the nearest one (the status code tells them apart).
 */
export function vaultReason(reason: VaultReason): ErrorReason {
  switch (reason) {
    case "INVALID_ARGUMENT":
      return ErrorReason.INVALID_ARGUMENT;
    case "REQUEST_ID_REUSED":
      return ErrorReason.REQUEST_ID_REUSED;
    case "RECORD_NOT_FOUND":
      return ErrorReason.RECORD_NOT_FOUND;
    case "RECORD_EXISTS":
      // No RECORD_EXISTS in status.proto: version 1 is not current + 1 (status ALREADY_EXISTS).
      return ErrorReason.VERSION_MISMATCH;
    case "RECORD_LOCKED":
    case "GUESS_LIMIT_REACHED":
      return ErrorReason.RECORD_LOCKED;
    case "VERSION_MISMATCH":
      return ErrorReason.VERSION_MISMATCH;
    case "ATTEMPT_NOT_FOUND":
      return ErrorReason.ATTEMPT_NOT_FOUND;
    case "ATTEMPT_SUPERSEDED":
      return ErrorReason.ATTEMPT_SUPERSEDED;
    case "RECORD_CHANGED":
      return ErrorReason.RECORD_CHANGED;
    case "BAD_SIGNATURE":
      return ErrorReason.BAD_SIGNATURE;
    case "NODE_ID_TAKEN":
      // No NODE_ID_TAKEN in status.proto: node ids are cluster membership.
      return ErrorReason.MEMBERSHIP;
    case "THROTTLED":
      return ErrorReason.THROTTLED;
    case "TOKEN_INVALID":
    case "TOKEN_SUBJECT_MISMATCH":
      // As at the client port (auth.ts): the status code (UNAUTHENTICATED, PERMISSION_DENIED) says it.
    case "UNRECORDED":
      return ErrorReason.UNSPECIFIED;
  }
}

/** The status of a proposal that did not complete: always retryable (UNAVAILABLE). */
export function fromProposalError(e: ProposalError, hint: LeaderHint): RpcFailure {
  const known = hint.leaderId !== NONE && hint.leaderId !== hint.self;
  const reason = e.reason === "DROPPED" ? ErrorReason.OVERLOADED
    : e.reason === "NO_LEADER" || hint.leaderId === NONE ? ErrorReason.NO_LEADER
    : known ? ErrorReason.NOT_LEADER : ErrorReason.UNSPECIFIED;
  const where = known ? ` (leader: node ${hint.leaderId} at ${hint.leaderAddress || "unknown address"})` : "";
  return new RpcFailure(status.UNAVAILABLE, `${e.message}${where}`, {
    reason, leaderId: BigInt(hint.leaderId), leaderAddress: known ? hint.leaderAddress : "",
  });
}

export function fromHsmError(e: HsmError): RpcFailure {
  switch (e.code) {
    case "INVALID_POINT":
    case "INVALID_INPUT":
    case "WRAPPED_KEY_INVALID":
    case "SHARE_MISMATCH":
      return new RpcFailure(status.FAILED_PRECONDITION, `this node's share of the record cannot be evaluated: ${e.message}`, { reason: ErrorReason.UNSPECIFIED });
    default:
      return new RpcFailure(status.UNAVAILABLE, `this node's HSM failed (${e.code}); ask another node`, { reason: ErrorReason.HSM_UNAVAILABLE });
  }
}

/** An admission refusal: RESOURCE_EXHAUSTED, reason RATE_LIMITED (never RECORD_LOCKED: a quota, not a guess limit). */
export function fromAdmissionRefused(e: AdmissionRefused): RpcFailure {
  return new RpcFailure(status.RESOURCE_EXHAUSTED, e.message, { reason: ErrorReason.RATE_LIMITED }, { [RETRY_AFTER_TRAILER]: String(e.retryAfterMs) });
}

/** Any failure → the grpc-js error object to hand to the callback. */
export function toServiceError(err: unknown, hint: () => LeaderHint, onInternal: (err: unknown) => void): ServerErrorResponse {
  let f: RpcFailure;
  if (err instanceof RpcFailure) f = err;
  else if (err instanceof ProposalError) f = fromProposalError(err, hint());
  else if (err instanceof ProtocolError) f = invalidArgument(err.message);
  else if (err instanceof HsmError) f = fromHsmError(err);
  else if (err instanceof AuthError) f = new RpcFailure(status[err.code], err.message);
  else if (err instanceof AdmissionRefused) f = fromAdmissionRefused(err);
  else {
    onInternal(err);
    f = new RpcFailure(status.INTERNAL, "internal error (see the node's log)");
  }
  const e = errorWithDetail(f.code, f.message, f.detail);
  for (const [k, v] of Object.entries(f.trailers)) e.metadata.set(k, v);
  return e;
}
