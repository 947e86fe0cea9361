// Test helpers: real SoftHSM tokens in temp dirs (deploy/softhsm/init-token.sh)
// and a client-side share wrap.
// TEMPORARY: wrapShareForTest mirrors proto/crypto's wrapShare (v1 blob) until
// that lands; then the tests import the shared function.
import { execFileSync } from "node:child_process";
import { createCipheriv, createPrivateKey } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { p256 } from "@noble/curves/nist.js";
import pkcs11js from "pkcs11js";
import type { HsmConfig } from "../../node/hsm/index.js";

const ROOT = resolve(import.meta.dirname, "../..");
export const INIT_TOKEN = join(ROOT, "deploy/softhsm/init-token.sh");

export interface TestToken {
  dir: string;
  config: HsmConfig;
  remove(): void;
}

/** Creates a fresh token labelled `label` in its own temp dir. */
export function createToken(label: string): TestToken {
  const dir = mkdtempSync(join(tmpdir(), "bkv-hsm-"));
  execFileSync("bash", [INIT_TOKEN, dir, label], { stdio: ["ignore", "ignore", "inherit"] });
  return {
    dir,
    config: { tokenLabel: label, pinFile: join(dir, "pin"), softhsmConf: join(dir, "softhsm2.conf") },
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}

export const Point = p256.Point;
export const N = Point.Fn.ORDER;

export function randomScalar(): bigint {
  return BigInt("0x" + Buffer.from(p256.utils.randomSecretKey()).toString("hex")) % N;
}

function be32(n: bigint): Buffer {
  return Buffer.from(n.toString(16).padStart(64, "0"), "hex");
}

/** PKCS#8 DER of the P-256 private key `k` (via node:crypto). */
export function pkcs8(k: bigint): Buffer {
  const pub = Point.BASE.multiply(k).toBytes(false);
  const b64 = (b: Uint8Array) => Buffer.from(b).toString("base64url");
  const key = createPrivateKey({
    key: { kty: "EC", crv: "P-256", d: b64(be32(k)), x: b64(pub.subarray(1, 33)), y: b64(pub.subarray(33)) },
    format: "jwk",
  });
  return key.export({ format: "der", type: "pkcs8" });
}

/** v1 wrap blob: 0x01 || E (65) || RFC 5649 wrap of PKCS#8(k) under x(ECDH(e, A)). */
export function wrapShareForTest(agreementPublicKey: Uint8Array, k: bigint): Uint8Array {
  const e = randomScalar();
  const E = Point.BASE.multiply(e).toBytes(false);
  const kek = Point.fromBytes(agreementPublicKey).multiply(e).toBytes(true).subarray(1);
  const c = createCipheriv("id-aes256-wrap-pad", kek, Buffer.from("a65959a6", "hex"));
  const wrapped = Buffer.concat([c.update(pkcs8(k)), c.final()]);
  return Buffer.concat([Buffer.from([0x01]), E, wrapped]);
}

export function randomPoint(): InstanceType<typeof Point> {
  return Point.BASE.multiply(randomScalar());
}

/** Number of session objects (CKA_TOKEN=false) this process holds on the token. */
export async function countSessionObjects(hsm: import("../../node/hsm/index.js").Hsm): Promise<number> {
  const p11 = hsm.token.p11;
  return hsm.token.withSession((s) => {
    p11.C_FindObjectsInit(s, [{ type: pkcs11js.CKA_TOKEN, value: false }]);
    try {
      return p11.C_FindObjects(s, 10_000).length;
    } finally {
      p11.C_FindObjectsFinal(s);
    }
  });
}
