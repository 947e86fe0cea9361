// deploy/k8s/make-secrets.sh --print: the Secrets the StatefulSet mounts,
// rendered offline (kubectl create --dry-run=client), schema-valid, with the
// keys init-node.sh reads and no CA key.
import test from "ava";
import { spawnSync } from "node:child_process";
import { X509Certificate } from "node:crypto";
import { join } from "node:path";
import { Secret } from "kubernetes-models/v1/Secret";
import { parseStream, type K8sObject } from "./checks.js";
import { tempDir } from "../temp.js";

function makeSecrets(args: string[]) {
  const r = spawnSync("bash", ["deploy/k8s/make-secrets.sh", "--print", ...args], { encoding: "utf8" });
  return { status: r.status, stderr: r.stderr, objects: r.status === 0 ? parseStream(r.stdout) : [] };
}
const decode = (s: K8sObject, key: string) => Buffer.from(String(s.data?.[key]), "base64").toString("utf8");

test("bkv-tls and bkv-hsm for 3 nodes: valid Secrets, per-node keys, pod DNS names in each certificate", (t) => {
  const dir = tempDir(t, "bkv-secrets-");
  const r = makeSecrets(["vault-ns", "3", join(dir, "certs")]);
  t.is(r.status, 0, r.stderr);
  for (const o of r.objects) t.notThrows(() => new Secret(o).validate());
  const [tls, hsm] = r.objects as [K8sObject, K8sObject];
  t.is(tls.metadata.name, "bkv-tls");
  t.is(tls.metadata.namespace, "vault-ns");
  t.deepEqual(Object.keys(tls.data).sort(), ["ca.crt", "node-1.crt", "node-1.key", "node-2.crt", "node-2.key", "node-3.crt", "node-3.key"]);
  const cert = new X509Certificate(decode(tls, "node-2.crt"));
  t.regex(cert.subject, /CN=node-2/);
  for (const name of ["node-2", "localhost", "bkv-1.bkv-peer", "bkv-1.bkv-peer.vault-ns.svc.cluster.local", "bkv.vault-ns.svc"]) {
    t.true(cert.subjectAltName?.includes(`DNS:${name}`), name);
  }
  t.true(cert.verify(new X509Certificate(decode(tls, "ca.crt")).publicKey));
  t.is(hsm.metadata.name, "bkv-hsm");
  const pins = ["pin-1", "pin-2", "pin-3", "so-pin-1", "so-pin-2", "so-pin-3"].map((k) => decode(hsm, k));
  for (const pin of pins) t.regex(pin, /^[0-9a-f]{32}$/);
  t.is(new Set(pins).size, 6, "every PIN is different");

  const again = makeSecrets(["vault-ns", "3", join(dir, "certs")]);
  t.is(decode(again.objects[0] as K8sObject, "node-2.crt"), decode(tls, "node-2.crt"), "certificates are kept");
});

test("bad arguments exit 2 with usage", (t) => {
  for (const args of [["bkv"], ["bkv", "0"], ["bkv", "three"], ["bkv", "3", "a", "b"]]) {
    const r = makeSecrets(args);
    t.is(r.status, 2, args.join(" "));
    t.regex(r.stderr, /usage/);
  }
});
