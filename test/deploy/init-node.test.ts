// deploy/k8s/base/init-node.sh (the vault pod's init container) run for real
// against a temporary root: node id from the pod ordinal, per-node secrets,
// rendered config accepted by bkv-node's config loader, SoftHSM token created
// once, PIN files gone afterwards, and refusals with clear messages.
import test from "ava";
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync, copyFileSync } from "node:fs";
import { join } from "node:path";
import { validate } from "../../node/server/config.js";
import { tempDir } from "../temp.js";

const SCRIPT = "deploy/k8s/base/init-node.sh";
const PIN = "7f3a9c0e5b21d4468e0f1a2b3c4d5e6f";

interface Root { dir: string; run(pod: string, env?: Record<string, string>): { status: number | null; out: string } }

function makeRoot(t: import("ava").ExecutionContext, configFile = "deploy/k8s/base/config.json", ids = [1, 2, 3]): Root {
  const dir = tempDir(t, "bkv-init-");
  for (const d of ["var/lib/bkv/data", "var/lib/bkv/hsm", "run/bkv/secrets", "etc/bkv-secrets/hsm", "etc/bkv-template", "etc/bkv"]) {
    mkdirSync(join(dir, d), { recursive: true });
  }
  copyFileSync(configFile, join(dir, "etc/bkv-template/config.json"));
  for (const id of ids) writeFileSync(join(dir, `etc/bkv-secrets/hsm/pin-${id}`), `${PIN.slice(0, 30)}${id}${id}`);
  execFileSync("bash", ["deploy/certs/make-certs.sh", join(dir, "etc/bkv-secrets/tls"), ...ids.map(String)], { stdio: "ignore" });
  const run = (pod: string, env: Record<string, string> = {}) => {
    const r = spawnSync("bash", [SCRIPT], {
      encoding: "utf8",
      env: { ...process.env, POD_NAME: pod, BKV_INIT_ROOT: dir, BKV_INIT_TOKEN_SCRIPT: "deploy/softhsm/init-token.sh", BKV_BOOTSTRAP_VOTERS: "3", ...env },
    });
    return { status: r.status, out: `${r.stdout}${r.stderr}` };
  };
  return { dir, run };
}

const renderedConfig = (root: Root) => JSON.parse(readFileSync(join(root.dir, "etc/bkv/config.json"), "utf8")) as Record<string, unknown>;

function tokenLabels(root: Root): string[] {
  const out = execFileSync("softhsm2-util", ["--show-slots"], { encoding: "utf8", env: { ...process.env, SOFTHSM2_CONF: join(root.dir, "var/lib/bkv/hsm/softhsm2.conf") } });
  return [...out.matchAll(/^\s*Label:\s*(\S.*?)\s*$/gm)].map((m) => m[1] as string);
}

test("pod bkv-1 becomes node 2: own secrets, token bkv-node-2, a config bkv-node accepts, no PIN left on the volume", (t) => {
  const root = makeRoot(t);
  const r = root.run("bkv-1");
  t.is(r.status, 0, r.out);
  t.false(r.out.includes(PIN.slice(0, 30)), "the PIN is never printed");
  t.is(readFileSync(join(root.dir, "var/lib/bkv/data/node-id"), "utf8").trim(), "2");
  const cfg = validate(renderedConfig(root), "/");
  t.is(cfg.nodeId, 2);
  t.false(cfg.join);
  t.is(cfg.hsm.tokenLabel, "bkv-node-2");
  t.is(cfg.hsm.pinFile, "/run/bkv/secrets/pin");
  t.is(readFileSync(join(root.dir, "run/bkv/secrets/pin"), "utf8"), `${PIN.slice(0, 30)}22`);
  t.is(statSync(join(root.dir, "run/bkv/secrets/node.key")).mode & 0o777, 0o400);
  t.is(readFileSync(join(root.dir, "run/bkv/secrets/node.crt"), "utf8"), readFileSync(join(root.dir, "etc/bkv-secrets/tls/node-2.crt"), "utf8"));
  t.deepEqual(tokenLabels(root), ["bkv-node-2"]);
  t.false(existsSync(join(root.dir, "var/lib/bkv/hsm/pin")));
  t.false(existsSync(join(root.dir, "var/lib/bkv/hsm/so-pin")));
});

test("a restart keeps the token and the id; another ordinal on the same volumes is refused", (t) => {
  const root = makeRoot(t);
  t.is(root.run("bkv-0").status, 0);
  const again = root.run("bkv-0");
  t.is(again.status, 0, again.out);
  t.regex(again.out, /already present/);
  t.deepEqual(tokenLabels(root), ["bkv-node-1"]);
  const other = root.run("bkv-2");
  t.is(other.status, 1);
  t.regex(other.out, /belongs to node 1, not 3: refusing/);
});

test("missing secrets, a pod name without ordinal and an unlisted node fail with a clear message", (t) => {
  const root = makeRoot(t, "deploy/k8s/base/config.json", [1, 2, 3]);
  rmSync(join(root.dir, "etc/bkv-secrets/hsm/pin-3"));
  const noPin = root.run("bkv-2");
  t.is(noPin.status, 1);
  t.regex(noPin.out, /HSM PIN of node 3 \(Secret bkv-hsm, key pin-3\) is missing/);
  t.is(root.run("bkv").status, 1);
  t.regex(root.run("vault").out, /does not end in a StatefulSet ordinal/);
  const root2 = makeRoot(t, "deploy/k8s/base/config.json", [4]);
  const unlisted = root2.run("bkv-3");
  t.is(unlisted.status, 1);
  t.regex(unlisted.out, /lists no node 4/);
  t.false(existsSync(join(root2.dir, "etc/bkv/config.json")));
});

test("a replaced ordinal takes its mapped id and joins; a token without Raft state is refused", (t) => {
  const dir = tempDir(t, "bkv-init-cfg-");
  const base = JSON.parse(readFileSync("deploy/k8s/base/config.json", "utf8")) as { nodes: Array<Record<string, unknown>> };
  base.nodes[1] = { ...base.nodes[1], id: 4 };
  writeFileSync(join(dir, "config.json"), JSON.stringify(base));
  const root = makeRoot(t, join(dir, "config.json"), [4]);
  const r = root.run("bkv-1", { BKV_NODE_IDS: "0=1,1=4" });
  t.is(r.status, 0, r.out);
  const cfg = validate(renderedConfig(root), "/");
  t.is(cfg.nodeId, 4);
  t.true(cfg.join);
  t.deepEqual(tokenLabels(root), ["bkv-node-4"]);
  t.regex(root.run("bkv-1", { BKV_NODE_IDS: "1=x" }).out, /entry '1=x' is not ORDINAL=ID/);
  t.regex(root.run("bkv-1", { BKV_BOOTSTRAP_VOTERS: "" }).out, /BKV_BOOTSTRAP_VOTERS must be/);

  rmSync(join(root.dir, "var/lib/bkv/data/node-id"));
  const lost = root.run("bkv-1", { BKV_NODE_IDS: "1=4" });
  t.is(lost.status, 1);
  t.regex(lost.out, /has a token but an empty data volume: node 4 lost its Raft state/);
});

for (const overlay of ["kind", "production"]) {
  test(`overlay ${overlay}: the config renders for every node id and passes bkv-node's validation`, (t) => {
    const file = `deploy/k8s/overlays/${overlay}/config.json`;
    const n = (JSON.parse(readFileSync(file, "utf8")) as { nodes: unknown[] }).nodes.length;
    const ids = Array.from({ length: n }, (_, i) => i + 1);
    for (const id of ids) {
      const root = makeRoot(t, file, [id]);
      const r = root.run(`bkv-${id - 1}`, { BKV_INIT_SOFTHSM: "false", BKV_BOOTSTRAP_VOTERS: String(n) });
      t.is(r.status, 0, r.out);
      const cfg = validate(renderedConfig(root), "/");
      t.is(cfg.nodeId, id);
      t.false(cfg.join);
      t.is(cfg.threshold, Math.floor(n / 2) + 1);
      t.false(existsSync(join(root.dir, "var/lib/bkv/hsm/softhsm2.conf")), "no SoftHSM token when BKV_INIT_SOFTHSM=false");
    }
  });
}
