// bkv-node configuration: file + BKV_* overrides, validation errors that name
// the field, and the PIN never in an error.
import test from "ava";
import { writeFileSync } from "node:fs";
import { spawnSync } from "node:child_process";
import { join, resolve } from "node:path";
import { ConfigError, loadConfig } from "../../node/server/config.js";
import { fileTempDir } from "../temp.js";

const dir = fileTempDir("bkv-config-");
const base = {
  nodeId: 1, clusterId: "c1", dataDir: "data", clientListen: "127.0.0.1:7101", peerListen: "127.0.0.1:7201",
  adminListen: "127.0.0.1:7301", hsm: { tokenLabel: "t1", pinFile: "pin" },
  tls: { ca: "ca.crt", cert: "n.crt", key: "n.key" },
  auth: { issuers: [{ issuer: "https://accounts.example", jwksFile: "jwks.json" }] },
  nodes: [1, 2, 3].map((id) => ({ id, clientAddress: `127.0.0.1:710${id}`, peerAddress: `127.0.0.1:720${id}` })),
};

function file(obj: unknown): string {
  const f = join(dir, `${Math.random().toString(16).slice(2)}.json`);
  writeFileSync(f, JSON.stringify(obj));
  return f;
}

test("a valid file gets defaults and paths relative to the file", (t) => {
  const c = loadConfig(file(base), {});
  t.is(c.threshold, 2);
  t.is(c.dataDir, join(dir, "data"));
  t.is(c.hsm.pinFile, join(dir, "pin"));
  t.is(c.snapshotInterval, 10_000);
  t.is(c.snapshotRetention, 2);
  t.is(c.metricsListen, "");
  t.deepEqual(c.auth, { enabled: true, issuers: [{ issuer: "https://accounts.example", jwksFile: join(dir, "jwks.json") }], clockSkewSec: 60, maxTokenLifetimeSec: 3600 });
  t.is(c.limits.userPerSec, 5);
  t.is(c.limits.maxMessageBytes, 256 * 1024);
  t.deepEqual(c.snapshotDownload, { idleTimeoutMs: 60_000, minBytesPerSecond: 1024 * 1024, maxBytes: 16 * 1024 ** 3, diskReserveBytes: 256 * 1024 * 1024 });
});

test("snapshotDownload: each bound from the file or its default; the size bounds from the environment too; 0 turns off the rate floor, or the reserve", (t) => {
  const c = loadConfig(file({ ...base, snapshotDownload: { idleTimeoutMs: 5_000, minBytesPerSecond: 0 } }), { BKV_SNAPSHOT_DOWNLOAD_MAX_BYTES: "1073741824", BKV_SNAPSHOT_DOWNLOAD_DISK_RESERVE_BYTES: "0" });
  t.deepEqual(c.snapshotDownload, { idleTimeoutMs: 5_000, minBytesPerSecond: 0, maxBytes: 1024 ** 3, diskReserveBytes: 0 });
  t.throws(() => loadConfig(file({ ...base, snapshotDownload: { idleTimeoutMs: 0 } }), {}), { instanceOf: ConfigError, message: /snapshotDownload\.idleTimeoutMs must be a positive integer/ });
  t.throws(() => loadConfig(file({ ...base, snapshotDownload: { maxBytes: 0 } }), {}), { instanceOf: ConfigError, message: /snapshotDownload\.maxBytes must be a positive integer/ });
  t.throws(() => loadConfig(file({ ...base, snapshotDownload: { minBytesPerSecond: -1 } }), {}), { instanceOf: ConfigError, message: /snapshotDownload\.minBytesPerSecond/ });
  t.throws(() => loadConfig(file(base), { BKV_SNAPSHOT_DOWNLOAD_DISK_RESERVE_BYTES: "lots" }), { instanceOf: ConfigError, message: /BKV_SNAPSHOT_DOWNLOAD_DISK_RESERVE_BYTES must be an integer/ });
  t.throws(() => loadConfig(file({ ...base, snapshotDownload: 5 }), {}), { instanceOf: ConfigError, message: /snapshotDownload must be an object/ });
});

test("client authentication is on unless the file says disabled: true; no environment variable turns it off", (t) => {
  const { auth: _auth, ...noAuth } = base;
  t.throws(() => loadConfig(file(noAuth), {}), { instanceOf: ConfigError, message: /config: auth is required/ });
  t.deepEqual(loadConfig(file({ ...base, auth: { disabled: true } }), {}).auth, { enabled: false });
  t.true(loadConfig(file({ ...base, auth: { disabled: false, issuers: base.auth.issuers } }), {}).auth.enabled);
  t.throws(() => loadConfig(file({ ...base, auth: { disabled: true, issuers: base.auth.issuers } }), {}), { instanceOf: ConfigError, message: /both disabled/ });
  t.throws(() => loadConfig(file({ ...base, auth: { issuers: [] } }), {}), { instanceOf: ConfigError, message: /auth\.issuers must be a non-empty array/ });
  t.throws(() => loadConfig(file({ ...base, auth: { issuers: [base.auth.issuers[0], base.auth.issuers[0]] } }), {}), { instanceOf: ConfigError, message: /duplicates issuer/ });
  t.throws(() => loadConfig(file({ ...base, limits: { userPerSec: 0 } }), {}), { instanceOf: ConfigError, message: /limits\.userPerSec/ });
  t.throws(() => loadConfig(file({ ...base, limits: { maxConnectionsPerAddress: -1 } }), {}), { instanceOf: ConfigError, message: /limits\.maxConnectionsPerAddress/ });
  const caps = loadConfig(file({ ...base, limits: { maxConnections: 2000 } }), {}).limits;
  t.deepEqual([caps.maxConnections, caps.maxConnectionsPerAddress, caps.connectsPerSecPerAddress], [2000, 64, 20], "a cap not given keeps its default");
  t.throws(() => loadConfig(file({ ...base, limits: { connectsPerSecPerAddress: 0 } }), {}), { instanceOf: ConfigError, message: /limits\.connectsPerSecPerAddress/ });
  const env = { BKV_AUTH_DISABLED: "true", BKV_AUTH: "off", BKV_AUTH_ENABLED: "false" };
  t.true(loadConfig(file(base), env).auth.enabled);
});

test("environment variables override the file", (t) => {
  const c = loadConfig(file(base), { BKV_NODE_ID: "2", BKV_THRESHOLD: "3", BKV_CLIENT_LISTEN: "0.0.0.0:9000", BKV_LOG_LEVEL: "debug", BKV_HSM_TOKEN_LABEL: "t2", BKV_SNAPSHOT_RETENTION: "3" });
  t.is(c.nodeId, 2);
  t.is(c.snapshotRetention, 3);
  t.is(c.threshold, 3);
  t.is(c.clientListen, "0.0.0.0:9000");
  t.is(c.logLevel, "debug");
  t.is(c.hsm.tokenLabel, "t2");
  t.is(c.hsm.recycleAfter, 20_000, "the default");
  t.is(loadConfig(file(base), { BKV_HSM_RECYCLE_AFTER: "0" }).hsm.recycleAfter, 0, "0: never");
});

test("BKV_HSM_PIN replaces the PIN file and never appears in the config", (t) => {
  const c = loadConfig(file(base), { BKV_HSM_PIN: "s3cret-pin" });
  t.is(c.hsm.pinEnv, "BKV_HSM_PIN");
  t.is(c.hsm.pinFile, undefined);
  t.false(JSON.stringify(c).includes("s3cret-pin"));
});

test("validation errors name the field", (t) => {
  const bad: Array<[Record<string, unknown>, RegExp]> = [
    [{ ...base, nodeId: 0 }, /nodeId/],
    [{ ...base, nodeId: 4 }, /nodes must list this node/],
    [{ ...base, clientListen: "nohost" }, /clientListen must be host:port/],
    [{ ...base, threshold: 4 }, /threshold/],
    [{ ...base, hsm: { tokenLabel: "t" } }, /hsm needs exactly one of pinFile/],
    [{ ...base, hsm: { ...base.hsm, recycleAfter: -1 } }, /hsm\.recycleAfter/],
    [{ ...base, nodes: [...base.nodes, base.nodes[0]] }, /nodes\[3\]\.id duplicates/],
    [{ ...base, logLevel: "loud" }, /logLevel/],
    [{ ...base, snapshotRetention: 0 }, /snapshotRetention must be a positive integer/],
    [{ ...base, tls: undefined }, /tls must be an object/],
  ];
  for (const [cfg, re] of bad) {
    const err = t.throws(() => loadConfig(file(cfg), {}), { instanceOf: ConfigError });
    t.regex(err?.message ?? "", re);
  }
  t.throws(() => loadConfig(join(dir, "missing.json"), {}), { instanceOf: ConfigError, message: /cannot be read/ });
});

test("a PIN given in the environment is absent from every validation error", (t) => {
  const err = t.throws(() => loadConfig(file({ ...base, clusterId: "" }), { BKV_HSM_PIN: "s3cret-pin" }), { instanceOf: ConfigError });
  t.false(err?.message.includes("s3cret-pin"));
});

test("a key that is not a setting is refused with its path, at every level, never with its value", (t) => {
  const cases: Array<[Record<string, unknown>, RegExp]> = [
    [{ ...base, snapshotIntervall: 500 }, /^config: snapshotIntervall is not a setting \(did you mean snapshotInterval\?\)$/],
    [{ ...base, hsm: { ...base.hsm, pin: "s3cret-pin" } }, /^config: hsm\.pin is not a setting/],
    [{ ...base, tls: { ...base.tls, chain: "x" } }, /^config: tls\.chain is not a setting/],
    [{ ...base, limits: { userPerSecond: 5 } }, /^config: limits\.userPerSecond is not a setting \(did you mean userPerSec\?\)/],
    [{ ...base, snapshotDownload: { maxbytes: 5 } }, /^config: snapshotDownload\.maxbytes is not a setting \(did you mean maxBytes\?\)/],
    [{ ...base, nodes: [{ ...base.nodes[0], adminAdress: "127.0.0.1:7301" }, ...base.nodes.slice(1)] }, /^config: nodes\[0\]\.adminAdress is not a setting \(did you mean adminAddress\?\)/],
    [{ ...base, auth: { ...base.auth, clockSkew: 5 } }, /^config: auth\.clockSkew is not a setting/],
    [{ ...base, auth: { issuers: [{ ...base.auth.issuers[0], jwks: "x" }] } }, /^config: auth\.issuers\[0\]\.jwks is not a setting/],
    [{ ...base, throttle: { free: 1, delaysSeconds: [1], delays: [1] } }, /^config: throttle\.delays is not a setting/],
  ];
  for (const [cfg, re] of cases) {
    const err = t.throws(() => loadConfig(file(cfg), {}), { instanceOf: ConfigError });
    t.regex(err?.message ?? "", re);
    t.false(err?.message.includes("s3cret-pin"));
  }
});

test("a numeric variable that is not a number is refused naming the variable and its value", (t) => {
  t.throws(() => loadConfig(file(base), { BKV_NODE_ID: "one" }), { instanceOf: ConfigError, message: 'config: BKV_NODE_ID must be an integer (got "one")' });
  t.throws(() => loadConfig(file(base), { BKV_SNAPSHOT_INTERVAL: "10k" }), { instanceOf: ConfigError, message: /^config: BKV_SNAPSHOT_INTERVAL must be an integer/ });
  t.is(loadConfig(file(base), { BKV_SNAPSHOT_INTERVAL: "500" }).snapshotInterval, 500);
});

test("an election timeout not longer than the heartbeat is a config error, not a Raft panic at start", (t) => {
  t.throws(() => loadConfig(file({ ...base, heartbeatTick: 20 }), {}), { instanceOf: ConfigError, message: "config: electionTick must be greater than heartbeatTick (20; got 10)" });
  t.throws(() => loadConfig(file({ ...base, electionTick: 3, heartbeatTick: 3 }), {}), { instanceOf: ConfigError, message: /electionTick must be greater than heartbeatTick/ });
  t.is(loadConfig(file({ ...base, electionTick: 3, heartbeatTick: 2 }), {}).electionTick, 3);
});

test("bkv-node with neither --config nor a BKV_* variable exits 64 saying so, with the usage", (t) => {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("BKV_")));
  const run = spawnSync(process.execPath, ["--import", "tsx", "node/server/main.ts"], { cwd: resolve(import.meta.dirname, "../.."), env, encoding: "utf8", timeout: 60_000 });
  t.is(run.status, 64, run.stderr);
  t.regex(run.stderr, /^bkv-node: no configuration: --config FILE is required/m);
  t.regex(run.stderr, /Usage: bkv-node --config FILE/);
});
