// The vault's Raft entry payloads: a versioned, canonical binary encoding of
// the five commands (docs/vault.md §1).
//
//   "bkvC" || u8 format (1) || u8 kind || body
//   register (1): request id (16) || lp16(record encoding v1) || lp16(owner signature: 0 or 64 bytes)
//   begin    (2): request id (16) || lp16(user) || B (33, compressed)
//   begin    (6): request id (16) || lp16(user) || B (33) || record digest (32)
//                 (a begin bound to the record the client read; kind 2 stays
//                 for clients that send no digest and for entries already logged)
//   confirm  (3): request id (16) || lp16(user) || u32 version || u64 attempt id || signature (64)
//   delete   (4): request id (16) || lp16(user) || u32 version || signature (64)
//   announce (5): u64 node id || lp16(client address) || agreement key (65) || identity key (65) || signature (64)
//   announce (7): the fields of kind 5 || lp16(certificate, DER, 1-4096) || lp16(certificate signature, 1-512)
//                 (a certified announcement: the node's mTLS certificate and its
//                 key's signature over nodeCertificateMessage; kind 5 stays for
//                 entries already logged and clusters without a CA)
//
//
//   token    (8): lp16(client token: a compact JWS, 1-4096 bytes of [A-Za-z0-9_.-]) || a command of kind 1, 2 or 6
//                 (a register or begin with the caller's verified bearer token, re-verified
//                 on apply: jwt.ts; the request's fingerprint is that of the command inside,
//                 so a retry with a fresh token is the same request)
//
//   issuers  (9): request id (16) || lp16(signed key set: a compact JWS, 1-16384 bytes of [A-Za-z0-9_.-])
//                 (one issuer's new keys, signed by a key of its current set: rotation.ts)
//
//   stamped: "bkvT" || u64 time (unix ms) || one of the payloads above
//            (the time the leader assigned when it appended the entry: the
//            throttling clock, throttle.ts; a request's fingerprint is that of
//            the payload inside, so a retry through another leader is the same
//            request)
//
// Decoding is strict: truncation, trailing bytes, unknown kinds and every
// out-of-range field are refused with a ProtocolError. One command has
// exactly one encoding, so equal bytes mean an equal request.
import {
  COMPRESSED_POINT_LENGTH,
  DIGEST_LENGTH,
  InvalidArgumentError,
  MAX_CERTIFICATE_BYTES,
  MAX_CERTIFICATE_SIGNATURE_BYTES,
  InvalidEncodingError,
  ProtocolError,
  Reader,
  type RegistrationRecord,
  SIGNATURE_LENGTH,
  UNCOMPRESSED_POINT_LENGTH,
  UnsupportedVersionError,
  Writer,
  decodeBlinded,
  decodePoint,
  decodeRecord,
  encodeRecord,
  equalBytes,
  expectBounded,
  expectLength,
  utf8,
  validateAttemptId,
  validateNodeId,
  validateRecord,
  validateUserId,
  validateVersion,
} from "../../proto/crypto/index.js";
import { MAX_TOKEN_BYTES } from "./jwt.js";

export const COMMAND_MAGIC = Uint8Array.of(0x62, 0x6b, 0x76, 0x43); // "bkvC"
export const STAMP_MAGIC = Uint8Array.of(0x62, 0x6b, 0x76, 0x54); // "bkvT"
const STAMP_LENGTH = STAMP_MAGIC.length + 8;
export const COMMAND_FORMAT_VERSION = 1;
export const REQUEST_ID_LENGTH = 16;
export const MAX_ADDRESS_BYTES = 255;

export interface NodeAnnouncement {
  nodeId: number;
  clientAddress: string;
  /** 65 bytes, uncompressed SEC1. */
  agreementPublicKey: Uint8Array;
  /** 65 bytes, uncompressed SEC1. */
  identityPublicKey: Uint8Array;
  /** 64 bytes: the identity key's signature over nodeDescriptorMessage. */
  signature: Uint8Array;
  /** A certified announcement (kind 7): the node's mTLS certificate (DER) and its key's signature over nodeCertificateMessage. */
  certified?: NodeCertification;
}

export interface NodeCertification {
  /** DER, 1 to MAX_CERTIFICATE_BYTES. */
  readonly certificate: Uint8Array;
  /** 1 to MAX_CERTIFICATE_SIGNATURE_BYTES, in the certificate key's algorithm (DER ECDSA for P-256). */
  readonly signature: Uint8Array;
}

export type Command =
  | { kind: "register"; requestId: Uint8Array; record: RegistrationRecord; ownerSignature: Uint8Array; token?: string }
  | { kind: "begin"; requestId: Uint8Array; user: string; blinded: Uint8Array; recordDigest?: Uint8Array; token?: string }
  | { kind: "confirm"; requestId: Uint8Array; user: string; version: number; attemptId: number; signature: Uint8Array }
  | { kind: "delete"; requestId: Uint8Array; user: string; version: number; signature: Uint8Array }
  | { kind: "announce"; node: NodeAnnouncement }
  | { kind: "issuers"; requestId: Uint8Array; signedKeys: string }
  /** From this entry on, registrations take bound shares only (a state from before bound shares; docs/operations.md). */
  | { kind: "bind-shares"; requestId: Uint8Array };

export type CommandKind = Command["kind"];

const KIND_CODES: Readonly<Record<CommandKind, number>> = { register: 1, begin: 2, confirm: 3, delete: 4, announce: 5, issuers: 9, "bind-shares": 10 };
/** The kind of each code (6 and 7 are variants of begin and announce; 8 is the token wrapper, unwrapToken). */
const CODE_KINDS: ReadonlyMap<number, CommandKind> = new Map([
  [1, "register"], [2, "begin"], [3, "confirm"], [4, "delete"], [5, "announce"], [6, "begin"], [7, "announce"], [9, "issuers"], [10, "bind-shares"],
]);
/** The code of a begin that carries a record digest. */
const BOUND_BEGIN_CODE = 6;
/** The code of an announcement that carries the node's certificate. */
const CERTIFIED_ANNOUNCE_CODE = 7;
/** The code of a register or begin wrapped with the caller's token. */
const TOKEN_CODE = 8;
const TOKEN_PATTERN = /^[A-Za-z0-9_.-]+$/;
/** The longest signed key set (kind 9), bytes. */
export const MAX_SIGNED_KEYS_BYTES = 16_384;

/** Validates every field; throws the first ProtocolError found. */
export function validateCommand(c: Command): void {
  if ((c.kind === "register" || c.kind === "begin") && c.token !== undefined) validateToken(c.token);
  switch (c.kind) {
    case "register":
      return validateRegister(c.requestId, c.record, c.ownerSignature);
    case "begin":
      validateBegin(c.requestId, c.user, c.blinded);
      if (c.recordDigest !== undefined) expectLength(c.recordDigest, "record digest", DIGEST_LENGTH);
      return;
    case "confirm":
      validateRef(c.requestId, c.user, c.version, c.signature);
      validateAttemptId(c.attemptId);
      if (!Number.isSafeInteger(c.attemptId)) throw new InvalidArgumentError("attempt id must be a safe integer");
      return;
    case "delete":
      return validateRef(c.requestId, c.user, c.version, c.signature);
    case "announce":
      return validateAnnouncement(c.node);
    case "issuers":
      validateRequestId(c.requestId);
      return validateToken(c.signedKeys, MAX_SIGNED_KEYS_BYTES, "signed key set");
    case "bind-shares":
      return validateRequestId(c.requestId);
    default:
      throw new InvalidArgumentError(`unknown command kind ${String((c as { kind?: unknown }).kind)}`);
  }
}

function validateToken(token: string, max = MAX_TOKEN_BYTES, what = "client token"): void {
  if (typeof token !== "string" || token.length > max || !TOKEN_PATTERN.test(token)) {
    throw new InvalidArgumentError(`a ${what} is 1 to ${max} characters of [A-Za-z0-9_.-]`);
  }
}

function validateRequestId(id: Uint8Array): void {
  expectLength(id, "request id", REQUEST_ID_LENGTH);
}

function validateRegister(requestId: Uint8Array, record: RegistrationRecord, ownerSignature: Uint8Array): void {
  validateRequestId(requestId);
  validateRecord(record);
  expectLength(ownerSignature, "owner signature", 0, SIGNATURE_LENGTH);
  if (record.version === 1 && ownerSignature.length !== 0) throw new InvalidArgumentError("a new record (version 1) carries no owner signature");
  if (record.version > 1 && ownerSignature.length === 0) throw new InvalidArgumentError(`an overwrite (version ${record.version}) needs an owner signature`);
}

function validateBegin(requestId: Uint8Array, user: string, blinded: Uint8Array): void {
  validateRequestId(requestId);
  validateUserId(user);
  // B must be a point, and B + G too: the token derives on both (DESIGN §5 recovery step 2).
  decodeBlinded(blinded, "blinded element B");
}

function validateRef(requestId: Uint8Array, user: string, version: number, signature: Uint8Array): void {
  validateRequestId(requestId);
  validateUserId(user);
  validateVersion(version);
  expectLength(signature, "signature", SIGNATURE_LENGTH);
}

export function validateAnnouncement(n: NodeAnnouncement): void {
  validateNodeId(n.nodeId);
  if (typeof n.clientAddress !== "string") throw new InvalidArgumentError("client address must be a string");
  const len = utf8(n.clientAddress).length;
  if (len < 1 || len > MAX_ADDRESS_BYTES) throw new InvalidArgumentError(`client address must be 1 to ${MAX_ADDRESS_BYTES} bytes (got ${len})`);
  expectLength(n.agreementPublicKey, "agreement public key", UNCOMPRESSED_POINT_LENGTH);
  decodePoint(n.agreementPublicKey, "agreement public key");
  expectLength(n.identityPublicKey, "identity public key", UNCOMPRESSED_POINT_LENGTH);
  decodePoint(n.identityPublicKey, "identity public key");
  expectLength(n.signature, "announcement signature", SIGNATURE_LENGTH);
  if (n.certified === undefined) return;
  expectBounded(n.certified.certificate, "node certificate", MAX_CERTIFICATE_BYTES);
  expectBounded(n.certified.signature, "node certificate signature", MAX_CERTIFICATE_SIGNATURE_BYTES);
}

/** Validates, then encodes. Throws a ProtocolError for an invalid command. */
export function encodeCommand(c: Command): Uint8Array {
  validateCommand(c);
  if ((c.kind === "register" || c.kind === "begin") && c.token !== undefined) {
    const { token, ...bare } = c;
    return new Writer().fixed(COMMAND_MAGIC).u8(COMMAND_FORMAT_VERSION).u8(TOKEN_CODE).lp16(utf8(token)).fixed(encodeCommand(bare)).bytes();
  }
  const w = new Writer().fixed(COMMAND_MAGIC).u8(COMMAND_FORMAT_VERSION).u8(kindCode(c));
  switch (c.kind) {
    case "register":
      return w.fixed(c.requestId).lp16(encodeRecord(c.record)).lp16(c.ownerSignature).bytes();
    case "begin":
      w.fixed(c.requestId).str(c.user).fixed(c.blinded);
      return (c.recordDigest === undefined ? w : w.fixed(c.recordDigest)).bytes();
    case "confirm":
      return w.fixed(c.requestId).str(c.user).u32(c.version).u64(c.attemptId).fixed(c.signature).bytes();
    case "delete":
      return w.fixed(c.requestId).str(c.user).u32(c.version).fixed(c.signature).bytes();
    case "announce":
      return writeAnnouncement(w, c.node).bytes();
    case "issuers":
      return w.fixed(c.requestId).lp16(utf8(c.signedKeys)).bytes();
    case "bind-shares":
      return w.fixed(c.requestId).bytes();
  }
}

function kindCode(c: Command): number {
  if (c.kind === "begin" && c.recordDigest !== undefined) return BOUND_BEGIN_CODE;
  if (c.kind === "announce" && c.node.certified !== undefined) return CERTIFIED_ANNOUNCE_CODE;
  return KIND_CODES[c.kind];
}

/** The body of kind 5 or 7. */
function writeAnnouncement(w: Writer, n: NodeAnnouncement): Writer {
  writeAnnouncementFields(w, n);
  return n.certified === undefined ? w : w.lp16(n.certified.certificate).lp16(n.certified.signature);
}

/** The fields of kind 5 (also the start of a snapshot's node entry). */
export function writeAnnouncementFields(w: Writer, n: NodeAnnouncement): Writer {
  return w.u64(n.nodeId).str(n.clientAddress).fixed(n.agreementPublicKey).fixed(n.identityPublicKey).fixed(n.signature);
}

/** `payload` (a command, stamped or not) stamped with `ms`, replacing any earlier stamp. */
export function stampTime(payload: Uint8Array, ms: number): Uint8Array {
  if (!Number.isSafeInteger(ms) || ms < 0) throw new InvalidArgumentError(`stamp time ${String(ms)} is not a unix time in ms`);
  return new Writer().fixed(STAMP_MAGIC).u64(ms).fixed(unstamp(payload).payload).bytes();
}

/** The leader's time of a stamped payload (null if unstamped) and the command payload inside. Never throws. */
export function unstamp(bytes: Uint8Array): { time: number | null; payload: Uint8Array } {
  if (bytes.length < STAMP_LENGTH || !equalBytes(bytes.subarray(0, STAMP_MAGIC.length), STAMP_MAGIC)) return { time: null, payload: bytes };
  const time = new DataView(bytes.buffer, bytes.byteOffset + STAMP_MAGIC.length, 8).getBigUint64(0);
  return { time: time > BigInt(Number.MAX_SAFE_INTEGER) ? null : Number(time), payload: bytes.subarray(STAMP_LENGTH) };
}

/**
 * The kind a payload (stamped or not, with a token or not) names in its
 * header, without parsing its body; null if the header does not parse or
 * names no kind. For screens that only route (forward-gate.ts): apply still
 * parses and validates everything.
 */
export function payloadKind(bytes: Uint8Array): CommandKind | null {
  try {
    const { inner } = unwrapToken(unstamp(bytes).payload);
    return CODE_KINDS.get(readHeader(new Reader(inner, "vault command"))) ?? null;
  } catch {
    return null;
  }
}

/** Parses and validates a payload; throws a ProtocolError on any malformed or invalid input. */
export function decodeCommand(bytes: Uint8Array): Command {
  const env = parseEnvelope(bytes);
  if (env.error !== null) throw env.error;
  if (env.command === null) throw new InvalidEncodingError("vault command did not decode");
  return env.command;
}

/**
 * What apply needs from a payload: the request id as soon as the header
 * parses (so a refused command can still be answered to its waiter), and
 * either the validated command or the error that refuses it. Never throws.
 */
export interface Envelope {
  readonly requestId: Uint8Array | null;
  readonly command: Command | null;
  readonly error: ProtocolError | null;
  /** The bytes a request's fingerprint covers: the payload without its token (kind 8's inner command). */
  readonly request: Uint8Array;
}

export function parseEnvelope(bytes: Uint8Array): Envelope {
  let requestId: Uint8Array | null = null;
  let request = bytes;
  try {
    const { token, inner } = unwrapToken(bytes);
    request = inner;
    const r = new Reader(inner, "vault command");
    const code = readHeader(r);
    const kind = CODE_KINDS.get(code);
    if (kind === undefined) throw new InvalidEncodingError(`unknown vault command kind ${code}`);
    if (kind !== "announce") requestId = r.fixed(REQUEST_ID_LENGTH);
    const command = readBody(r, kind, requestId);
    if (code === BOUND_BEGIN_CODE && command.kind === "begin") command.recordDigest = r.fixed(DIGEST_LENGTH);
    if (code === CERTIFIED_ANNOUNCE_CODE && command.kind === "announce") command.node.certified = readCertification(r);
    r.end();
    if (token !== undefined) attachToken(command, token);
    validateCommand(command);
    return { requestId, command, error: null, request };
  } catch (err) {
    return { requestId, command: null, error: asProtocolError(err), request };
  }
}

/**
 * The bytes a request's fingerprint covers (Envelope.request) of a payload as
 * a port proposes it or as it is committed: without the leader's stamp and
 * without the client token; the payload as it is when its header does not
 * parse (as parseEnvelope). Never throws.
 */
export function requestBytes(payload: Uint8Array): Uint8Array {
  const bytes = unstamp(payload).payload;
  try {
    return unwrapToken(bytes).inner;
  } catch {
    return bytes;
  }
}

/** A kind-8 payload's token and inner command; any other payload is its own inner command. A token inside is an unknown kind. */
function unwrapToken(bytes: Uint8Array): { token?: string; inner: Uint8Array } {
  const r = new Reader(bytes, "vault command");
  if (readHeader(r) !== TOKEN_CODE) return { inner: bytes };
  const token = ascii(r.lp16(), "client token");
  return { token, inner: r.view(r.remaining) };
}

function ascii(b: Uint8Array, what: string): string {
  if (!b.every((x) => x < 0x80)) throw new InvalidEncodingError(`the ${what} is not ASCII`);
  return Buffer.from(b).toString("latin1");
}

function attachToken(c: Command, token: string): void {
  if (c.kind !== "register" && c.kind !== "begin") throw new InvalidEncodingError(`a ${c.kind} command carries no client token`);
  c.token = token;
}

/** Checks magic and format; returns the kind code. */
function readHeader(r: Reader): number {
  if (!equalBytes(r.fixed(COMMAND_MAGIC.length), COMMAND_MAGIC)) throw new InvalidEncodingError("not a vault command (bad magic)");
  const format = r.u8();
  if (format !== COMMAND_FORMAT_VERSION) throw new UnsupportedVersionError("vault command encoding", format);
  return r.u8();
}

function readBody(r: Reader, kind: CommandKind, requestId: Uint8Array | null): Command {
  const id = requestId ?? new Uint8Array(0);
  switch (kind) {
    case "register":
      return { kind, requestId: id, record: decodeRecord(r.lp16()), ownerSignature: r.lp16() };
    case "begin":
      return { kind, requestId: id, user: r.str(), blinded: r.fixed(COMPRESSED_POINT_LENGTH) };
    case "confirm":
      return { kind, requestId: id, user: r.str(), version: r.u32(), attemptId: readSafeU64(r, "attempt id"), signature: r.fixed(SIGNATURE_LENGTH) };
    case "delete":
      return { kind, requestId: id, user: r.str(), version: r.u32(), signature: r.fixed(SIGNATURE_LENGTH) };
    case "announce":
      return { kind, node: readAnnouncement(r) };
    case "issuers":
      return { kind, requestId: id, signedKeys: ascii(r.lp16(), "signed key set") };
    case "bind-shares":
      return { kind, requestId: id };
  }
}

function readCertification(r: Reader): NodeCertification {
  return { certificate: r.lp16(), signature: r.lp16() };
}

/** Reads the fields writeAnnouncementFields writes. */
export function readAnnouncement(r: Reader): NodeAnnouncement {
  return {
    nodeId: readSafeU64(r, "node id"),
    clientAddress: r.str(),
    agreementPublicKey: r.fixed(UNCOMPRESSED_POINT_LENGTH),
    identityPublicKey: r.fixed(UNCOMPRESSED_POINT_LENGTH),
    signature: r.fixed(SIGNATURE_LENGTH),
  };
}

export function readSafeU64(r: Reader, what: string): number {
  const v = r.u64();
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new InvalidEncodingError(`${what} is too large`);
  return Number(v);
}

/** Everything a decoder can throw becomes a ProtocolError (noble or TextDecoder surprises included). */
function asProtocolError(err: unknown): ProtocolError {
  if (err instanceof ProtocolError) return err;
  return new InvalidEncodingError(`vault command does not parse (${err instanceof Error ? err.name : "unknown error"})`);
}
