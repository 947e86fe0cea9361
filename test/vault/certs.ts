// Real X.509 material for certified-announcement tests, made once per test
// process with deploy/certs/make-certs.sh (the operator's script) and openssl:
// the cluster CA with node-1 and node-2 certificates, another CA with its own
// node-1 certificate, and a self-signed certificate that names node-1.
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { certificateDer, nodeCertificateMessage, signWithCertificateKey } from "../../proto/crypto/index.js";
import type { NodeAnnouncement } from "../../node/vault/index.js";
import { CLUSTER } from "../../testkit/vault.js";
import { withTempDir } from "../temp.js";

const SCRIPT = fileURLToPath(new URL("../../deploy/certs/make-certs.sh", import.meta.url));

export interface CertifiedKey {
  /** DER. */
  readonly certificate: Uint8Array;
  /** PEM private key. */
  readonly key: Buffer;
}

function makeCa(...ids: number[]): { ca: Uint8Array; nodes: Map<number, CertifiedKey> } {
  return withTempDir("bkv-certs-", (dir) => {
    execFileSync("bash", [SCRIPT, dir, ...ids.map(String)], { stdio: "ignore" });
    const nodes = new Map(ids.map((id) => [id, { certificate: certificateDer(readFileSync(join(dir, `node-${id}.crt`)), "node cert"), key: readFileSync(join(dir, `node-${id}.key`)) }]));
    return { ca: certificateDer(readFileSync(join(dir, "ca.crt")), "ca"), nodes };
  });
}

function selfSigned(name: string): CertifiedKey {
  return withTempDir("bkv-certs-", (dir) => {
    execFileSync("openssl", ["req", "-x509", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", join(dir, "k.pem"), "-out", join(dir, "c.pem"),
      "-days", "1", "-subj", `/CN=${name}`, "-addext", `subjectAltName=DNS:${name}`], { stdio: "ignore" });
    return { certificate: certificateDer(readFileSync(join(dir, "c.pem")), "self-signed"), key: readFileSync(join(dir, "k.pem")) };
  });
}

export const CLUSTER_CA = makeCa(1, 2);
export const OTHER_CA = makeCa(1);
export const SELF_SIGNED_NODE_1 = selfSigned("node-1");

export function certifiedBy(ck: CertifiedKey | undefined): CertifiedKey {
  if (ck === undefined) throw new Error("no such certificate");
  return ck;
}

/** `n` certified with `ck` (its key signs nodeCertificateMessage, unless `signer` says another key). */
export function certify(n: NodeAnnouncement, ck: CertifiedKey, signer: Buffer = ck.key): NodeAnnouncement {
  const fields = { clusterId: CLUSTER, nodeId: n.nodeId, address: n.clientAddress, agreementPublicKey: n.agreementPublicKey, identityPublicKey: n.identityPublicKey };
  return { ...n, certified: { certificate: ck.certificate, signature: signWithCertificateKey(signer, nodeCertificateMessage(fields)) } };
}
