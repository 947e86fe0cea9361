// Typed errors of the bkv client. Every failure a caller may want to act on
// has its own class and a stable `code`; the CLI maps codes to exit codes.
// Messages never carry a password, key, share or reset key.
import { status as GrpcStatus, type ServiceError } from "@grpc/grpc-js";
import { BOUND_SHARES_ONLY } from "../../proto/crypto/index.js";
import { ErrorReason } from "../../proto/gen/bkv/v1/status_pb.js";
import { errorDetailOf } from "../../proto/rpc.js";
import { printable } from "./printable.js";

export { printable } from "./printable.js";

export type ClientErrorCode =
  | "RPC"
  | "UNAVAILABLE"
  | "TRANSIENT"
  | "RECORD_NOT_FOUND"
  | "RECORD_EXISTS"
  | "RECORD_LOCKED"
  | "RECORD_CHANGED"
  | "RATE_LIMITED"
  | "NOT_AUTHORIZED"
  | "TOKEN"
  | "ATTEMPT_SUPERSEDED"
  | "THROTTLED"
  | "WRONG_PASSWORD"
  | "RECORD_MISMATCH"
  | "UNVERIFIED_REGISTRATION"
  | "NOT_ENOUGH_EVALUATIONS"
  | "INCONSISTENT_EVALUATIONS"
  | "DESCRIPTOR"
  | "CLUSTER_MISMATCH"
  | "INVALID_INPUT"
  | "KEY_FORMAT"
  | "CLOSED"
  | "ABORTED"
  | "STOPPED"
  | "BACKUP_FORMAT"
  | "BACKUP_WRONG_KEY"
  | "BACKUP_INTEGRITY"
  | "IO";

/** Base class of every error the client throws on purpose. */
export class ClientError extends Error {
  readonly code: ClientErrorCode;
  constructor(code: ClientErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}

/** A gRPC call that failed: the status code's name, the server's message and its ErrorDetail. */
export class RpcError extends ClientError {
  /** Numeric gRPC status code. */
  readonly grpcCode: number;
  /** Its canonical name, e.g. "FAILED_PRECONDITION". */
  readonly codeName: string;
  /** The server's message (grpc-message), never a secret; control characters escaped (printable()). */
  readonly serverMessage: string;
  /** ErrorReason name without prefix (e.g. "NOT_LEADER"), or "UNSPECIFIED". */
  readonly reason: string;
  readonly attemptsRemaining: number | undefined;
  readonly leaderAddress: string | undefined;
  /** With NOT_LEADER: the leader's node id, when the node knows one. */
  readonly leaderId: number | undefined;
  /** The node address the call went to. */
  readonly address: string;
  constructor(init: RpcErrorInit, code: ClientErrorCode = "RPC") {
    const extra = init.attemptsRemaining === undefined ? "" : ` (${init.attemptsRemaining} attempts remaining)`;
    super(code, `${init.method} on ${init.address}: ${statusName(init.grpcCode)}: ${init.serverMessage}${extra}`);
    this.grpcCode = init.grpcCode;
    this.codeName = statusName(init.grpcCode);
    this.serverMessage = init.serverMessage;
    this.reason = init.reason;
    this.attemptsRemaining = init.attemptsRemaining;
    this.leaderAddress = init.leaderAddress;
    this.leaderId = init.leaderId;
    this.address = init.address;
  }
}

export interface RpcErrorInit {
  method: string;
  address: string;
  grpcCode: number;
  serverMessage: string;
  reason: string;
  attemptsRemaining: number | undefined;
  leaderAddress: string | undefined;
  leaderId?: number | undefined;
  /** From ErrorDetail.retry_after_ms (THROTTLED). */
  retryAfterMs?: number | undefined;
}

/**
 * BeginRecovery was refused without counting an attempt: too many attempts
 * on this record without a confirmation, and the throttling delay has not
 * passed. Not a lock and not a quota: the same password works after
 * `retryAfterMs`.
 */
export class ThrottledError extends RpcError {
  readonly retryAfterMs: number;
  constructor(init: RpcErrorInit) {
    super(init, "THROTTLED");
    this.retryAfterMs = init.retryAfterMs ?? 0;
    this.message = `too many attempts on this record without a recovery: try again in ${formatDelay(this.retryAfterMs)} (no attempt was counted; ${init.attemptsRemaining ?? "?"} attempts remaining)`;
  }
}

function formatDelay(ms: number): string {
  const s = Math.ceil(ms / 1000);
  if (s < 120) return `${s} s`;
  if (s < 7200) return `${Math.ceil(s / 60)} min`;
  return `${Math.ceil(s / 3600)} h`;
}

/** No record for this user on the cluster. */
export class RecordNotFoundError extends RpcError {
  constructor(init: RpcErrorInit) {
    super(init, "RECORD_NOT_FOUND");
  }
}

/** A new registration for a user that already has a record (use changePassword). */
export class RecordExistsError extends RpcError {
  constructor(init: RpcErrorInit) {
    super(init, "RECORD_EXISTS");
  }
}

/**
 * The guess limit was reached: the record's shares are wiped for ever. Either
 * a node refused a call for it (`refusal` holds that answer) or a record read
 * showed the record locked (`refusal` undefined).
 */
export class RecordLockedError extends ClientError {
  readonly attemptsRemaining = 0;
  /** The method whose answer showed the lock, e.g. "Evaluate" or "GetRecordInfo". */
  readonly method: string;
  /** The node that answered. */
  readonly address: string;
  /** The node's refusal, when the lock came as a failed call. */
  readonly refusal: RpcError | undefined;
  constructor(method: string, address: string, refusal?: RpcError) {
    super("RECORD_LOCKED", refusal?.message ?? `${method} on ${address}: the record is locked: its guess limit was reached and its shares are wiped`);
    this.method = method;
    this.address = address;
    this.refusal = refusal;
  }
}

/**
 * An admission limit of the node (a per-user or per-client-address rate)
 * refused the call before anything was proposed: RESOURCE_EXHAUSTED with
 * reason RATE_LIMITED. Not a guess limit (that is RecordLockedError). The
 * SDK waits `retryAfterMs` and tries again when that fits in its retry
 * deadline; this is thrown when it does not.
 */
export class RateLimitedError extends RpcError {
  /** From the `retry-after-ms` trailer; 1000 when the node sent none. */
  readonly retryAfterMs: number;
  constructor(init: RpcErrorInit, retryAfterMs: number) {
    super(init, "RATE_LIMITED");
    this.retryAfterMs = retryAfterMs;
  }
}

/**
 * The node refused the caller: UNAUTHENTICATED (no token, or an expired,
 * badly signed, unknown-issuer or wrong-audience one) or PERMISSION_DENIED
 * (a token for another user). Nothing was proposed. `codeName` says which.
 */
export class NotAuthorizedError extends RpcError {
  constructor(init: RpcErrorInit) {
    super(init, "NOT_AUTHORIZED");
  }
}

/** The token provider failed or returned no usable token; no call was made. */
export class TokenError extends ClientError {
  constructor(message: string, options?: { cause?: unknown }) {
    super("TOKEN", message, options);
  }
}

/**
 * A try that may succeed later, decided by the client itself (never a
 * server's answer): e.g. a node that has not applied a write yet. withRetries
 * retries it like a transient server status.
 */
export class TransientError extends ClientError {
  constructor(message: string) {
    super("TRANSIENT", message);
  }
}

/**
 * BeginRecovery was refused without counting an attempt: the record changed
 * (overwritten, or deleted and registered again) since it was read. The SDK
 * re-reads and begins once more; this is thrown when the record changed again.
 */
export class RecordChangedError extends RpcError {
  constructor(init: RpcErrorInit) {
    super(init, "RECORD_CHANGED");
  }
}

/**
 * A concurrent recovery of the same record confirmed first and so superseded
 * this recovery's attempt before t nodes evaluated it, twice: the first time
 * the SDK warned (NEW_ATTEMPT) and began a fresh attempt, which was superseded
 * too. Both attempts were counted and then reset by the winners'
 * confirmations. Trying again is safe.
 */
export class AttemptSupersededError extends ClientError {
  /** The node's refusal, e.g. "attempt 12 was superseded by a later confirmation of this record". */
  readonly serverMessage: string;
  constructor(serverMessage: string, retried: boolean) {
    const again = retried ? "; the fresh attempt begun after the first supersession was superseded too" : "";
    super("ATTEMPT_SUPERSEDED",
      `a concurrent recovery of this record confirmed first and settled this recovery's attempt before enough nodes evaluated it (${serverMessage})${again}: try again`);
    this.serverMessage = serverMessage;
  }
}

/** Retries were exhausted: no node (or no leader) answered before the deadline. */
export class UnavailableError extends ClientError {
  readonly attempts: number;
  readonly lastError: unknown;
  constructor(operation: string, attempts: number, lastError: unknown) {
    const last = lastError instanceof Error ? lastError.message : String(lastError);
    super("UNAVAILABLE", `${operation}: cluster unavailable after ${attempts} tries; last error: ${last}`, { cause: lastError });
    this.attempts = attempts;
    this.lastError = lastError;
  }
}

/** The password did not open the record. The attempt was counted. */
export class WrongPasswordError extends ClientError {
  readonly attemptsRemaining: number;
  /** False when exactly t nodes answered: a faulty node would look the same. */
  readonly conclusive: boolean;
  constructor(attemptsRemaining: number, conclusive: boolean) {
    const hint = conclusive ? "" : " (or a faulty node among exactly t answers)";
    super("WRONG_PASSWORD", `wrong password${hint}: ${attemptsRemaining} attempts remaining`);
    this.attemptsRemaining = attemptsRemaining;
    this.conclusive = conclusive;
  }
}

/** What the cluster holds differs from what was sent, or nodes disagree on a record. */
export class RecordMismatchError extends ClientError {
  constructor(message: string) {
    super("RECORD_MISMATCH", message);
  }
}

/** The record was committed but fewer than t+1 nodes confirmed its digest before the deadline. */
export class UnverifiedRegistrationError extends ClientError {
  readonly confirmed: number;
  readonly needed: number;
  constructor(confirmed: number, needed: number, detail: string) {
    super("UNVERIFIED_REGISTRATION",
      `registration committed but only ${confirmed} of the ${needed} nodes needed confirmed its digest (${detail}); ` +
      "do not rely on it: run a recovery to check it");
    this.confirmed = confirmed;
    this.needed = needed;
  }
}

/** Fewer than t nodes gave a usable evaluation. `failures` says why, per node. */
export class NotEnoughEvaluationsError extends ClientError {
  readonly failures: ReadonlyMap<number, string>;
  constructor(have: number, need: number, failures: ReadonlyMap<number, string>) {
    const why = [...failures].map(([id, reason]) => `node ${id}: ${reason}`).join("; ");
    super("NOT_ENOUGH_EVALUATIONS", `need ${need} evaluations, got ${have}${why ? ` (${why})` : ""}`);
    this.failures = failures;
  }
}

/**
 * More than t answers and no t of them open the record, but no t+1 agree
 * either: a wrong password with a faulty node among the answers, or several
 * faulty nodes. The attempt was counted.
 */
export class InconsistentEvaluationsError extends ClientError {
  readonly attemptsRemaining: number;
  constructor(attemptsRemaining: number) {
    super("INCONSISTENT_EVALUATIONS",
      `the evaluations disagree and none opens the record: wrong password, or faulty nodes; ${attemptsRemaining} attempts remaining`);
    this.attemptsRemaining = attemptsRemaining;
  }
}

/** A cluster descriptor that does not load or validate; `field` names the culprit. */
export class DescriptorError extends ClientError {
  readonly field: string;
  constructor(field: string, problem: string) {
    super("DESCRIPTOR", `cluster descriptor: ${field}: ${problem}`);
    this.field = field;
  }
}

/** One pinned node that announces another cluster, or other keys, than the pinned descriptor names. */
export interface DisowningNode {
  readonly nodeId: number;
  readonly address: string;
  /** What differs, e.g. `cluster id "b" (pinned: "a")`; the node's text with control characters escaped. */
  readonly why: string;
}

/**
 * A majority of the pinned nodes announce another cluster id or other keys
 * for themselves than the pinned descriptor (another cluster's descriptor,
 * or one from before the cluster was created again at the same addresses).
 * Thrown before anything is sent that counts an attempt or stores a record.
 */
export class ClusterMismatchError extends ClientError {
  readonly clusterId: string;
  readonly nodes: readonly DisowningNode[];
  constructor(clusterId: string, nodes: readonly DisowningNode[]) {
    const list = nodes.map((n) => `node ${n.nodeId} (${n.address}): ${n.why}`).join("; ");
    super("CLUSTER_MISMATCH", `the nodes are not the pinned cluster ${JSON.stringify(clusterId)}: ${list}; ` +
      "nothing was sent that counts an attempt or stores a record: fetch the cluster's current descriptor (bkv cluster fetch) and check its keys out of band");
    this.clusterId = clusterId;
    this.nodes = nodes;
  }
}

/** A caller argument out of range (user id, guess limit, threshold, key length...). */
export class InvalidInputError extends ClientError {
  constructor(message: string) {
    super("INVALID_INPUT", message);
  }
}

/** A backup key in text form that is not 64 hex digits. Never echoes the input. */
export class KeyFormatError extends ClientError {
  constructor(message: string) {
    super("KEY_FORMAT", message);
  }
}

/** The canonical name of a gRPC status code. */
export function statusName(code: number): string {
  return (GrpcStatus as unknown as Record<number, string>)[code] ?? `CODE_${code}`;
}

/** Whether an error is a grpc-js ServiceError (a call's failure). */
export function isServiceError(err: unknown): err is ServiceError {
  return err instanceof Error && typeof (err as Partial<ServiceError>).code === "number" && "metadata" in err;
}

/** The `retry-after-ms` trailer of an admission refusal (1000 when absent or unreadable). */
function retryAfterOf(err: ServiceError): number {
  const v = Number(err.metadata?.get("retry-after-ms")[0]);
  return Number.isSafeInteger(v) && v > 0 ? v : 1000;
}

/** Turns a grpc-js failure into the typed client error for its status and reason. */
export function rpcErrorFrom(err: ServiceError, method: string, address: string): RpcError | RecordLockedError {
  // A RESOURCE_EXHAUSTED with attempts_remaining 0 is the guess limit (RECORD_LOCKED); RATE_LIMITED never carries attempts.
  const detail = errorDetailOf(err);
  const init: RpcErrorInit = {
    method,
    address,
    grpcCode: err.code,
    // A node's text reaches terminals (the CLI prints messages): no control characters.
    serverMessage: printable(err.details || err.message),
    reason: ErrorReason[detail?.reason ?? ErrorReason.UNSPECIFIED] ?? "UNSPECIFIED",
    attemptsRemaining: detail?.attemptsRemaining,
    leaderAddress: detail?.leaderAddress ? detail.leaderAddress : undefined,
    leaderId: detail?.leaderId ? Number(detail.leaderId) : undefined,
    retryAfterMs: detail?.retryAfterMs === undefined ? undefined : Number(detail.retryAfterMs),
  };
  if (init.reason === "THROTTLED") return new ThrottledError(init);
  const exhausted = err.code === GrpcStatus.RESOURCE_EXHAUSTED && init.attemptsRemaining === 0;
  if (init.reason === "RECORD_LOCKED" || exhausted) {
    return new RecordLockedError(method, address, new RpcError(init));
  }
  if (init.reason === "RECORD_NOT_FOUND" || err.code === GrpcStatus.NOT_FOUND && init.reason === "UNSPECIFIED") {
    return new RecordNotFoundError(init);
  }
  if (err.code === GrpcStatus.ALREADY_EXISTS) return new RecordExistsError(init);
  if (init.reason === "RATE_LIMITED") return new RateLimitedError(init, retryAfterOf(err));
  // A vault refusal with PERMISSION_DENIED always names its reason (BAD_SIGNATURE, MEMBERSHIP); the token check names none.
  if (err.code === GrpcStatus.UNAUTHENTICATED || (err.code === GrpcStatus.PERMISSION_DENIED && init.reason === "UNSPECIFIED")) return new NotAuthorizedError(init);
  if (init.reason === "RECORD_CHANGED") return new RecordChangedError(init);
  return new RpcError(init);
}

/**
 * Whether a failed ConfirmRecovery leaves an opened key worth returning (with
 * a CONFIRM_UNAVAILABLE warning): the cluster stayed unavailable, one node
 * refused it as locked (no honest node does), or the token was refused or
 * could not be had (nothing was proposed). The attempt keeps counting.
 */
export function confirmNotCommitted(err: unknown): err is UnavailableError | RecordLockedError | NotAuthorizedError | TokenError {
  return err instanceof UnavailableError || err instanceof RecordLockedError || err instanceof NotAuthorizedError || err instanceof TokenError;
}

/**
 * Whether a registration was refused because the cluster does not take
 * bound shares yet: an upgraded node's client port says so
 * (BOUND_SHARES_NOT_ACTIVE); a node of the release before them, which
 * cannot read a bound share, refuses it as INVALID_ARGUMENT with its
 * decoder's words (that release's text, which no longer changes).
 */
export function bindingNotTaken(err: unknown): boolean {
  if (!(err instanceof RpcError)) return false;
  return err.reason === "BOUND_SHARES_NOT_ACTIVE" || (err.reason === "INVALID_ARGUMENT" && err.serverMessage.includes("wrapped share has unsupported version 2"));
}

/** Whether a registration with unbound shares was refused because the cluster takes bound ones only (activated meanwhile). */
export function unboundNotTaken(err: unknown): boolean {
  return err instanceof RpcError && err.reason === "INVALID_ARGUMENT" && err.serverMessage.includes(BOUND_SHARES_ONLY);
}
