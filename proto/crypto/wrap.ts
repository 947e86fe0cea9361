// Wrapping of a Shamir share to a node's agreement key (DESIGN §4/§5).
// The client does an ephemeral P-256 ECDH with the node's agreement public
// key; the KEK is the 32-byte x-coordinate of the shared point, exactly what
// a token derives with CKM_ECDH1_DERIVE + CKD_NULL into a 32-byte CKK_AES key.
// The share is wrapped as a PKCS#8 P-256 private key with RFC 5649 AES key
// wrap with padding, so the token can C_UnwrapKey it into a non-extractable
// session object.
//
// Blob v1: 0x01 || E (65 bytes, uncompressed SEC1) || RFC5649(KEK, PKCS#8(k_i)).
// Blob v2: 0x02 || E (65) || σ (64) || RFC5649(KEK, PKCS#8(k_i)), where σ is
// an ECDSA signature made with the ephemeral secret e (E = e·G) that binds
// the share to the one record it was made for (share-binding.ts). The HSM
// reads E and the RFC 5649 ciphertext of either version alike.
import { createCipheriv, createDecipheriv, createPrivateKey } from "node:crypto";
import { bigIntToBytes, bytesToBigInt, concat, expectLength } from "./bytes.js";
import {
  G,
  SCALAR_LENGTH,
  UNCOMPRESSED_POINT_LENGTH,
  checkScalar,
  decodePoint,
  encodePoint,
  randomScalar,
  xCoordinate,
} from "./group.js";
import { InvalidArgumentError, InvalidEncodingError, InvalidLengthError, UnsupportedVersionError, UnwrapError } from "./errors.js";

/** The unbound blob: still evaluated in records registered before a cluster took bound shares only. */
export const WRAP_BLOB_VERSION = 1;
/** The bound blob: what clients register. */
export const BOUND_WRAP_BLOB_VERSION = 2;
const BINDING_SIGNATURE_LENGTH = 64;
/** node:crypto name of RFC 5649 AES-256 key wrap with padding. */
const KWP_CIPHER = "id-aes256-wrap-pad";
/** RFC 5649 alternative initial value (the default; spelled out for clarity). */
const KWP_IV = Uint8Array.of(0xa6, 0x59, 0x59, 0xa6);
/** RFC 5649 output: 8-byte blocks, at least 2; a PKCS#8 P-256 key wraps to 144-160 bytes. */
const MIN_WRAPPED = 16;
const MAX_WRAPPED = 512;

export interface ParsedWrappedShare {
  /** WRAP_BLOB_VERSION or BOUND_WRAP_BLOB_VERSION. */
  readonly version: number;
  /** The client's ephemeral public key E, 65 bytes uncompressed, validated. */
  readonly ephemeralPublicKey: Uint8Array;
  /** Blob v2: the binding signature σ (64 bytes r||s, not yet verified); v1: null. */
  readonly bindingSignature: Uint8Array | null;
  /** The RFC 5649 ciphertext. */
  readonly wrapped: Uint8Array;
}

/**
 * A share wrapped to one node, before it is bound to its record: the
 * ephemeral secret e is kept only until bindShares signs with it. Secret.
 */
export interface SealedShare {
  readonly ephemeralSecret: bigint;
  /** E = e·G, 65 bytes uncompressed. */
  readonly ephemeralPublicKey: Uint8Array;
  /** RFC5649(KEK, PKCS#8(k_i)). */
  readonly wrapped: Uint8Array;
}

/** Wraps share k_i to a node's agreement public key (33 or 65 bytes SEC1), keeping e for the binding. */
export function sealShare(agreementPublicKey: Uint8Array, share: bigint): SealedShare {
  const A = decodePoint(agreementPublicKey, "agreement public key");
  const pkcs8 = sharePkcs8(share);
  const e = randomScalar();
  const kek = xCoordinate(A.multiply(e));
  const cipher = createCipheriv(KWP_CIPHER, kek, KWP_IV);
  const wrapped = concat(cipher.update(pkcs8), cipher.final());
  kek.fill(0);
  pkcs8.fill(0);
  return { ephemeralSecret: e, ephemeralPublicKey: encodePoint(G.multiply(e), false), wrapped };
}

/**
 * Blob v1 (unbound) of share k_i: what the HSM's self-test evaluates, and
 * what records registered before bound shares hold. Clients register v2
 * (createRegistration).
 */
export function wrapShare(agreementPublicKey: Uint8Array, share: bigint): Uint8Array {
  return joinUnboundShare(sealShare(agreementPublicKey, share));
}

/** Blob v1 from a sealed share: its ephemeral key and ciphertext, bound to nothing. */
export function joinUnboundShare(sealed: Pick<SealedShare, "ephemeralPublicKey" | "wrapped">): Uint8Array {
  return concat(Uint8Array.of(WRAP_BLOB_VERSION), sealed.ephemeralPublicKey, sealed.wrapped);
}

/** Blob v2 from a sealed share and its binding signature. */
export function joinBoundShare(sealed: Pick<SealedShare, "ephemeralPublicKey" | "wrapped">, bindingSignature: Uint8Array): Uint8Array {
  expectLength(bindingSignature, "binding signature", BINDING_SIGNATURE_LENGTH);
  return concat(Uint8Array.of(BOUND_WRAP_BLOB_VERSION), sealed.ephemeralPublicKey, bindingSignature, sealed.wrapped);
}

/** Splits and validates a wrap blob (version, ephemeral point, signature length, wrapped length). */
export function parseWrappedShare(blob: Uint8Array): ParsedWrappedShare {
  if (!(blob instanceof Uint8Array)) throw new InvalidArgumentError("a wrapped share must be a Uint8Array");
  // The first two checks and their messages are the release before bound shares': a state from
  // then refuses a bound share exactly as that release did (node/vault state-machine.ts).
  if (blob.length < 1 + UNCOMPRESSED_POINT_LENGTH + MIN_WRAPPED) {
    throw new InvalidLengthError("a wrapped share", `at least ${1 + UNCOMPRESSED_POINT_LENGTH + MIN_WRAPPED}`, blob.length);
  }
  const version = blob[0] ?? 0;
  if (version !== WRAP_BLOB_VERSION && version !== BOUND_WRAP_BLOB_VERSION) throw new UnsupportedVersionError("wrapped share", version);
  const signatureLength = version === BOUND_WRAP_BLOB_VERSION ? BINDING_SIGNATURE_LENGTH : 0;
  const head = 1 + UNCOMPRESSED_POINT_LENGTH + signatureLength;
  if (blob.length < head + MIN_WRAPPED) throw new InvalidLengthError("a bound wrapped share", `at least ${head + MIN_WRAPPED}`, blob.length);
  const ephemeralPublicKey = blob.slice(1, 1 + UNCOMPRESSED_POINT_LENGTH);
  if (ephemeralPublicKey[0] !== 0x04) throw new InvalidEncodingError("a wrapped share's ephemeral key must be uncompressed SEC1");
  decodePoint(ephemeralPublicKey, "ephemeral public key");
  const bindingSignature = signatureLength === 0 ? null : blob.slice(1 + UNCOMPRESSED_POINT_LENGTH, head);
  const wrapped = blob.slice(head);
  if (wrapped.length % 8 !== 0 || wrapped.length > MAX_WRAPPED) {
    throw new InvalidLengthError("an RFC 5649 wrapped key", `a multiple of 8 in [${MIN_WRAPPED}, ${MAX_WRAPPED}]`, wrapped.length);
  }
  return { version, ephemeralPublicKey, bindingSignature, wrapped };
}

/**
 * Pure-JS unwrap, for tests only: in production only the node's token holds
 * the agreement private key. Throws UnwrapError for a tampered blob or the
 * wrong key.
 */
export function unwrapShareForTest(blob: Uint8Array, agreementPrivateKey: bigint): bigint {
  const { ephemeralPublicKey, wrapped } = parseWrappedShare(blob);
  const kek = xCoordinate(decodePoint(ephemeralPublicKey).multiply(checkScalar(agreementPrivateKey, "agreement private key")));
  let pkcs8: Buffer;
  try {
    const decipher = createDecipheriv(KWP_CIPHER, kek, KWP_IV);
    pkcs8 = Buffer.concat([decipher.update(wrapped), decipher.final()]);
  } catch {
    throw new UnwrapError();
  }
  return shareFromPkcs8(pkcs8);
}

/** The PKCS#8 DER encoding of share k as a P-256 private key (with its public key). */
export function sharePkcs8(share: bigint): Uint8Array {
  const d = bigIntToBytes(checkScalar(share, "share"), SCALAR_LENGTH);
  const pub = encodePoint(G.multiply(share), false);
  const b64 = (b: Uint8Array) => Buffer.from(b).toString("base64url");
  const key = createPrivateKey({
    key: { kty: "EC", crv: "P-256", d: b64(d), x: b64(pub.subarray(1, 33)), y: b64(pub.subarray(33)) },
    format: "jwk",
  });
  d.fill(0);
  return new Uint8Array(key.export({ format: "der", type: "pkcs8" }));
}

function shareFromPkcs8(pkcs8: Uint8Array): bigint {
  let d: string | undefined;
  try {
    const jwk = createPrivateKey({ key: Buffer.from(pkcs8), format: "der", type: "pkcs8" }).export({ format: "jwk" });
    if (jwk.kty === "EC" && jwk.crv === "P-256") d = jwk.d;
  } catch {
    throw new UnwrapError("the unwrapped share is not a PKCS#8 key");
  }
  if (d === undefined) throw new UnwrapError("the unwrapped share is not a P-256 private key");
  return checkScalar(bytesToBigInt(Buffer.from(d, "base64url")), "unwrapped share");
}
