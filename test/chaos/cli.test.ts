import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { join, resolve } from "node:path";
import test from "ava";
import { CHAOS_EXIT, UsageError } from "../../chaos/args.js";
import { parseArgs, replayCommand, USAGE } from "../../chaos/cli.js";

const ROOT = resolve(import.meta.dirname, "../..");

test("cli arguments: nodes, duration, seed and options", (t) => {
  const o = parseArgs(["--nodes", "5", "--duration", "60", "--seed", "s-1", "--clients", "3", "--guess-limit", "4", "--keep"]);
  t.like(o, { nodes: 5, durationS: 60, seed: "s-1", clients: 3, guessLimit: 4, keep: true });
  t.is(parseArgs([])?.nodes, 3);
});

test("cli: --help asks for the usage, which names every flag", (t) => {
  t.is(parseArgs(["--help"]), null);
  t.is(parseArgs(["--nodes", "5", "-h"]), null);
  for (const flag of ["--nodes", "--duration", "--seed", "--clients", "--users", "--guess-limit", "--keep"]) t.true(USAGE.includes(flag), flag);
});

test("cli: the replay command carries the workload's flags as well as the seed, size and duration", (t) => {
  const argv = ["--nodes", "5", "--duration", "90", "--seed", "s-1", "--clients", "16", "--users", "3", "--guess-limit", "1"];
  const cmd = replayCommand(parseArgs(argv)!);
  t.is(cmd, `npm run chaos -- ${argv.join(" ")}`);
  t.deepEqual(parseArgs(cmd.split(" ").slice(4)), parseArgs(argv), "it parses back to the same options");
  t.is(replayCommand(parseArgs(["--seed", "x"])!), "npm run chaos -- --nodes 3 --duration 60 --seed x", "defaults stay implicit");
});

test("cli arguments: bad input is a clear error", (t) => {
  t.throws(() => parseArgs(["--nodes", "4"]), { message: /3 or 5/ });
  t.throws(() => parseArgs(["--nodes", "7"]), { message: /--nodes must be an integer in 3..5/ });
  t.throws(() => parseArgs(["--duration"]), { message: /needs a value/ });
  t.throws(() => parseArgs(["--seed", "--keep"]), { message: /--seed needs a value/ });
  t.throws(() => parseArgs(["--seed", "../x"]), { message: /--seed must be/ });
  t.throws(() => parseArgs(["--frobnicate"]), { message: /unknown flag --frobnicate/ });
  t.throws(() => parseArgs(["60"]), { message: /unexpected argument "60"/ });
});

test("cli arguments: numbers are plain decimal integers (1e1, 0x10, 5.0 and ' 5' started runs)", (t) => {
  for (const v of ["1e1", "0x10", "5.0", " 5", "10 ", "+10", "0b101", "1_0"]) t.throws(() => parseArgs(["--users", v]), { instanceOf: UsageError, message: /--users must be an integer in 1..100/ }, v);
  t.is(parseArgs(["--users", "010"])?.users, 10);
});

test("cli arguments: --flag=value is --flag value; a switch given a value is an error", (t) => {
  t.like(parseArgs(["--nodes=5", "--seed=a.b", "--keep"]), { nodes: 5, seed: "a.b", keep: true });
  t.throws(() => parseArgs(["--keep=no"]), { message: /--keep takes no value/ });
  t.throws(() => parseArgs(["--seed="]), { message: /--seed needs a value/ });
});

test("cli arguments: a seed of dots is refused: chaos/out/.. is chaos/ itself, which the run would have emptied", (t) => {
  for (const v of [".", "..", "..."]) t.throws(() => parseArgs(["--seed", v]), { instanceOf: UsageError, message: /--seed must be/ }, v);
  t.is(parseArgs(["--seed", "a..b"])?.seed, "a..b");
});

test("cli: a usage error exits 64 with the message and the usage on stderr, no stack and no run", async (t) => {
  const r = await runCli(["--nodes", "3", "--users", "1e1"]);
  t.is(r.code, CHAOS_EXIT.USAGE);
  t.regex(r.stderr, /^chaos: --users must be an integer in 1\.\.100, got "1e1"\nusage: npm run chaos/);
  t.notRegex(r.stderr, /\bat \S+:\d+|starting \d nodes/);
});

/** Runs chaos/cli.ts to its end (argument errors never start a cluster). */
async function runCli(argv: string[]): Promise<{ code: number | null; stderr: string }> {
  const child = spawn(process.execPath, ["--import", "tsx", "chaos/cli.ts", ...argv], { cwd: ROOT, stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  child.stderr.on("data", (b: Buffer) => (stderr += b.toString()));
  const code = await new Promise<number | null>((r) => child.once("exit", (c) => r(c)));
  return { code, stderr };
}

/** Pids of processes whose command line contains `needle` (Linux /proc). */
function pidsWith(needle: string): number[] {
  const out: number[] = [];
  for (const d of readdirSync("/proc")) {
    if (!/^\d+$/.test(d)) continue;
    try {
      if (readFileSync(`/proc/${d}/cmdline`, "utf8").includes(needle)) out.push(Number(d));
    } catch {
      // the process ended meanwhile
    }
  }
  return out;
}

/** Waits until `stderr()` holds `marker`; throws when `child` ends first or after `ms`. */
async function waitForLine(child: ChildProcess, stderr: () => string, marker: string, ms = 240_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!stderr().includes(marker)) {
    if (Date.now() > deadline || child.exitCode !== null) throw new Error(`no "${marker}" line: ${stderr()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Starts `args` (a chaos command) in its own process group, as a shell starts a foreground job. */
function startRun(args: string[], env: NodeJS.ProcessEnv = process.env) {
  const child = spawn(args[0]!, args.slice(1), { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"], detached: true, env });
  let stderr = "";
  child.stderr!.on("data", (b: Buffer) => (stderr += b.toString()));
  child.stdout!.resume();
  const exited = new Promise<number | null>((r) => child.once("exit", (code) => r(code)));
  const ended = new Promise<string>((r) => child.once("exit", (code, sig) => r(sig ?? String(code))));
  return { child, exited, ended, stderr: () => stderr };
}

/** Kills whatever a test's run left (its process group, its nodes) and removes its output. */
function cleanUp(child: ChildProcess, outDir: string): void {
  try {
    process.kill(-child.pid!, "SIGKILL");
  } catch {
    // the group is gone
  }
  for (const pid of pidsWith(`${outDir}/cluster/node-`)) process.kill(pid, "SIGKILL");
  rmSync(outDir, { recursive: true, force: true });
}

/** The entries of the run's cluster dir that a run without --keep must remove (data dirs, tokens, certificates, the issuer's key). */
function secretsLeft(outDir: string): string[] {
  return readdirSync(join(outDir, "cluster")).filter((f) => /^(data|hsm)-|^certs$|key/.test(f));
}

test("SIGTERM stops the workload, kills the node processes the run started, and exits 143 (128 + 15) with a clear line", async (t) => {
  const seed = `cli-sigterm-${process.pid}`;
  const outDir = join(ROOT, "chaos/out", seed);
  const run = startRun([process.execPath, "--import", "tsx", "chaos/cli.ts", "--nodes", "3", "--duration", "120", "--seed", seed]);
  try {
    await waitForLine(run.child, run.stderr, "workload and nemesis");
    const nodeMarker = `${outDir}/cluster/node-`;
    t.true(pidsWith(nodeMarker).length > 0, "node processes are running");
    run.child.kill("SIGTERM");
    t.is(await run.exited, 143);
    t.regex(run.stderr(), /SIGTERM received: stopping the workload/);
    t.regex(run.stderr(), /interrupted by SIGTERM: workload stopped and the node processes it started killed; run aborted, no violation in the history so far, no full verdict; partial report: \S+\/report\.html/);
    t.deepEqual(pidsWith(nodeMarker), [], "no node process outlives the run");
    t.deepEqual(secretsLeft(outDir), []);
    const summary = readFileSync(join(outDir, "summary.txt"), "utf8");
    t.regex(summary, /^INTERRUPTED by SIGTERM after \d+\.\d s: no final state, so/m);
    t.regex(summary, /replay: npm run chaos -- --nodes 3 --duration 120 --seed cli-sigterm-\d+\n/);
    t.regex(summary, /faults: \d+, violations: 0\n$/);
    t.regex((JSON.parse(readFileSync(join(outDir, "run.json"), "utf8")) as { interrupted: string }).interrupted, /^by SIGTERM after /, "recheck knows it was interrupted");
    t.regex(readFileSync(join(outDir, "report.html"), "utf8"), /Interrupted by SIGTERM after/);
  } finally {
    cleanUp(run.child, outDir);
  }
});

test("Ctrl-C on `npm run chaos` (SIGINT to the whole process group, relayed again by npm and tsx) is one interrupt: a clean stop, exit 130", async (t) => {
  const seed = `cli-ctrlc-${process.pid}`;
  const outDir = join(ROOT, "chaos/out", seed);
  const run = startRun(["npm", "run", "-s", "chaos", "--", "--nodes", "3", "--duration", "120", "--seed", seed]);
  try {
    await waitForLine(run.child, run.stderr, "workload and nemesis");
    process.kill(-run.child.pid!, "SIGINT");
    t.regex(await run.ended, /^(130|SIGINT)$/, "npm passes the harness's 130 on by ending on SIGINT itself");
    t.notRegex(run.stderr(), /second SIGINT|killed \d+ process\(es\) outright/, "the relayed copies did not force an unclean exit");
    t.regex(run.stderr(), /interrupted by SIGINT: workload stopped/);
    t.deepEqual(pidsWith(`${outDir}/cluster/node-`), [], "no node process outlives the run");
    t.deepEqual(secretsLeft(outDir), [], "data dirs, SoftHSM tokens, certificates and the issuer key are removed");
  } finally {
    cleanUp(run.child, outDir);
  }
});

test("a node that cannot start fails the run at once with its exit and log, exit 2; nothing is left running", async (t) => {
  const seed = `cli-nostart-${process.pid}`;
  const outDir = join(ROOT, "chaos/out", seed);
  const env = { ...process.env, BKV_E2E_NODE_ENV_2: "NODE_OPTIONS=--require=/nonexistent/bkv-chaos-test.cjs" };
  const run = startRun([process.execPath, "--import", "tsx", "chaos/cli.ts", "--nodes", "3", "--duration", "30", "--seed", seed], env);
  try {
    const started = Date.now();
    t.is(await run.exited, CHAOS_EXIT.NO_RUN);
    t.true(Date.now() - started < 45_000, "not the 90 s start timeout");
    t.regex(run.stderr(), /chaos: the cluster did not start: node 2 exited with code 1 while the cluster started; the end of \S+node-2\.log:\n[^]*MODULE_NOT_FOUND/);
    t.regex(run.stderr(), /every process it started was stopped; run aborted, no verdict/);
    t.notRegex(run.stderr(), /\n\s+at \S+ \(\/work/, "no stack trace of the harness");
    t.deepEqual(pidsWith(`${outDir}/cluster/node-`), []);
    t.deepEqual(secretsLeft(outDir), []);
  } finally {
    cleanUp(run.child, outDir);
  }
});

test("a node process that ends without the nemesis is restarted, and the run reports it as a violation (exit 1) with its log", async (t) => {
  const seed = `cli-crash-${process.pid}`;
  const outDir = join(ROOT, "chaos/out", seed);
  const run = startRun([process.execPath, "--import", "tsx", "chaos/cli.ts", "--nodes", "3", "--duration", "10", "--seed", seed]);
  try {
    await waitForLine(run.child, run.stderr, "workload and nemesis");
    const [pid] = pidsWith(`${outDir}/cluster/node-2.json`);
    t.truthy(pid, "node 2 runs");
    process.kill(pid!, "SIGKILL"); // as the OOM killer would
    t.is(await run.exited, CHAOS_EXIT.VIOLATIONS, run.stderr());
    const summary = readFileSync(join(outDir, "summary.txt"), "utf8");
    t.regex(summary, /FAIL node-exits \(1 violation\(s\)\)\n\s+- node 2 ended on SIGKILL at \S+ without the harness stopping it \(a crash, the OOM killer or another process's signal\): see \S+node-2\.log/);
    t.regex(summary, /ok {3}digests/, "node 2 was started again and caught up");
    t.deepEqual(pidsWith(`${outDir}/cluster/node-`), []);
  } finally {
    cleanUp(run.child, outDir);
  }
});

test("a closed stderr pipe (`npm run chaos 2>&1 | head -3`) does not crash the run and orphan its nodes", async (t) => {
  const seed = `cli-epipe-${process.pid}`;
  const outDir = join(ROOT, "chaos/out", seed);
  const run = startRun([process.execPath, "--import", "tsx", "chaos/cli.ts", "--nodes", "3", "--duration", "5", "--seed", seed]);
  let stdout = "";
  run.child.stdout!.on("data", (b: Buffer) => (stdout += b.toString()));
  try {
    await waitForLine(run.child, run.stderr, "starting 3 nodes");
    run.child.stderr!.destroy();
    t.true([CHAOS_EXIT.OK, CHAOS_EXIT.VIOLATIONS].includes((await run.exited) as 0 | 1));
    t.regex(stdout, /\nfaults: \d+, violations: \d+\n$/, "the run ended with its verdict");
    t.true(existsSync(join(outDir, "summary.txt")));
    t.deepEqual(pidsWith(`${outDir}/cluster/node-`), [], "no node process outlives the run");
  } finally {
    cleanUp(run.child, outDir);
  }
});
