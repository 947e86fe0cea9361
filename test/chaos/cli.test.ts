import { spawn } from "node:child_process";
import { readdirSync, readFileSync, rmSync } from "node:fs";
import { join, resolve } from "node:path";
import test from "ava";
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
  t.throws(() => parseArgs(["--frobnicate"]), { message: /unknown argument --frobnicate/ });
});

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

test("SIGTERM stops the workload, kills the node processes the run started, and exits 2 with a clear line", async (t) => {
  const seed = `cli-sigterm-${process.pid}`;
  const outDir = join(ROOT, "chaos/out", seed);
  const child = spawn(process.execPath, ["--import", "tsx", "chaos/cli.ts", "--nodes", "3", "--duration", "120", "--seed", seed], { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
  let stderr = "";
  child.stderr.on("data", (b: Buffer) => (stderr += b.toString()));
  const exited = new Promise<number | null>((r) => child.once("exit", (code) => r(code)));
  try {
    const deadline = Date.now() + 240_000;
    while (!stderr.includes("workload and nemesis")) {
      if (Date.now() > deadline || child.exitCode !== null) throw new Error(`the run did not start: ${stderr}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    const nodeMarker = `${outDir}/cluster/node-`;
    t.true(pidsWith(nodeMarker).length > 0, "node processes are running");
    child.kill("SIGTERM");
    t.is(await exited, 2);
    t.regex(stderr, /SIGTERM received: stopping the workload/);
    t.regex(stderr, /interrupted by SIGTERM: workload stopped and the node processes it started killed; run aborted, no verdict/);
    t.deepEqual(pidsWith(nodeMarker), [], "no node process outlives the run");
  } finally {
    child.kill("SIGKILL");
    for (const pid of pidsWith(`${outDir}/cluster/node-`)) process.kill(pid, "SIGKILL");
    rmSync(outDir, { recursive: true, force: true });
  }
});
