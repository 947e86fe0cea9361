// The outcome of applying one vault command, and its canonical encoding
// (outcomes are remembered per request id, in the replicated request table,
// and travel in snapshots: the encoding is a replicated format).
//
// Encoding (big-endian): u8 tag || fields
//   1 register: u32 version || u16 attempts remaining || digest (32)
//   2 begin:    u64 attempt id || u16 attempts remaining || u32 version
//   3 confirm:  u16 attempts remaining
//   4 delete, 5 announce, 6 issuers, 7 bind-shares: nothing
//   0x81 refusal (format 2): u8 reason || lp16(message) || u8 has remaining || [u16 remaining]
//        the code is REASON_CODE[reason]; written for every refusal
//   0x82 refusal (format 3): the fields of format 2 || u64 not before (unix ms); written
//        for a refusal that names when to come back (THROTTLED)
//   0x80 refusal (format 1, before reasons were recorded): u8 code || lp16(message)
//        || u8 has remaining || [u16 remaining]; still decoded (request tables and
//        snapshots written by earlier nodes), written only for a format-1 refusal
//        that was decoded with reason UNRECORDED
import { Reader, Writer } from "../../proto/crypto/index.js";
import { InvalidEncodingError } from "../../proto/crypto/index.js";
import { DIGEST_LENGTH } from "../../proto/crypto/index.js";

export type VaultCode =
  | "INVALID_ARGUMENT"
  | "NOT_FOUND"
  | "ALREADY_EXISTS"
  | "FAILED_PRECONDITION"
  | "PERMISSION_DENIED"
  | "RESOURCE_EXHAUSTED"
  | "UNAUTHENTICATED";

/**
 * Why the vault refused a command, decided where it refuses (records.ts,
 * nodes.ts, dedupe.ts, state-machine.ts). Consumers switch on it; the
 * message is for humans only.
 */
export type RefusalReason =
  /** The payload does not parse, a field is invalid, a share holder is not a voter, an empty entry. */
  | "INVALID_ARGUMENT"
  /** The request id was applied before with other bytes. */
  | "REQUEST_ID_REUSED"
  /** No record for the user (begin, confirm, delete, overwrite). */
  | "RECORD_NOT_FOUND"
  /** A version-1 registration of a user that has a record. */
  | "RECORD_EXISTS"
  /** A begin on a record that is already locked. */
  | "RECORD_LOCKED"
  /** This begin reached the guess limit: it wiped the shares and locked the record (it is applied). */
  | "GUESS_LIMIT_REACHED"
  /** The version named is not the current one (confirm, delete) or not current + 1 (overwrite). */
  | "VERSION_MISMATCH"
  /** The attempt is not pending (never begun, or the record was overwritten or locked since). */
  | "ATTEMPT_NOT_FOUND"
  /** The attempt is not pending and a later confirmation of the record settled it (records.ts). */
  | "ATTEMPT_SUPERSEDED"
  /** A begin bound to a record digest other than the committed record's: nothing counted. */
  | "RECORD_CHANGED"
  /** A reset-key, owner or announcement signature does not verify. */
  | "BAD_SIGNATURE"
  /** An announcement with other keys for a node id already announced. */
  | "NODE_ID_TAKEN"
  /** A begin before the record's throttling delay has passed (throttle.ts): nothing counted; `notBefore` says when. */
  | "THROTTLED"
  /** A begin or register without a valid client token in a cluster that verifies tokens (jwt.ts): nothing counted, nothing remembered. */
  | "TOKEN_INVALID"
  /** A valid client token for another user than the entry's: nothing counted, nothing remembered. */
  | "TOKEN_SUBJECT_MISMATCH";

/**
 * RefusalReason, plus UNRECORDED: a format-1 refusal (stored before reasons
 * were recorded) whose code does not determine its reason. Never produced
 * by apply.
 */
export type VaultReason = RefusalReason | "UNRECORDED";

export type VaultResult =
  | { ok: true; kind: "register"; version: number; attemptsRemaining: number; recordDigest: Uint8Array }
  | { ok: true; kind: "begin"; attemptId: number; attemptsRemaining: number; version: number }
  | { ok: true; kind: "confirm"; attemptsRemaining: number }
  | { ok: true; kind: "delete" }
  | { ok: true; kind: "announce" }
  | { ok: true; kind: "issuers" }
  | { ok: true; kind: "bind-shares" }
  | { ok: false; code: VaultCode; reason: VaultReason; message: string; attemptsRemaining?: number; notBefore?: number };

export type VaultError = Extract<VaultResult, { ok: false }>;

/** The canonical gRPC status code (numeric, grpc-js `status`) the server answers for each VaultCode. */
export const GRPC_STATUS: Readonly<Record<VaultCode, number>> = {
  INVALID_ARGUMENT: 3,
  NOT_FOUND: 5,
  ALREADY_EXISTS: 6,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  FAILED_PRECONDITION: 9,
  UNAUTHENTICATED: 16,
};

/** The code of each reason: a reason determines its code. Part of the format-2 encoding; never change one. */
export const REASON_CODE: Readonly<Record<RefusalReason, VaultCode>> = {
  INVALID_ARGUMENT: "INVALID_ARGUMENT",
  REQUEST_ID_REUSED: "INVALID_ARGUMENT",
  RECORD_NOT_FOUND: "NOT_FOUND",
  RECORD_EXISTS: "ALREADY_EXISTS",
  RECORD_LOCKED: "FAILED_PRECONDITION",
  GUESS_LIMIT_REACHED: "RESOURCE_EXHAUSTED",
  VERSION_MISMATCH: "FAILED_PRECONDITION",
  ATTEMPT_NOT_FOUND: "FAILED_PRECONDITION",
  ATTEMPT_SUPERSEDED: "FAILED_PRECONDITION",
  RECORD_CHANGED: "FAILED_PRECONDITION",
  BAD_SIGNATURE: "PERMISSION_DENIED",
  NODE_ID_TAKEN: "PERMISSION_DENIED",
  THROTTLED: "RESOURCE_EXHAUSTED",
  TOKEN_INVALID: "UNAUTHENTICATED",
  TOKEN_SUBJECT_MISMATCH: "PERMISSION_DENIED",
};

/** Stable numbering of VaultCode in format-1 encodings; never reorder (UNAUTHENTICATED came after format 1: never written in it). */
const CODES: readonly VaultCode[] = [
  "INVALID_ARGUMENT",
  "NOT_FOUND",
  "ALREADY_EXISTS",
  "FAILED_PRECONDITION",
  "PERMISSION_DENIED",
  "RESOURCE_EXHAUSTED",
];

/** Stable numbering of RefusalReason in format-2 encodings; append only, never reorder. */
export const REFUSAL_REASONS: readonly RefusalReason[] = [
  "INVALID_ARGUMENT",
  "REQUEST_ID_REUSED",
  "RECORD_NOT_FOUND",
  "RECORD_EXISTS",
  "RECORD_LOCKED",
  "GUESS_LIMIT_REACHED",
  "VERSION_MISMATCH",
  "ATTEMPT_NOT_FOUND",
  "BAD_SIGNATURE",
  "NODE_ID_TAKEN",
  "ATTEMPT_SUPERSEDED",
  "RECORD_CHANGED",
  "THROTTLED",
  "TOKEN_INVALID",
  "TOKEN_SUBJECT_MISMATCH",
];

/** Every VaultReason, for exhaustive tests of its consumers. */
export const VAULT_REASONS: readonly VaultReason[] = [...REFUSAL_REASONS, "UNRECORDED"];

/** A refusal: its code follows from its reason. */
export function vaultError(reason: RefusalReason, message: string, attemptsRemaining?: number): VaultError {
  return refusal(REASON_CODE[reason], reason, message, attemptsRemaining);
}

function refusal(code: VaultCode, reason: VaultReason, message: string, attemptsRemaining: number | undefined): VaultError {
  return attemptsRemaining === undefined ? { ok: false, code, reason, message } : { ok: false, code, reason, message, attemptsRemaining };
}

const TAG = { register: 1, begin: 2, confirm: 3, delete: 4, announce: 5, issuers: 6, "bind-shares": 7, errorV1: 0x80, errorV2: 0x81, errorV3: 0x82 } as const;
const MAX_MESSAGE_BYTES = 4096;

export function encodeResult(r: VaultResult): Uint8Array {
  if (!r.ok) return encodeRefusal(r);
  const w = new Writer().u8(TAG[r.kind]);
  switch (r.kind) {
    case "register":
      return w.u32(r.version).u16(r.attemptsRemaining).fixed(r.recordDigest).bytes();
    case "begin":
      return w.u64(r.attemptId).u16(r.attemptsRemaining).u32(r.version).bytes();
    case "confirm":
      return w.u16(r.attemptsRemaining).bytes();
    case "delete":
    case "announce":
    case "issuers":
    case "bind-shares":
      return w.bytes();
  }
}

/** Format 2 for every refusal with a reason; format 1 only for an UNRECORDED one (it has none to write). */
function encodeRefusal(r: VaultError): Uint8Array {
  const w = new Writer();
  if (r.reason === "UNRECORDED") w.u8(TAG.errorV1).u8(CODES.indexOf(r.code));
  else w.u8(r.notBefore === undefined ? TAG.errorV2 : TAG.errorV3).u8(REFUSAL_REASONS.indexOf(r.reason));
  w.str(truncate(r.message));
  if (r.attemptsRemaining === undefined) w.u8(0);
  else w.u8(1).u16(r.attemptsRemaining);
  return (r.notBefore === undefined || r.reason === "UNRECORDED" ? w : w.u64(r.notBefore)).bytes();
}

/** Strict inverse of encodeResult; throws InvalidEncodingError on anything else. */
export function decodeResult(bytes: Uint8Array): VaultResult {
  const r = new Reader(bytes, "vault result");
  const out = readResult(r);
  r.end();
  return out;
}

function readResult(r: Reader): VaultResult {
  const tag = r.u8();
  switch (tag) {
    case TAG.register:
      return { ok: true, kind: "register", version: r.u32(), attemptsRemaining: r.u16(), recordDigest: r.fixed(DIGEST_LENGTH) };
    case TAG.begin:
      return { ok: true, kind: "begin", attemptId: safeNumber(r.u64()), attemptsRemaining: r.u16(), version: r.u32() };
    case TAG.confirm:
      return { ok: true, kind: "confirm", attemptsRemaining: r.u16() };
    case TAG.delete:
      return { ok: true, kind: "delete" };
    case TAG.announce:
      return { ok: true, kind: "announce" };
    case TAG.issuers:
      return { ok: true, kind: "issuers" };
    case TAG["bind-shares"]:
      return { ok: true, kind: "bind-shares" };
    case TAG.errorV2:
      return readRefusalV2(r);
    case TAG.errorV3:
      return { ...readRefusalV2(r), notBefore: safeNumber(r.u64()) };
    case TAG.errorV1:
      return readRefusalV1(r);
    default:
      throw new InvalidEncodingError(`unknown vault result tag ${tag}`);
  }
}

function readRefusalV2(r: Reader): VaultError {
  const reason = REFUSAL_REASONS[r.u8()];
  if (reason === undefined) throw new InvalidEncodingError("unknown vault refusal reason");
  return vaultError(reason, r.str(), readRemaining(r));
}

function readRefusalV1(r: Reader): VaultError {
  const code = CODES[r.u8()];
  if (code === undefined) throw new InvalidEncodingError("unknown vault result code");
  return refusal(code, formatOneReason(code), r.str(), readRemaining(r));
}

function readRemaining(r: Reader): number | undefined {
  const has = r.u8();
  if (has > 1) throw new InvalidEncodingError("bad attempts-remaining flag in a vault result");
  return has === 1 ? r.u16() : undefined;
}

/**
 * The reason of a format-1 refusal, from its code alone, where the code
 * determines it for every refusal a request table can hold (a reused
 * request id and an announcement are never remembered). FAILED_PRECONDITION
 * was a locked record, a version mismatch or an attempt not pending: UNRECORDED.
 */
function formatOneReason(code: VaultCode): VaultReason {
  switch (code) {
    case "INVALID_ARGUMENT":
      return "INVALID_ARGUMENT";
    case "NOT_FOUND":
      return "RECORD_NOT_FOUND";
    case "ALREADY_EXISTS":
      return "RECORD_EXISTS";
    case "PERMISSION_DENIED":
      return "BAD_SIGNATURE";
    case "RESOURCE_EXHAUSTED":
      return "GUESS_LIMIT_REACHED";
    case "FAILED_PRECONDITION":
      return "UNRECORDED";
    case "UNAUTHENTICATED": // not in CODES: never decoded from format 1
      return "TOKEN_INVALID";
  }
}

function safeNumber(v: bigint): number {
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new InvalidEncodingError("attempt id is too large");
  return Number(v);
}

/** Messages are short by construction; the cap keeps the encoding bounded whatever they contain. */
function truncate(message: string): string {
  const points = [...message];
  const max = MAX_MESSAGE_BYTES / 4; // UTF-8 needs at most 4 bytes per code point
  return points.length <= max ? message : `${points.slice(0, max).join("")}…`;
}
