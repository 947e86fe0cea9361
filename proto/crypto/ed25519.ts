// Ed25519 signature verification (RFC 8032) with OpenSSL (node:crypto): the
// EdDSA client tokens every node re-verifies when it applies an entry. About
// 20x cheaper than @noble's verify; OpenSSL's check is RFC 8032's (the
// verdict is the same on every node of one release).
import { type KeyObject, createPublicKey, verify as nativeVerify } from "node:crypto";
import { expectLength } from "./bytes.js";

export const ED25519_PUBLIC_KEY_LENGTH = 32;
export const ED25519_SIGNATURE_LENGTH = 64;

/** DER SubjectPublicKeyInfo header of id-Ed25519 with a 32-byte key. */
const SPKI_HEADER = Buffer.from("302a300506032b6570032100", "hex");

const recentKeys = new Map<string, KeyObject>();
const RECENT_KEYS_MAX = 256;

/**
 * True if `signature` is `publicKey`'s Ed25519 signature over `message`;
 * false for a wrong signature or a key OpenSSL refuses. Throws
 * InvalidLengthError for a key or signature of the wrong length.
 */
export function verifyEd25519(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean {
  expectLength(publicKey, "Ed25519 public key", ED25519_PUBLIC_KEY_LENGTH);
  expectLength(signature, "Ed25519 signature", ED25519_SIGNATURE_LENGTH);
  try {
    return nativeVerify(null, message, keyObject(publicKey), signature);
  } catch {
    return false;
  }
}

function keyObject(publicKey: Uint8Array): KeyObject {
  const id = Buffer.from(publicKey.buffer, publicKey.byteOffset, publicKey.byteLength).toString("hex");
  let key = recentKeys.get(id);
  if (key === undefined) {
    key = createPublicKey({ key: Buffer.concat([SPKI_HEADER, publicKey]), format: "der", type: "spki" });
    if (recentKeys.size >= RECENT_KEYS_MAX) recentKeys.delete(recentKeys.keys().next().value!);
    recentKeys.set(id, key);
  }
  return key;
}
