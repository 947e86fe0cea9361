// The vault pod's start path without Kubernetes: init-node.sh provisions a
// node (token from the Secret's PIN, its certificate, rendered config), then
// bkv-node starts from exactly those files, as the image's entrypoint would,
// becomes ready (/readyz) and stops cleanly on SIGTERM. Paths that are
// absolute in the pod are redirected into a temp dir with BKV_* overrides.
import test from "ava";
import { DEV_ISSUER, createDevIssuer } from "../../client/cli/dev-issuer.js";
import { execFileSync, spawn } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { freePort } from "../../chaos/net.js";
import { NODE_V8_FLAGS, nodeEnv } from "../../chaos/node-env.js";
import { tempDir } from "../temp.js";

const PIN = "5d1c0b9a8f7e6d5c4b3a29180716f5e4";

async function get(url: string): Promise<{ status: number; body: string } | null> {
  try {
    const r = await fetch(url);
    return { status: r.status, body: await r.text() };
  } catch {
    return null;
  }
}

test("a node provisioned by the init container starts, becomes ready, serves metrics and stops with exit 0", async (t) => {
  const root = tempDir(t, "bkv-pod-");
  for (const d of ["var/lib/bkv/data", "var/lib/bkv/hsm", "run/bkv/secrets", "etc/bkv-secrets/hsm", "etc/bkv-template", "etc/bkv"]) {
    mkdirSync(join(root, d), { recursive: true });
  }
  const [client, peer, admin, metrics] = [await freePort(), await freePort(), await freePort(), await freePort()];
  const template = JSON.parse(readFileSync("deploy/k8s/base/config.json", "utf8")) as Record<string, unknown>;
  template.nodes = [{ id: 1, clientAddress: `127.0.0.1:${client}`, peerAddress: `127.0.0.1:${peer}` }];
  template.threshold = 1;
  // The ConfigMap bkv-issuer-jwks of the manifests, here a development issuer's JWKS in the pod's root.
  const { jwksFile } = await createDevIssuer(root, String(template.clusterId));
  template.auth = { issuers: [{ issuer: DEV_ISSUER, jwksFile }] };
  writeFileSync(join(root, "etc/bkv-template/config.json"), JSON.stringify(template));
  writeFileSync(join(root, "etc/bkv-secrets/hsm/pin-1"), PIN);
  execFileSync("bash", ["deploy/certs/make-certs.sh", join(root, "etc/bkv-secrets/tls"), "1"], { stdio: "ignore" });
  execFileSync("bash", ["deploy/k8s/base/init-node.sh"], {
    stdio: "ignore",
    env: { ...process.env, POD_NAME: "bkv-0", BKV_INIT_ROOT: root, BKV_INIT_TOKEN_SCRIPT: "deploy/softhsm/init-token.sh", BKV_BOOTSTRAP_VOTERS: "1" },
  });

  const secrets = join(root, "run/bkv/secrets");
  const child = spawn(process.execPath, [...NODE_V8_FLAGS, "--import", "tsx", "node/server/main.ts", "--config", join(root, "etc/bkv/config.json")], {
    stdio: ["ignore", "pipe", "pipe"],
    env: {
      ...nodeEnv(1),
      BKV_DATA_DIR: join(root, "var/lib/bkv/data"), BKV_SOFTHSM2_CONF: join(root, "var/lib/bkv/hsm/softhsm2.conf"),
      BKV_HSM_PIN_FILE: join(secrets, "pin"), BKV_TLS_CA: join(secrets, "ca.crt"), BKV_TLS_CERT: join(secrets, "node.crt"), BKV_TLS_KEY: join(secrets, "node.key"),
      BKV_CLIENT_LISTEN: `127.0.0.1:${client}`, BKV_PEER_LISTEN: `127.0.0.1:${peer}`, BKV_ADMIN_LISTEN: `127.0.0.1:${admin}`, BKV_METRICS_LISTEN: `127.0.0.1:${metrics}`,
    },
  });
  let logs = "";
  child.stdout.on("data", (b: Buffer) => { logs += b.toString(); });
  child.stderr.on("data", (b: Buffer) => { logs += b.toString(); });
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  t.teardown(() => { if (child.exitCode === null) child.kill("SIGKILL"); });

  let ready = false;
  for (let i = 0; i < 240 && !ready && child.exitCode === null; i++) {
    ready = (await get(`http://127.0.0.1:${metrics}/readyz`))?.status === 200;
    if (!ready) await new Promise((r) => setTimeout(r, 250));
  }
  t.true(ready, `never ready; logs:\n${logs.slice(-2000)}`);
  t.is((await get(`http://127.0.0.1:${metrics}/healthz`))?.status, 200);
  const body = (await get(`http://127.0.0.1:${metrics}/metrics`))?.body ?? "";
  t.regex(body, /^bkv_raft_is_leader\{node="1"\} 1$/m);
  t.true(logs.split("\n").some((l) => l.includes("hsm opened") && l.includes('"bkv-node-1"')), "the token of the init container was opened");

  child.kill("SIGTERM");
  t.is(await exited, 0, logs.slice(-2000));
  t.false(logs.includes(PIN), "the PIN is never logged");
});
