// Test helpers: real SoftHSM tokens in temp dirs (deploy/softhsm/init-token.sh).
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { G, Point, randomScalar } from "../proto/crypto/index.js";
import pkcs11js from "pkcs11js";
import type { HsmConfig } from "../node/hsm/index.js";

const ROOT = resolve(import.meta.dirname, "..");
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

export { Point, randomScalar, wrapShare } from "../proto/crypto/index.js";
export const N = Point.Fn.ORDER;

export function randomPoint(): Point {
  return G.multiply(randomScalar());
}

/** Number of session objects (CKA_TOKEN=false) this process holds on the token. */
export async function countSessionObjects(hsm: import("../node/hsm/index.js").Hsm): Promise<number> {
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
