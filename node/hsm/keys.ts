// The node's two long-lived token keys, generated inside the token at first
// start and found by label and id afterwards:
//   agreement key  EC P-256, CKA_DERIVE only: clients wrap shares to it
//   identity key   EC P-256, CKA_SIGN only: signs evaluation responses
// Every attribute is set explicitly (SoftHSM defaults SENSITIVE and DERIVE to
// false); the private halves are CKA_PRIVATE (SoftHSM otherwise stores them in
// plaintext), sensitive and never extractable.
import pkcs11js from "pkcs11js";
import { HsmError, toHsmError } from "./errors.js";
import type { Handle } from "./token.js";

type PKCS11 = pkcs11js.PKCS11;
type Template = pkcs11js.Template;
const P = pkcs11js;

/** DER of the OID 1.2.840.10045.3.1.7 (prime256v1 / NIST P-256). */
export const P256_EC_PARAMS = Buffer.from("06082a8648ce3d030107", "hex");

export type KeyRole = "agreement" | "identity";

export interface NodeKeyPair {
  role: KeyRole;
  privateKey: Handle;
  /** 65-byte uncompressed SEC1 public key. */
  publicKey: Uint8Array;
  /** True when this call generated the pair (the token held neither half); false when it found it. */
  generated: boolean;
}

const LABEL: Record<KeyRole, string> = { agreement: "bkv-agreement", identity: "bkv-identity" };
const ID: Record<KeyRole, Buffer> = {
  agreement: Buffer.from("bkv-agreement-v1"),
  identity: Buffer.from("bkv-identity-v1"),
};

function usage(role: KeyRole): { derive: boolean; sign: boolean } {
  return { derive: role === "agreement", sign: role === "identity" };
}

export function privateKeyTemplate(role: KeyRole): Template {
  const u = usage(role);
  return [
    { type: P.CKA_CLASS, value: P.CKO_PRIVATE_KEY },
    { type: P.CKA_KEY_TYPE, value: P.CKK_EC },
    { type: P.CKA_TOKEN, value: true },
    { type: P.CKA_PRIVATE, value: true },
    { type: P.CKA_SENSITIVE, value: true },
    { type: P.CKA_EXTRACTABLE, value: false },
    // The agreement key is modifiable and copyable so that each pooled session
    // can hold a session copy (C_CopyObject with CKA_TOKEN=false needs both;
    // measured faster in SoftHSM). Neither a copy nor a modification can make
    // a key less sensitive or extractable (PKCS#11 forbids both transitions).
    { type: P.CKA_MODIFIABLE, value: u.derive },
    { type: P.CKA_COPYABLE, value: u.derive },
    { type: P.CKA_DESTROYABLE, value: true },
    { type: P.CKA_DERIVE, value: u.derive },
    { type: P.CKA_SIGN, value: u.sign },
    { type: P.CKA_SIGN_RECOVER, value: false },
    { type: P.CKA_DECRYPT, value: false },
    { type: P.CKA_UNWRAP, value: false },
    { type: P.CKA_LABEL, value: LABEL[role] },
    { type: P.CKA_ID, value: ID[role] },
  ];
}

export function publicKeyTemplate(role: KeyRole): Template {
  const u = usage(role);
  return [
    { type: P.CKA_CLASS, value: P.CKO_PUBLIC_KEY },
    { type: P.CKA_KEY_TYPE, value: P.CKK_EC },
    { type: P.CKA_TOKEN, value: true },
    { type: P.CKA_PRIVATE, value: true },
    { type: P.CKA_MODIFIABLE, value: false },
    { type: P.CKA_EC_PARAMS, value: P256_EC_PARAMS },
    { type: P.CKA_DERIVE, value: false },
    { type: P.CKA_VERIFY, value: u.sign },
    { type: P.CKA_VERIFY_RECOVER, value: false },
    { type: P.CKA_ENCRYPT, value: false },
    { type: P.CKA_WRAP, value: false },
    { type: P.CKA_LABEL, value: LABEL[role] },
    { type: P.CKA_ID, value: ID[role] },
  ];
}

function findAll(p11: PKCS11, session: Handle, cls: number, role: KeyRole): Handle[] {
  p11.C_FindObjectsInit(session, [
    { type: P.CKA_CLASS, value: cls },
    { type: P.CKA_TOKEN, value: true },
    { type: P.CKA_LABEL, value: LABEL[role] },
    { type: P.CKA_ID, value: ID[role] },
  ]);
  try {
    return p11.C_FindObjects(session, 4);
  } finally {
    p11.C_FindObjectsFinal(session);
  }
}

/**
 * Finds the key pair of `role` or, when neither half exists, generates it.
 * A half without the other, duplicates, or a private key with weaker
 * attributes than bkv requires are refused (KEY_INVALID): a node never
 * silently replaces a key that shares may already be wrapped to.
 */
export function findOrGenerateKeyPair(p11: PKCS11, session: Handle, role: KeyRole): NodeKeyPair {
  try {
    const privs = findAll(p11, session, P.CKO_PRIVATE_KEY, role);
    const pubs = findAll(p11, session, P.CKO_PUBLIC_KEY, role);
    if (privs.length === 0 && pubs.length === 0) return generateKeyPair(p11, session, role);
    const [priv] = privs;
    const [pub] = pubs;
    if (privs.length !== 1 || pubs.length !== 1 || priv === undefined || pub === undefined) {
      throw new HsmError("KEY_INVALID",
        `the token holds ${privs.length} private and ${pubs.length} public ${role} keys (expected one each)`);
    }
    checkPrivateKeyAttributes(p11, session, priv, role);
    return { role, privateKey: priv, publicKey: readEcPoint(p11, session, pub), generated: false };
  } catch (err) {
    throw toHsmError(err, `loading the ${role} key`);
  }
}

function generateKeyPair(p11: PKCS11, session: Handle, role: KeyRole): NodeKeyPair {
  const kp = p11.C_GenerateKeyPair(session, { mechanism: P.CKM_EC_KEY_PAIR_GEN },
    publicKeyTemplate(role), privateKeyTemplate(role));
  return { role, privateKey: kp.privateKey, publicKey: readEcPoint(p11, session, kp.publicKey), generated: true };
}

const REQUIRED_TRUE = [P.CKA_PRIVATE, P.CKA_SENSITIVE, P.CKA_ALWAYS_SENSITIVE, P.CKA_NEVER_EXTRACTABLE];
const REQUIRED_FALSE = [P.CKA_EXTRACTABLE];

function checkPrivateKeyAttributes(p11: PKCS11, session: Handle, key: Handle, role: KeyRole): void {
  const u = usage(role);
  const want = new Map<number, boolean>([
    ...REQUIRED_TRUE.map((t): [number, boolean] => [t, true]),
    ...REQUIRED_FALSE.map((t): [number, boolean] => [t, false]),
    [P.CKA_DERIVE, u.derive],
    [P.CKA_SIGN, u.sign],
    [P.CKA_DECRYPT, false],
    [P.CKA_UNWRAP, false],
  ]);
  const got = p11.C_GetAttributeValue(session, key, [...want.keys()].map((type) => ({ type })));
  for (const a of got) {
    const value = a.value !== undefined && a.value.length > 0 && a.value[0] !== 0;
    if (value !== want.get(a.type)) {
      throw new HsmError("KEY_INVALID", `the ${role} key has attribute 0x${a.type.toString(16)} = ${value}`);
    }
  }
  const params = p11.C_GetAttributeValue(session, key, [{ type: P.CKA_EC_PARAMS }])[0]?.value;
  if (params === undefined || !P256_EC_PARAMS.equals(params)) {
    throw new HsmError("KEY_INVALID", `the ${role} key is not on P-256`);
  }
}

/** Reads CKA_EC_POINT (a DER OCTET STRING around the SEC1 point) as 65 raw bytes. */
export function readEcPoint(p11: PKCS11, session: Handle, publicKey: Handle): Uint8Array {
  const attr = p11.C_GetAttributeValue(session, publicKey, [{ type: P.CKA_EC_POINT }])[0]?.value;
  if (attr === undefined) throw new HsmError("KEY_INVALID", "public key has no CKA_EC_POINT");
  return decodeEcPoint(attr);
}

export function decodeEcPoint(attr: Uint8Array): Uint8Array {
  if (attr.length === 67 && attr[0] === 0x04 && attr[1] === 0x41 && attr[2] === 0x04) {
    return Uint8Array.from(attr.subarray(2));
  }
  if (attr.length === 65 && attr[0] === 0x04) return Uint8Array.from(attr); // some modules omit the DER
  throw new HsmError("KEY_INVALID", "CKA_EC_POINT is not an uncompressed P-256 point");
}
