// The outcome of applying one vault command, and its canonical encoding
// (outcomes are remembered per request id and travel in snapshots).
//
// Encoding (big-endian): u8 tag || fields
//   1 register: u32 version || u16 attempts remaining || digest (32)
//   2 begin:    u64 attempt id || u16 attempts remaining || u32 version
//   3 confirm:  u16 attempts remaining
//   4 delete, 5 announce: nothing
//   0x80 error: u8 code || lp16(message) || u8 has remaining || [u16 remaining]
import { Reader, Writer } from "../../proto/crypto/index.js";
import { InvalidEncodingError } from "../../proto/crypto/index.js";
import { DIGEST_LENGTH } from "../../proto/crypto/index.js";

export type VaultCode =
  | "INVALID_ARGUMENT"
  | "NOT_FOUND"
  | "ALREADY_EXISTS"
  | "FAILED_PRECONDITION"
  | "PERMISSION_DENIED"
  | "RESOURCE_EXHAUSTED";

export type VaultResult =
  | { ok: true; kind: "register"; version: number; attemptsRemaining: number; recordDigest: Uint8Array }
  | { ok: true; kind: "begin"; attemptId: number; attemptsRemaining: number; version: number }
  | { ok: true; kind: "confirm"; attemptsRemaining: number }
  | { ok: true; kind: "delete" }
  | { ok: true; kind: "announce" }
  | { ok: false; code: VaultCode; message: string; attemptsRemaining?: number };

export type VaultError = Extract<VaultResult, { ok: false }>;

/** The canonical gRPC status code (numeric, grpc-js `status`) the server answers for each VaultCode. */
export const GRPC_STATUS: Readonly<Record<VaultCode, number>> = {
  INVALID_ARGUMENT: 3,
  NOT_FOUND: 5,
  ALREADY_EXISTS: 6,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  FAILED_PRECONDITION: 9,
};

/** Stable numbering of VaultCode in encodings; never reorder. */
const CODES: readonly VaultCode[] = [
  "INVALID_ARGUMENT",
  "NOT_FOUND",
  "ALREADY_EXISTS",
  "FAILED_PRECONDITION",
  "PERMISSION_DENIED",
  "RESOURCE_EXHAUSTED",
];

export function vaultError(code: VaultCode, message: string, attemptsRemaining?: number): VaultError {
  return attemptsRemaining === undefined ? { ok: false, code, message } : { ok: false, code, message, attemptsRemaining };
}

const TAG = { register: 1, begin: 2, confirm: 3, delete: 4, announce: 5, error: 0x80 } as const;
const MAX_MESSAGE_BYTES = 4096;

export function encodeResult(r: VaultResult): Uint8Array {
  const w = new Writer();
  if (!r.ok) {
    w.u8(TAG.error).u8(CODES.indexOf(r.code)).str(truncate(r.message));
    return (r.attemptsRemaining === undefined ? w.u8(0) : w.u8(1).u16(r.attemptsRemaining)).bytes();
  }
  w.u8(TAG[r.kind]);
  switch (r.kind) {
    case "register":
      return w.u32(r.version).u16(r.attemptsRemaining).fixed(r.recordDigest).bytes();
    case "begin":
      return w.u64(r.attemptId).u16(r.attemptsRemaining).u32(r.version).bytes();
    case "confirm":
      return w.u16(r.attemptsRemaining).bytes();
    case "delete":
    case "announce":
      return w.bytes();
  }
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
    case TAG.error:
      return readError(r);
    default:
      throw new InvalidEncodingError(`unknown vault result tag ${tag}`);
  }
}

function readError(r: Reader): VaultError {
  const code = CODES[r.u8()];
  if (code === undefined) throw new InvalidEncodingError("unknown vault result code");
  const message = r.str();
  const has = r.u8();
  if (has > 1) throw new InvalidEncodingError("bad attempts-remaining flag in a vault result");
  return vaultError(code, message, has === 1 ? r.u16() : undefined);
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
