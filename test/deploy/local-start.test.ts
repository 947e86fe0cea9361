// `npm start` as a user runs it: deploy/local/start.sh brings up its 3-node
// cluster (one SoftHSM token per node) in a fresh directory, the bkv CLI
// registers and recovers a key and reads every node's status through the
// descriptor the script wrote, `bkv admin status` works with no flag (the
// script's admin.json and operator certificate), Ctrl-C (SIGINT to the
// process group, as a terminal sends it) stops every node and exits 0, and
// no password reached a file. The ports are below the ephemeral range, and
// reserved (reservePort) so that no other test's freePort() takes them.
import test from "ava";
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { mkdirSync, readFileSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { run } from "../../client/cli/main.js";
import type { CliIo } from "../../client/cli/io.js";
import { tempDir } from "../temp.js";
import { canListen, releasePort, reservePort } from "../../chaos/net.js";

const PASSWORD = "local-start correct horse 7f3a";

/** A port base whose 12 ports (base + N, +100, +200, +300 for N = 1..3) are free and reserved for this process, in 20000..29999. */
async function portBase(): Promise<number> {
  for (let i = 0; i < 50; i++) {
    const base = 20000 + 100 * Math.floor(Math.random() * 96);
    const ports = [1, 2, 3].flatMap((n) => [base + n, base + 100 + n, base + 200 + n, base + 300 + n]);
    const held = await Promise.all(ports.map(reservePort));
    if (held.every(Boolean) && (await Promise.all(ports.map(canListen))).every(Boolean)) return base;
    await Promise.all(ports.filter((_, k) => held[k]).map(releasePort));
  }
  throw new Error("no free port base in 20000..29999");
}

/** Resolves with the output so far once it matches `pattern`; rejects if the child exits or `ms` pass first. */
function waitForOutput(child: ChildProcess, output: () => string, pattern: RegExp, ms: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setInterval(() => {
      if (pattern.test(output())) done(resolve);
    }, 200);
    const deadline = setTimeout(() => done(() => reject(new Error(`no ${pattern} within ${ms} ms:\n${output()}`))), ms);
    const exited = () => done(() => reject(new Error(`npm start exited:\n${output()}`)));
    child.once("exit", exited);
    function done(f: () => void) {
      clearInterval(timer);
      clearTimeout(deadline);
      child.off("exit", exited);
      f();
    }
  });
}

async function cli(env: NodeJS.ProcessEnv, ...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = "";
  let err = "";
  const io: CliIo = {
    readSecrets: (prompts) => Promise.resolve(prompts.map(() => PASSWORD)),
    stdout: (s) => (out += s),
    stderr: (s) => (err += s),
    stderrIsTTY: false,
    env,
  };
  const code = await run([...argv, "--timeout", "60"], io);
  return { code, out, err };
}

/** Every file under `dir`, recursively. */
function filesUnder(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? filesUnder(path) : [path];
  });
}

test("npm start: a 3-node cluster the CLI and `bkv admin` use with no flags, stopped by Ctrl-C", async (t) => {
  const dir = join(tempDir(t, "bkv-local-start-"), "local");
  const base = await portBase();
  let output = "";
  const child = spawn("bash", ["deploy/local/start.sh"], {
    detached: true, // its own process group, which SIGINT reaches as a terminal's Ctrl-C would
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, BKV_LOCAL_DIR: dir, BKV_LOCAL_PORT_BASE: String(base), BKV_CLUSTER: undefined, BKV_ADMIN_ENDPOINTS: undefined, BKV_ADMIN_CERTS: undefined },
  });
  child.stdout.on("data", (b: Buffer) => (output += b.toString()));
  child.stderr.on("data", (b: Buffer) => (output += b.toString()));
  const exit = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  t.teardown(() => {
    if (child.exitCode === null && child.pid !== undefined) process.kill(-child.pid, "SIGKILL");
  });

  await waitForOutput(child, () => output, /bkv cluster 'bkv-local' is up: 3 nodes, threshold 2\./, 150_000);
  t.regex(output, new RegExp(`admin\\s+127\\.0\\.0\\.1:${base + 201}`));

  const env = { BKV_CLUSTER: join(dir, "cluster.json") };
  const registered = await cli(env, "register", "--user", "alice", "--password-stdin");
  t.is(registered.code, 0, registered.err);
  const recovered = await cli(env, "recover", "--user", "alice", "--password-stdin");
  t.is(recovered.code, 0, recovered.err);
  t.is(recovered.out, registered.out);
  t.regex(recovered.out, /^([0-9a-f]{4} ){15}[0-9a-f]{4}\n$/);
  const status = await cli(env, "status");
  t.is(status.code, 0, status.err);
  t.regex(status.out, /3\/3 nodes reachable/);

  const admin = await cli(env, "admin", "status", "--json");
  t.is(admin.code, 0, admin.err);
  const view = JSON.parse(admin.out) as { leader: number; members: Array<{ id: number; health: string }> };
  t.deepEqual(view.members.map((m) => m.id).sort(), [1, 2, 3]);
  t.true(view.members.every((m) => m.health === "serving"));
  t.true(view.leader >= 1 && view.leader <= 3);

  process.kill(-child.pid!, "SIGINT");
  t.is(await exit, 0, output);
  t.regex(output, /stopped\. Data kept in /);
  for (const n of [1, 2, 3]) t.regex(readFileSync(join(dir, `node-${n}.log`), "utf8"), /"msg":"node stopped"/);
  for (const file of filesUnder(dir)) t.false(readFileSync(file).includes(PASSWORD), `${file} holds the password`);
});

test("npm start while a previous cluster's node still holds a port exits 1 at once, naming the port and the process, and writes nothing", async (t) => {
  const dir = join(tempDir(t, "bkv-local-start-"), "local");
  mkdirSync(dir, { recursive: true });
  const base = await portBase();
  // A left-behind node: its command line names this directory's config, and it holds node 1's client port.
  const holder = spawn(process.execPath, ["-e", `require("node:net").createServer().listen(${base + 1}, "127.0.0.1", () => console.log("listening"))`, "--", "--config", join(dir, "node-1.json")], { stdio: ["ignore", "pipe", "ignore"] });
  t.teardown(() => holder.kill("SIGKILL"));
  await new Promise((resolve) => holder.stdout.once("data", resolve));
  const run = spawnSync("bash", ["deploy/local/start.sh"], {
    encoding: "utf8", timeout: 120_000, env: { ...process.env, BKV_LOCAL_DIR: dir, BKV_LOCAL_PORT_BASE: String(base) },
  });
  t.is(run.status, 1, run.stderr);
  t.regex(run.stderr, new RegExp(`npm start: port\\(s\\) ${base + 1} on 127\\.0\\.0\\.1 already in use`));
  t.regex(run.stderr, new RegExp(`bkv-node processes of ${dir} still run \\(pids: ${holder.pid}\\).*kill ${holder.pid}`));
  t.deepEqual(readdirSync(dir), [], "nothing written: no certificates, tokens or configs");
});
