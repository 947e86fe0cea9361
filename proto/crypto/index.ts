// bkv protocol code shared by node and client (docs/protocol.md).
// No gRPC, no Raft, no PKCS#11 here: only node:crypto and @noble/*.
export * from "./errors.js";
export { type ByteOrder, Reader, Writer, bigIntToBytes, bytesToBigInt, checkU64, concat, equalBytes, expectLength, utf8 } from "./bytes.js";
export {
  COMPRESSED_POINT_LENGTH,
  Fn,
  G,
  ORDER,
  Point,
  SCALAR_LENGTH,
  UNCOMPRESSED_POINT_LENGTH,
  addGenerator,
  checkScalar,
  decodeBlinded,
  decodePoint,
  decodeScalar,
  encodePoint,
  encodeScalar,
  hashToCurve,
  randomScalar,
  recoverEvaluatedPoint,
  xCoordinate,
} from "./group.js";
export { type EvaluatedPoint, type Share, MAX_SHARES, combinePoints, combineShares, lagrangeCoefficients, splitSecret, validateIds, validateThreshold } from "./shamir.js";
export {
  type ParsedWrappedShare,
  type SealedShare,
  BOUND_WRAP_BLOB_VERSION,
  WRAP_BLOB_VERSION,
  joinBoundShare,
  joinUnboundShare,
  parseWrappedShare,
  sealShare,
  sharePkcs8,
  unwrapShareForTest,
  wrapShare,
} from "./wrap.js";
export {
  type BoundPart, type SealedRecordShare, BOUND_SHARES_ONLY, bindShares, bindingMessages, firstMisboundShare, firstUnboundShare, holdsBoundShare,
} from "./share-binding.js";
export * from "./messages.js";
export * from "./certificate.js";
export { SIGNATURE_LENGTH, messageDigest, normalizeLowS, signMessage, verifyMessage } from "./ecdsa.js";
export { ED25519_PUBLIC_KEY_LENGTH, ED25519_SIGNATURE_LENGTH, verifyEd25519 } from "./ed25519.js";
export * from "./signatures.js";
export {
  type Blinded,
  type OprfSuite,
  BKV_V1,
  RFC9497_CONTEXT_STRING,
  RFC9497_P256_SHA256,
  blind,
  blindEvaluate,
  evaluateOprf,
  finalize,
  hashToGroup,
  unblind,
} from "./oprf.js";
export * from "./kdf.js";
export * from "./aead.js";
export * from "./record.js";
export { type RobustResult, combineRobustly } from "./robust.js";
export * from "./client.js";
