// The `bkv` CLI, driven through run() with in-memory I/O (and once as a real
// process), against the in-process fake cluster.
import test from "ava";
import { execFile } from "node:child_process";
import { type Socket, createServer } from "node:net";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { EXIT, run } from "../../client/cli/main.js";
import { COMMANDS } from "../../client/cli/commands.js";
import { type CliIo, splitSecretLines } from "../../client/cli/io.js";
import { descriptorToJson, parseKey } from "../../client/sdk/index.js";
import * as grpc from "@grpc/grpc-js";
import { ErrorReason } from "../../proto/gen/bkv/v1/status_pb.js";
import { type Fault, FakeCluster, fail, makeFakeTls } from "./fake-cluster.js";
import { tempDir } from "../temp.js";

interface Result {
  code: number;
  out: string;
  err: string;
}

async function bkv(argv: string[], stdin = "", env: NodeJS.ProcessEnv = {}): Promise<Result> {
  let out = "";
  let err = "";
  const io: CliIo = {
    readSecrets: async (prompts) => splitSecretLines(stdin, prompts.length),
    stdout: (s) => (out += s),
    stderr: (s) => (err += s),
    stderrIsTTY: false,
    env,
  };
  const code = await run(argv, io);
  return { code, out, err };
}

test("unknown commands and options are usage errors (64)", async (t) => {
  const r = await bkv(["frobnicate"]);
  t.is(r.code, EXIT.USAGE);
  t.regex(r.err, /unknown command "frobnicate"/);
  t.is((await bkv(["recover", "--user", "u", "--password-stdin", "--verbose"])).code, EXIT.USAGE);
  t.is((await bkv(["recover", "--password-stdin"])).code, EXIT.USAGE, "--user is required");
  t.is((await bkv(["recover", "--user"])).code, EXIT.USAGE, "--user needs a value");
  t.is((await bkv(["register", "--user", "u", "--password-stdin", "--guess-limit", "0"])).code, EXIT.USAGE);
  t.is((await bkv(["key", "generate", "extra"])).code, EXIT.USAGE);
});

test("a password or key on argv is refused and never echoed", async (t) => {
  for (const argv of [
    ["recover", "--user", "u", "--password", "hunter2"],
    ["recover", "--user", "u", "--password=hunter2"],
    ["register", "--user", "u", "--key", "hunter2"],
  ]) {
    const r = await bkv(argv);
    t.is(r.code, EXIT.USAGE);
    t.regex(r.err, /never read from the command line/);
    t.false(r.err.includes("hunter2"));
  }
  const r = await bkv(["recover", "--user", "u"]);
  t.is(r.code, EXIT.USAGE);
  t.regex(r.err, /--password-stdin/);
});

test("every command has --help", async (t) => {
  for (const c of COMMANDS) {
    const r = await bkv([...c.name.split(" "), "--help"]);
    t.is(r.code, 0, c.name);
    t.true(r.out.startsWith(`Usage: bkv ${c.name}`), c.name);
  }
  const top = await bkv(["--help"]);
  t.is(top.code, 0);
  t.regex(top.out, /Exit codes/);
  // Every command the overview lists runs: its --help exits 0.
  const block = top.out.slice(top.out.indexOf("Commands:\n"), top.out.indexOf("Passwords and keys"));
  const listed = block.split("\n").filter((line) => /^ {2}\S/.test(line)).map((line) => line.trim().split(/\s{2,}/)[0]!);
  t.true(listed.length > COMMANDS.length, listed.join(", "));
  for (const name of listed) t.is((await bkv([...name.split(" "), "--help"])).code, 0, `the overview lists "${name}"`);
});

test("--version prints the package's version; --help and --version need no SDK code (the CLI's static imports of it are type-only)", async (t) => {
  const { version } = JSON.parse(await readFile("package.json", "utf8")) as { version: string };
  t.deepEqual(await bkv(["--version"]), { code: EXIT.OK, out: `bkv ${version}\n`, err: "" });
  t.is((await bkv(["--version", "extra"])).code, EXIT.USAGE);
  for (const file of ["main.ts", "commands.ts", "args.ts", "io.ts"]) {
    const src = await readFile(join("client/cli", file), "utf8");
    const eager = [...src.matchAll(/^import (?!type )[^;]*? from "(\.\.\/(?:sdk|backup)\/[^"]+|@grpc\/[^"]+|@bufbuild\/[^"]+)";$/gms)].map((m) => m[1]);
    t.deepEqual(eager, [], `${file} loads SDK code at start`);
  }
});

test("key generate prints a grouped key", async (t) => {
  const r = await bkv(["key", "generate"]);
  t.is(r.code, 0);
  t.regex(r.out, /^([0-9a-f]{4} ){15}[0-9a-f]{4}\n$/);
});

test("a missing or bad descriptor exits 7", async (t) => {
  const r = await bkv(["recover", "--user", "u", "--password-stdin", "--cluster", "/nonexistent/cluster.json"], "pw\n");
  t.is(r.code, EXIT.DESCRIPTOR);
  t.regex(r.err, /no such file/);
  const env = await bkv(["status"], "", { BKV_CLUSTER: "/nonexistent/env.json" });
  t.regex(env.err, /env\.json/, "$BKV_CLUSTER is used");
});

test("bkv admin: without an endpoint it says what to pass; else it reads the local cluster's admin.json beside the descriptor, and names a bad one", async (t) => {
  const dir = tempDir(t, "bkv-cli-admin-");
  const env = { BKV_CLUSTER: join(dir, "cluster.json") };
  let r = await bkv(["admin", "status"], "", env);
  t.is(r.code, EXIT.USAGE);
  t.regex(r.err, /no admin endpoint: pass --endpoints host:port.* or set BKV_ADMIN_ENDPOINTS \(or start a local cluster with `npm start`\)/);
  await writeFile(join(dir, "admin.json"), "{ not json");
  r = await bkv(["admin", "status"], "", env);
  t.is(r.code, EXIT.USAGE);
  t.true(r.err.includes(`${join(dir, "admin.json")}: not a local cluster's admin settings`), r.err);
  await writeFile(join(dir, "admin.json"), JSON.stringify({ endpoints: "127.0.0.1:1", certs: "certs" }));
  r = await bkv(["admin", "status"], "", env);
  t.is(r.code, EXIT.USAGE);
  t.regex(r.err, /admin\.json: expected \{"endpoints": \["host:port", \.\.\.\], "certs": "DIR"\}/);
  await writeFile(join(dir, "admin.json"), JSON.stringify({ endpoints: ["127.0.0.1:1"], certs: "certs" }));
  r = await bkv(["admin", "status"], "", env);
  t.is(r.code, EXIT.USAGE);
  t.true(r.err.includes(`${join(dir, "certs", "ca.crt")} does not exist`), `certs is relative to admin.json: ${r.err}`);
  // Given both --endpoints and --certs, the file is not read.
  await writeFile(join(dir, "admin.json"), "{ not json");
  r = await bkv(["admin", "status", "--endpoints", "127.0.0.1:1", "--certs", join(dir, "mine")], "", env);
  t.is(r.code, EXIT.USAGE);
  t.true(r.err.includes(`${join(dir, "mine", "ca.crt")} does not exist`), r.err);
});

test("bkv admin status: when no admin port answers it names each address and why (exit 5), not an empty table", async (t) => {
  const dir = tempDir(t, "bkv-cli-admin-down-");
  await promisify(execFile)("bash", [join(process.cwd(), "deploy/certs/make-certs.sh"), dir, "operator"]);
  for (const json of [false, true]) {
    const r = await bkv(["admin", "status", "--endpoints", "127.0.0.1:1", "--certs", dir, "--timeout", "2", ...(json ? ["--json"] : [])]);
    t.is(r.code, EXIT.UNAVAILABLE, r.err);
    t.is(r.out, "", "no table without a single answer");
    t.regex(r.err, /no admin port answered: 127\.0\.0\.1:1: .*ECONNREFUSED/);
  }
});

test("bkv admin: a TLS file that is a directory (or a missing key-set file) exits 8, one that is not PEM or a key that does not match the certificate exits 64, each naming the flag", async (t) => {
  const dir = tempDir(t, "bkv-cli-admin-tls-");
  await promisify(execFile)("bash", [join(process.cwd(), "deploy/certs/make-certs.sh"), dir, "1", "operator"]);
  await writeFile(join(dir, "garbage.pem"), "garbage\n");
  const admin = (...flags: string[]) => bkv(["admin", "status", "--endpoints", "127.0.0.1:1", "--certs", dir, "--timeout", "1", ...flags]);
  let r = await admin("--tls-cert", dir);
  t.is(r.code, EXIT.IO, r.err);
  t.true(r.err.includes(`--tls-cert: cannot read ${dir}: EISDIR`), r.err);
  for (const [flag, file] of [["--tls-cert", "garbage.pem"], ["--tls-key", "garbage.pem"], ["--tls-key", "node-1.key"]] as const) {
    r = await admin(flag, join(dir, file));
    t.is(r.code, EXIT.USAGE, `${flag} ${file}: ${r.err}`);
    t.regex(r.err, /^bkv: the operator certificate and key \(--tls-cert, --tls-key; --certs DIR\) are not a PEM certificate and its matching private key: /, r.err);
    t.notRegex(r.err, /unexpected error/);
  }
  r = await bkv(["admin", "issuer-keys", "rotate", "--file", join(dir, "missing"), "--endpoints", "127.0.0.1:1", "--certs", dir, "--timeout", "1"]);
  t.is(r.code, EXIT.IO, r.err);
  t.true(r.err.includes(`cannot read ${join(dir, "missing")}: ENOENT`), r.err);
});

async function withClusterFile(body: (cluster: FakeCluster, file: string, dir: string) => Promise<void>): Promise<void> {
  const cluster = await FakeCluster.start(3, 2);
  const dir = await mkdtemp(join(tmpdir(), "bkv-cli-"));
  const file = join(dir, "cluster.json");
  await writeFile(file, JSON.stringify(descriptorToJson(cluster.descriptor())));
  try {
    await body(cluster, file, dir);
  } finally {
    cluster.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

test.serial("register, recover, wrong password (exit 2), verify, change, delete, status", async (t) => {
  await withClusterFile(async (_cluster, file) => {
    const c = ["--cluster", file];
    const key = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
    const reg = await bkv(["register", "--user", "ann", "--password-stdin", "--key-stdin", "--guess-limit", "4", ...c], `pw1\n${key}\n`);
    t.is(reg.code, 0, reg.err);
    t.deepEqual(parseKey(reg.out), parseKey(key));
    const rec = await bkv(["recover", "--user", "ann", "--password-stdin", ...c], "pw1\n");
    t.is(rec.code, 0, rec.err);
    t.is(rec.out, "0011 2233 4455 6677 8899 aabb ccdd eeff 0011 2233 4455 6677 8899 aabb ccdd eeff\n");
    const wrong = await bkv(["recover", "--user", "ann", "--password-stdin", ...c], "nope\n");
    t.is(wrong.code, EXIT.WRONG_PASSWORD);
    t.regex(wrong.err, /wrong password: 3 attempts remaining/);
    t.is(wrong.out, "");
    const verifyBad = await bkv(["verify-password", "--user", "ann", "--password-stdin", ...c], "nope\n");
    t.is(verifyBad.code, EXIT.WRONG_PASSWORD);
    t.regex(verifyBad.err, /2 attempts remaining/);
    t.is((await bkv(["verify-password", "--user", "ann", "--password-stdin", ...c], "pw1\n")).out, "password ok\n");
    t.is((await bkv(["change-password", "--user", "ann", "--password-stdin", ...c], "pw1\npw2\n")).code, 0);
    t.is((await bkv(["recover", "--user", "ann", "--password-stdin", ...c], "pw2\n")).code, 0);
    const status = await bkv(["status", "--user", "ann", ...c]);
    t.is(status.code, 0);
    t.regex(status.out, /3\/3 nodes reachable/);
    t.regex(status.out, /record v2, 4 attempts remaining/);
    const json = JSON.parse((await bkv(["status", "--json", ...c])).out) as { nodes: unknown[]; recoverable: boolean };
    t.is(json.nodes.length, 3);
    t.true(json.recoverable);
    t.is((await bkv(["delete", "--user", "ann", "--password-stdin", ...c], "pw2\n")).code, 0);
    const gone = await bkv(["recover", "--user", "ann", "--password-stdin", ...c], "pw2\n");
    t.is(gone.code, EXIT.RECORD);
    t.regex(gone.err, /NOT_FOUND/);
  });
});

test.serial("a bad development issuer key file exits 8 naming the file, never echoing its content; a $BKV_DEV_ISSUER_KEY that does not exist is not ignored", async (t) => {
  await withClusterFile(async (_cluster, file, dir) => {
    const key = join(dir, "issuer.key.json");
    for (const text of ["MHcCAQEEIPRIVATESECRET\n", '{"privateJwk":{"d":SECRETSECRET}}', '{"kty":"EC","d":"SECRETSECRET"}']) {
      await writeFile(key, text);
      const r = await bkv(["recover", "--user", "u", "--password-stdin", "--cluster", file], "pw\n", { BKV_DEV_ISSUER_KEY: key });
      t.is(r.code, EXIT.IO, r.err);
      t.true(r.err.startsWith(`bkv: ${key}: not a development issuer key file`), r.err);
      t.false(/SECRET|MHcC/.test(r.err), `the file's content is not echoed: ${r.err}`);
    }
    const missing = await bkv(["status", "--cluster", file], "", { BKV_DEV_ISSUER_KEY: join(dir, "nope.json") });
    t.is(missing.code, EXIT.IO, missing.err);
    t.true(missing.err.includes(`BKV_DEV_ISSUER_KEY: cannot read ${join(dir, "nope.json")}: ENOENT`), missing.err);
  });
});

test.serial("a recovery whose confirmation was settled by a concurrent one prints the key and the SDK's warning", async (t) => {
  await withClusterFile(async (cluster, file) => {
    const c = ["--cluster", file];
    t.is((await bkv(["register", "--user", "dot", "--password-stdin", ...c], "pw\n")).code, 0);
    const settled = (method: string) => method === "ConfirmRecovery" ? fail(grpc.status.FAILED_PRECONDITION, "attempt 9 is not pending", ErrorReason.ATTEMPT_NOT_FOUND) : undefined;
    for (const n of cluster.nodes) cluster.fault(n.id, settled);
    const r = await bkv(["recover", "--user", "dot", "--password-stdin", ...c], "pw\n");
    t.is(r.code, 0, r.err);
    t.regex(r.out, /^([0-9a-f]{4} ){15}[0-9a-f]{4}\n$/);
    t.regex(r.err, /^bkv: warning: the recovery was already confirmed by a concurrent recovery \(.*attempt 9 is not pending.*\)\n$/);
  });
});

test.serial("register: a second registration exits 4, a malformed key on stdin exits 64, a missing line exits 64", async (t) => {
  await withClusterFile(async (_cluster, file) => {
    const c = ["--cluster", file];
    const first = await bkv(["register", "--user", "bo", "--password-stdin", ...c], "pw\n");
    t.is(first.code, 0, first.err);
    t.regex(first.out, /^([0-9a-f]{4} ){15}[0-9a-f]{4}\n$/);
    t.is((await bkv(["register", "--user", "bo", "--password-stdin", ...c], "pw\n")).code, EXIT.RECORD);
    const bad = await bkv(["register", "--user", "cy", "--password-stdin", "--key-stdin", ...c], "pw\nabc\n");
    t.is(bad.code, EXIT.USAGE);
    t.regex(bad.err, /64 hex digits \(got 3\)/);
    t.is((await bkv(["register", "--user", "cy", "--password-stdin", "--key-stdin", ...c], "pw\n")).code, EXIT.USAGE);
  });
});

test.serial("status exits 5 when fewer than t nodes answer", async (t) => {
  await withClusterFile(async (cluster, file) => {
    await cluster.stopNode(1);
    await cluster.stopNode(2);
    const r = await bkv(["status", "--cluster", file, "--timeout", "2"]);
    t.is(r.code, EXIT.UNAVAILABLE);
    t.regex(r.out, /UNREACHABLE/);
  });
});

test.serial("status exits 12 and says NOT AUTHORIZED when nodes refuse the token and fewer than t answer", async (t) => {
  await withClusterFile(async (cluster, file) => {
    const refuse: Fault = () => fail(grpc.status.UNAUTHENTICATED, "no token: this node authenticates every call", ErrorReason.UNSPECIFIED);
    cluster.fault(1, refuse);
    cluster.fault(2, refuse);
    const r = await bkv(["status", "--cluster", file, "--timeout", "2"]);
    t.is(r.code, EXIT.NOT_AUTHORIZED);
    t.regex(r.out, /node 1 [^\n]*: NOT AUTHORIZED \(/);
    t.regex(r.out, /node 3 [^\n]*: up /);
    const json = JSON.parse((await bkv(["status", "--cluster", file, "--json"])).out) as { nodes: Array<{ nodeId: number; notAuthorized?: boolean }> };
    t.deepEqual(json.nodes.map((n) => n.notAuthorized === true), [true, true, false]);
  });
});

test("an unreadable token, key or CA file exits 8 naming the file and the errno code", async (t) => {
  const dir = await mkdtemp(join(tmpdir(), "bkv-cli-files-"));
  try {
    const missing = join(dir, "missing");
    const cases: [string[], string][] = [
      [["cluster", "fetch", "--address", "127.0.0.1:1", "--token-file", missing, "--out", join(dir, "c.json")], `cannot read token file ${missing}: ENOENT`],
      [["backup", "encrypt", "--key-file", missing, "--in", dir, "--out", join(dir, "x")], `cannot read key file ${missing}: ENOENT`],
      [["cluster", "fetch", "--address", "127.0.0.1:1", "--ca", dir, "--out", join(dir, "c.json")], `cannot read CA file ${dir}: EISDIR`],
    ];
    for (const [argv, message] of cases) {
      const r = await bkv(argv);
      t.is(r.code, EXIT.IO, `${argv.join(" ")}: ${r.err}`);
      t.true(r.err.includes(message), r.err);
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("backup encrypt and decrypt through the CLI; a tampered file exits 6 and leaves nothing", async (t) => {
  const dir = await mkdtemp(join(tmpdir(), "bkv-cli-backup-"));
  try {
    const keyFile = join(dir, "key");
    await writeFile(keyFile, `${(await bkv(["key", "generate"])).out}`);
    await writeFile(join(dir, "plain"), "chat history\n".repeat(10_000));
    const enc = await bkv(["backup", "encrypt", "--key-file", keyFile, "--in", join(dir, "plain"), "--out", join(dir, "enc")]);
    t.is(enc.code, 0, enc.err);
    const dec = await bkv(["backup", "decrypt", "--key-file", keyFile, "--in", join(dir, "enc"), "--out", join(dir, "back")]);
    t.is(dec.code, 0, dec.err);
    t.deepEqual(await readFile(join(dir, "back")), await readFile(join(dir, "plain")));
    const sealed = await readFile(join(dir, "enc"));
    sealed[200] = (sealed[200] ?? 0) ^ 1;
    await writeFile(join(dir, "bad"), sealed);
    const bad = await bkv(["backup", "decrypt", "--key-file", keyFile, "--in", join(dir, "bad"), "--out", join(dir, "out")]);
    t.is(bad.code, EXIT.INTEGRITY);
    t.regex(bad.err, /chunk 0 does not authenticate/);
    await t.throwsAsync(readFile(join(dir, "out")));
    const exists = await bkv(["backup", "decrypt", "--key-file", keyFile, "--in", join(dir, "enc"), "--out", join(dir, "back")]);
    t.is(exists.code, EXIT.IO);
    t.is((await bkv(["backup", "decrypt", "--key-file", keyFile, "--in", join(dir, "enc"), "--out", join(dir, "back"), "--force"])).code, 0);
    await writeFile(join(dir, "badkey"), "1234");
    t.is((await bkv(["backup", "encrypt", "--key-file", join(dir, "badkey"), "--in", join(dir, "plain"), "--out", join(dir, "x")])).code, EXIT.USAGE);
    t.is((await bkv(["backup", "encrypt", "--key-file", join(dir, "nokey"), "--in", join(dir, "plain"), "--out", join(dir, "x")])).code, EXIT.IO);
    t.is((await bkv(["backup", "encrypt", "--key-file", keyFile, "--in", join(dir, "plain")])).code, EXIT.USAGE, "--out is required");
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("the CLI runs as a process: exit codes and stdin", async (t) => {
  const exec = promisify(execFile);
  const main = join(process.cwd(), "client/cli/main.ts");
  const ok = await exec(process.execPath, ["--import", "tsx", main, "key", "generate"]);
  t.regex(ok.stdout, /^([0-9a-f]{4} ){15}[0-9a-f]{4}\n$/);
  const err = await t.throwsAsync(exec(process.execPath, ["--import", "tsx", main, "recover", "--user", "u", "--password", "x"])) as Error & { code: number; stderr: string };
  t.is(err.code, EXIT.USAGE);
  t.regex(err.stderr, /never read from the command line/);
});

test.serial("cluster fetch writes a validated descriptor that the other commands can use", async (t) => {
  await withClusterFile(async (cluster, _file, dir) => {
    const out = join(dir, "fetched.json");
    const r = await bkv(["cluster", "fetch", "--address", cluster.nodes[1]!.address, "--out", out]);
    t.is(r.code, 0, r.err);
    t.regex(r.out, /cluster test-cluster: threshold 2, 3 nodes, PLAINTEXT/);
    t.regex(r.out, /node 3 127\.0\.0\.1:\d+ identity ([0-9a-f]{4}:){7}[0-9a-f]{4}/);
    const fetched = JSON.parse(await readFile(out, "utf8")) as unknown;
    t.deepEqual(fetched, JSON.parse(JSON.stringify(descriptorToJson(cluster.descriptor()))));
    t.is((await bkv(["status", "--cluster", out])).code, 0);
    t.is((await bkv(["cluster", "fetch", "--address", cluster.nodes[0]!.address, "--out", out])).code, EXIT.IO, "kept unless --force");
    await cluster.stopNode(1);
    const down = await bkv(["cluster", "fetch", "--address", cluster.nodes[0]!.address, "--out", join(dir, "x.json")]);
    t.is(down.code, EXIT.UNAVAILABLE, down.err);
    t.regex(down.err, /UNAVAILABLE/);
    t.notRegex(down.err, /without --ca/, "a refused connection is no TLS port");
  });
});

test.serial("past the guess limit the CLI exits 3: the key is destroyed", async (t) => {
  await withClusterFile(async (_cluster, file) => {
    const c = ["--cluster", file];
    t.is((await bkv(["register", "--user", "lim", "--password-stdin", "--guess-limit", "1", ...c], "pw\n")).code, 0);
    const wrong = await bkv(["recover", "--user", "lim", "--password-stdin", ...c], "nope\n");
    t.is(wrong.code, EXIT.WRONG_PASSWORD);
    t.regex(wrong.err, /0 attempts remaining/);
    const locked = await bkv(["recover", "--user", "lim", "--password-stdin", ...c], "pw\n");
    t.is(locked.code, EXIT.LOCKED);
    t.regex(locked.err, /RESOURCE_EXHAUSTED|locked/);
    t.is(locked.out, "");
  });
});

test.serial("cluster fetch without --ca from a node that serves TLS exits 5 and says to pass --ca (grpc-js says only 'Failed to connect')", async (t) => {
  const dir = tempDir(t, "bkv-cli-fetch-tls-");
  const cluster = await FakeCluster.start(3, 2, "test-cluster", await makeFakeTls(dir));
  t.teardown(() => cluster.stop());
  const r = await bkv(["cluster", "fetch", "--address", cluster.nodes[0]!.address, "--out", join(dir, "fetched.json")]);
  t.is(r.code, EXIT.UNAVAILABLE, r.err);
  t.regex(r.err, /UNAVAILABLE.*without --ca this call spoke plaintext: if the node serves TLS, .* pass --ca FILE with the cluster's CA/);
  const ok = await bkv(["cluster", "fetch", "--address", cluster.nodes[0]!.address, "--ca", join(dir, "ca.crt"), "--out", join(dir, "fetched.json")]);
  t.is(ok.code, 0, ok.err);
});

test.serial("the CLI as a process exits once its command is done, though a node accepted a TLS connection and never answered", async (t) => {
  const dir = tempDir(t, "bkv-cli-hung-");
  const cluster = await FakeCluster.start(3, 2, "test-cluster", await makeFakeTls(dir));
  const hung = cluster.nodes[2]!;
  await cluster.stopNode(hung.id);
  const sockets: Socket[] = [];
  const blackhole = createServer((s) => sockets.push(s)); // accepts, never speaks: a stopped (SIGSTOP) or wedged node
  await new Promise<void>((resolve) => blackhole.listen(Number(hung.address.split(":")[1]), "127.0.0.1", resolve));
  t.teardown(() => {
    for (const s of sockets) s.destroy();
    blackhole.close();
    cluster.stop();
  });
  const file = join(dir, "cluster.json");
  await writeFile(file, JSON.stringify(descriptorToJson(cluster.descriptor())));
  const main = join(process.cwd(), "client/cli/main.ts");
  const r = await promisify(execFile)(process.execPath, ["--import", "tsx", main, "status", "--cluster", file, "--timeout", "2"], { timeout: 30_000 })
    .catch((err: Error & { killed?: boolean; stdout: string }) => (err.killed ? t.fail(`still running after 30 s; printed: ${err.stdout}`) : err));
  t.regex(r.stdout, /2\/3 nodes reachable/);
});
