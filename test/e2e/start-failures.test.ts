// How a node refuses to start, as an operator meets it: the process exits
// 1 with a line that names the cause and what to do, before it harms its
// data dir or serves a state it cannot use.
// - A second process on a running node's data dir (a second `npm start`, a
//   pod started twice on one volume) stops before it reads the dir: it
//   would take the WAL record being written for a torn tail and truncate it.
// - A token without this node's keys (re-initialized, or another node's)
//   is refused: the node could evaluate none of its shares.
// - A data dir opened as another node id (a wrong BKV_NODE_ID, swapped
//   volumes) is refused (exit 2): that node would vote with the other's log.
// - An initial voter whose data dir was wiped, on the token that already
//   served it, is refused before it bootstraps again: a voter that lost its
//   Raft state must not vote again under its old id.
// - A TLS file that is wrong is named (exit 2) before the data dir is read;
//   a first start that fails on its token writes no bootstrap snapshot, and
//   one that fails before its bootstrap leaves its token without keys, so
//   the corrected start bootstraps from the corrected config.
// - A restart whose port is in use, or whose PIN is wrong, exits before it
//   takes part in Raft: in a restart loop it would vote in every election
//   it lived through.
import { execFileSync, spawn } from "node:child_process";
import { copyFileSync, cpSync, existsSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { createHash } from "node:crypto";
import { createServer } from "node:net";
import { join, resolve } from "node:path";
import test from "ava";
import { NODE_V8_FLAGS, nodeEnv } from "../../chaos/node-env.js";
import { LocalCluster, reportLogsOnFailure } from "../../testkit/cluster.js";

reportLogsOnFailure(test);

const ROOT = resolve(import.meta.dirname, "../..");

/** Runs bkv-node on `configFile` until it exits (SIGTERM once its output matches `until`, or `ms` pass); its exit code and output. */
function runNode(configFile: string, { ms = 60_000, until = /$^/ } = {}): Promise<{ code: number | null; out: string }> {
  const proc = spawn(process.execPath, [...NODE_V8_FLAGS, "--import", "tsx", join(ROOT, "node/server/main.ts"), "--config", configFile], {
    cwd: ROOT, env: nodeEnv(1), stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  proc.stdout.on("data", (d: Buffer) => {
    out += d.toString();
    if (until.test(out)) proc.kill("SIGTERM");
  });
  proc.stderr.on("data", (d: Buffer) => { out += d.toString(); });
  const timer = setTimeout(() => proc.kill("SIGTERM"), ms);
  return new Promise((done) => proc.once("exit", (code) => {
    clearTimeout(timer);
    done({ code, out });
  }));
}

/** A 1-node cluster whose node is stopped for `body`; closed after. */
async function withStoppedNode(t: import("ava").ExecutionContext, body: (cluster: LocalCluster) => Promise<void>): Promise<void> {
  t.timeout(180_000);
  const cluster = await LocalCluster.start({ size: 1 });
  try {
    await cluster.stop(1);
    await body(cluster);
  } finally {
    await cluster.close();
  }
}

test.serial("a second process on a running node's data dir exits 1 naming the holder's pid, before it reads the dir; the node serves on", async (t) => {
  t.timeout(180_000);
  const cluster = await LocalCluster.start({ size: 1 });
  try {
    const holder = cluster.node(1).proc?.pid;
    const second = await runNode(cluster.node(1).configFile);
    t.is(second.code, 1);
    t.regex(second.out, new RegExp(`"msg":"start failed".*the data dir .*data-1 is in use by another bkv-node process \\(pid ${holder}\\)`));
    t.notRegex(second.out, /"msg":"raft log opened"/, "it never opened the WAL");
    t.false(cluster.exited(1));
    t.is(Number((await cluster.status(1)).leaderId), 1, "the running node still leads");
  } finally {
    await cluster.close();
  }
});

test.serial("a node whose token was re-initialized (other keys than it announced) exits 1 and says it is not this node's token", async (t) => {
  await withStoppedNode(t, async (cluster) => {
    const hsmDir = join(cluster.dir, "hsm-1");
    rmSync(hsmDir, { recursive: true, force: true });
    execFileSync("bash", [join(ROOT, "deploy/softhsm/init-token.sh"), hsmDir, "bkv-e2e-1"], { stdio: "ignore" });
    const run = await runNode(cluster.node(1).configFile);
    t.is(run.code, 1);
    t.regex(run.out, /"msg":"start failed".*"name":"TokenKeysMismatchError".*the HSM token 'bkv-e2e-1' holds other keys than node 1 announced/);
    t.notRegex(run.out, /"msg":"node started"/);
    t.false(run.out.includes(cluster.pin(1)), "no PIN in the output");
  });
});

test.serial("a voter whose data dir was wiped, on the token that served it, exits 1 before it bootstraps; its data dir restored, it starts", async (t) => {
  await withStoppedNode(t, async (cluster) => {
    const dataDir = join(cluster.dir, "data-1");
    cpSync(dataDir, `${dataDir}.backup`, { recursive: true });
    rmSync(dataDir, { recursive: true });
    const run = await runNode(cluster.node(1).configFile);
    t.is(run.code, 1);
    t.regex(run.out, /"msg":"start failed".*"name":"LostRaftStateError".*the HSM token 'bkv-e2e-1' already served node 1 .*holds no Raft state.*bkv admin remove 1/);
    t.notRegex(run.out, /"msg":"(bootstrapped a new member|node started)"/);
    t.deepEqual(readdirSync(join(dataDir, "raft", "snap")), [], "no bootstrap snapshot");
    for (const entry of ["identity.json", "vault", "evaluations", "audit.log"]) t.false(existsSync(join(dataDir, entry)), `no ${entry}`);
    t.false(run.out.includes(cluster.pin(1)), "no PIN in the output");

    rmSync(dataDir, { recursive: true });
    cpSync(`${dataDir}.backup`, dataDir, { recursive: true });
    const restored = await runNode(cluster.node(1).configFile, { until: /"msg":"node started"/ });
    t.is(restored.code, 0);
    t.notRegex(restored.out, /"msg":"bootstrapped a new member"/, "it resumed from its restored Raft state");
  });
});

test.serial("a bad TLS file exits 2 naming it before the stores open; a first start failing on its token or its config leaves no bootstrap and no keys behind", async (t) => {
  await withStoppedNode(t, async (cluster) => {
    const { configFile } = cluster.node(1);
    const cert = join(cluster.certsDir, "node-1.crt");
    copyFileSync(cert, `${cert}.good`);
    writeFileSync(cert, "not a certificate\n");
    const tls = await runNode(configFile);
    t.is(tls.code, 2);
    t.regex(tls.out, /"msg":"start failed".*config: tls\.cert file .*node-1\.crt holds no PEM certificate/);
    t.notRegex(tls.out, /"msg":"raft log opened"/);
    copyFileSync(`${cert}.good`, cert);

    // A new node's first start: an empty data dir and a new token (a used token with an empty data dir is refused, above).
    const dataDir = join(cluster.dir, "data-1");
    rmSync(dataDir, { recursive: true });
    const hsmDir = join(cluster.dir, "hsm-1");
    rmSync(hsmDir, { recursive: true });
    execFileSync("bash", [join(ROOT, "deploy/softhsm/init-token.sh"), hsmDir, "bkv-e2e-1"], { stdio: "ignore" });
    // A first start that fails after the stores opened, on the bootstrap's JWKS file: the token is not opened yet,
    // so it holds no keys, and the corrected start is not taken for a voter that lost its Raft state.
    renameSync(cluster.jwksFile, `${cluster.jwksFile}.aside`);
    const jwks = await runNode(configFile);
    t.is(jwks.code, 1);
    t.regex(jwks.out, /"msg":"start failed".*ENOENT.*dev-issuer\.jwks\.json/);
    t.notRegex(jwks.out, /"msg":"hsm opened"/, "the token was not opened");
    renameSync(`${cluster.jwksFile}.aside`, cluster.jwksFile);
    const pinFile = join(hsmDir, "pin");
    const pin = cluster.pin(1);
    writeFileSync(pinFile, "wrong-pin-4711\n");
    const first = await runNode(configFile);
    t.is(first.code, 1);
    t.regex(first.out, /"msg":"start failed".*CKR_PIN_INCORRECT/);
    t.deepEqual(readdirSync(join(dataDir, "raft", "snap")), [], "no bootstrap snapshot from the failed first start");
    t.false(first.out.includes(pin) || first.out.includes("wrong-pin-4711"), "no PIN in the output");
    writeFileSync(pinFile, `${pin}\n`);
    const second = await runNode(configFile, { until: /"msg":"node started"/ });
    t.is(second.code, 0);
    t.regex(second.out, /"msg":"bootstrapped a new member"/);
  });
});

test.serial("a data dir opened as another node id exits 2 naming both ids, before the stores open", async (t) => {
  await withStoppedNode(t, async (cluster) => {
    const { configFile } = cluster.node(1);
    const config = JSON.parse(readFileSync(configFile, "utf8")) as { nodeId: number; nodes: Array<{ id: number }> };
    writeFileSync(configFile, JSON.stringify({ ...config, nodeId: 2, nodes: config.nodes.map((n) => ({ ...n, id: 2 })) }));
    const run = await runNode(configFile);
    t.is(run.code, 2);
    t.regex(run.out, /"msg":"start failed".*config: dataDir .*data-1 holds the data of node 1 of cluster \\"e2e-cluster\\", not of node 2/);
    t.notRegex(run.out, /"msg":"raft log opened"/);
  });
});

/** A digest of every file under `dir` (its relative paths and contents). */
function filesDigest(dir: string): string {
  const h = createHash("sha256");
  for (const f of (readdirSync(dir, { recursive: true }) as string[]).sort()) {
    const path = join(dir, f);
    try {
      h.update(f).update(readFileSync(path));
    } catch { /* a directory */ }
  }
  return h.digest("hex");
}

test.serial("a restart whose admin port is in use, or whose PIN is wrong, exits 1 before it takes part in Raft; corrected, it starts", async (t) => {
  t.timeout(240_000);
  const cluster = await LocalCluster.start({ size: 3 });
  try {
    await cluster.stop(1);
    const { configFile, admin } = cluster.node(1);
    const raftDir = join(cluster.dir, "data-1", "raft");
    const before = filesDigest(raftDir);
    const squatter = createServer();
    const [host, port] = admin.split(":") as [string, string];
    await new Promise<void>((r) => squatter.listen(Number(port), host, r));
    const busy = await runNode(configFile).finally(() => squatter.close());
    t.is(busy.code, 1);
    t.regex(busy.out, /"msg":"start failed".*EADDRINUSE.*"action":"adminListen \(127\.0\.0\.1:\d+\) is in use by another process/);
    t.notRegex(busy.out, /"msg":"(raft log opened|hsm opened)"/, "the ports are bound before the stores and the token open");

    const pinFile = join(cluster.dir, "hsm-1", "pin");
    const pin = cluster.pin(1); // read from pinFile
    writeFileSync(pinFile, "wrong-pin-4711\n");
    const wrongPin = await runNode(configFile);
    t.is(wrongPin.code, 1);
    t.regex(wrongPin.out, /"msg":"start failed".*CKR_PIN_INCORRECT/);
    t.notRegex(wrongPin.out, /"msg":"first message from a peer"/, "no Raft message reached the node: its peer port was never opened");
    t.is(filesDigest(raftDir), before, "its Raft state is as it was: no vote, no entry");
    t.false(wrongPin.out.includes(pin) || wrongPin.out.includes("wrong-pin-4711"), "no PIN in the output");

    writeFileSync(pinFile, `${pin}\n`);
    const fixed = await runNode(configFile, { until: /"msg":"node started"/ });
    t.is(fixed.code, 0, fixed.out.slice(-3000));
  } finally {
    await cluster.close();
  }
});
