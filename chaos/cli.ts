// npm run chaos -- --nodes 3|5 --duration SECONDS --seed S [--clients N] [--users N] [--guess-limit N] [--keep]
// Ends with `faults: F, violations: V`. Exit codes (CHAOS_EXIT): 0 no violation, 1 V > 0, 2 the run could not
// be made (setup error, crash), 64 usage, 128 + the signal's number when interrupted (SIGINT/SIGTERM: the
// workload is stopped and the node processes the run started are killed).
import { randomBytes } from "node:crypto";
import { CHAOS_EXIT, seedArg, UsageError, walkArgs } from "./args.js";
import { join } from "node:path";
import { removeClusterState, RunAborted, runChaos, runOutDir, type RunOptions } from "./runner.js";
import type { ChaosTarget } from "./target.js";
import { ClusterStartError } from "./cluster.js";
import { FORCED_EXIT_MS, ignoreBrokenPipes, INTERRUPT_SIGNALS, InterruptState, interruptExitCode, type LastResort, runLastResort } from "./interrupt.js";
import { quietIpServerNameWarning } from "../client/cli/warnings.js";

export const USAGE = `usage: npm run chaos -- --nodes 3|5 --duration SECONDS --seed S [--clients N] [--users N] [--guess-limit N] [--keep]
  --nodes        cluster size, 3 or 5 (default 3)
  --duration     seconds of faults and workload, 5..86400 (default 60)
  --seed         1-64 letters, digits, . _ - (default: random); the same seed, size and duration replay the same faults
  --clients      concurrent workload clients, 1..32 (default 4)
  --users        users the workload registers and recovers, 1..100 (default 6)
  --guess-limit  each user's guess limit, 1..255 (default 5)
  --keep         also keep the nodes' data dirs, SoftHSM tokens and certificates (configs and logs are always kept)
Writes chaos/out/<seed>/ (summary.txt, report.html, history.jsonl, cluster/node-N.log); the last line is
'faults: F, violations: V'. Exit: 0 no violation, 1 violations, 2 no run (setup error, crash), 64 usage,
128 + signal when interrupted (130 for Ctrl-C). Recheck a run: npm run chaos:recheck -- chaos/out/<seed>`;

/** The command that runs `o` again: the same faults (seed, size, duration) under the same workload. */
export function replayCommand(o: RunOptions): string {
  const workload = [["--clients", o.clients], ["--users", o.users], ["--guess-limit", o.guessLimit]].flatMap(([flag, v]) => (v === undefined ? [] : [` ${flag} ${v}`]));
  return `npm run chaos -- --nodes ${o.nodes} --duration ${o.durationS} --seed ${o.seed}${workload.join("")}`;
}

/** The run's options; null when the arguments ask for the usage (--help, -h). Throws on bad input. */
export function parseArgs(argv: readonly string[]): RunOptions | null {
  if (argv.includes("--help") || argv.includes("-h")) return null;
  const o: RunOptions = { nodes: 3, durationS: 60, seed: randomBytes(4).toString("hex") };
  walkArgs(argv, (a, val, int) => {
    switch (a) {
      case "--nodes": o.nodes = int(3, 5); if (o.nodes === 4) throw new UsageError("--nodes must be 3 or 5"); break;
      case "--duration": o.durationS = int(5, 86_400); break;
      case "--seed": o.seed = seedArg(val()); break;
      case "--clients": o.clients = int(1, 32); break;
      case "--users": o.users = int(1, 100); break;
      case "--guess-limit": o.guessLimit = int(1, 255); break;
      case "--keep": o.keep = true; break;
      default: throw new UsageError(a.startsWith("-") ? `unknown flag ${a}` : `unexpected argument ${JSON.stringify(a)} (every value follows its --flag)`);
    }
  });
  return o;
}

async function main(): Promise<number> {
  let opts: RunOptions;
  try {
    const parsed = parseArgs(process.argv.slice(2));
    if (parsed === null) {
      process.stdout.write(`${USAGE}\n`);
      return 0;
    }
    opts = parsed;
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    process.stderr.write(`chaos: ${err.message}\n${USAGE}\n`);
    return CHAOS_EXIT.USAGE;
  }
  process.stderr.write(`chaos: seed ${opts.seed} (replay: ${replayCommand(opts)})\n`);
  const interrupt = onInterrupt("chaos");
  if (opts.keep !== true) interrupt.setCleanup(() => removeClusterState(join(runOutDir(opts.seed), "cluster")));
  try {
    const r = await runChaos({ ...opts, replay: replayCommand(opts), signal: interrupt.signal, onTarget: interrupt.setTarget });
    process.stdout.write(`${r.summary}\n`);
    process.stderr.write(`report: ${r.outDir}/report.html\n`);
    return r.violations > 0 ? CHAOS_EXIT.VIOLATIONS : CHAOS_EXIT.OK;
  } catch (err) {
    if (err instanceof RunAborted) return reportAbort(err, "chaos", `${interrupt.reason()}: workload stopped and the node processes it started killed`, interrupt.exitCode());
    if (err instanceof ClusterStartError) {
      process.stderr.write(`chaos: the cluster did not start: ${err.message}\nchaos: every process it started was stopped; run aborted, no verdict\n`);
      return CHAOS_EXIT.NO_RUN;
    }
    throw err;
  } finally {
    interrupt.dispose();
  }
}

/**
 * Prints what an aborted run leaves: its partial summary (the history-only checkers) when it has one.
 * Returns the exit code: VIOLATIONS when the partial check found any, else `interruptedCode`.
 */
export function reportAbort(err: RunAborted, prefix: string, what: string, interruptedCode: number): number {
  const p = err.partial;
  if (p !== undefined) process.stdout.write(`${p.summary}\n`);
  const verdict = p === undefined ? "no verdict" : p.violations > 0 ? "violations found before the interruption" : "no violation in the history so far, no full verdict";
  process.stderr.write(`${prefix}: ${what}; run aborted, ${verdict}${p === undefined ? "" : `; partial report: ${p.outDir}/report.html`}\n`);
  return p !== undefined && p.violations > 0 ? CHAOS_EXIT.VIOLATIONS : interruptedCode;
}

/**
 * SIGINT/SIGTERM/SIGHUP handling shared by the chaos CLIs: the first signal aborts the run (the runner
 * stops the workload and closes its target, which stops every process it started); the same signal
 * relayed within REPEAT_GRACE_MS is ignored; a later signal, or a cleanup longer than FORCED_EXIT_MS,
 * SIGKILLs the target's processes synchronously, runs the cleanup and exits 128 + the first signal's
 * number. Until dispose(), the process's exit (a crash included) also kills the target's processes.
 */
export function onInterrupt(prefix: string) {
  const ac = new AbortController();
  const last: LastResort = {};
  let timer: NodeJS.Timeout | undefined;
  const log = (line: string): void => void process.stderr.write(`${prefix}: ${line}\n`);
  const force = (why: string, first: NodeJS.Signals): never => {
    const n = runLastResort(last);
    log(`${why}: killed ${n} process(es) outright; run aborted, no verdict`);
    process.exit(interruptExitCode(first));
  };
  const state = new InterruptState({
    log,
    force,
    abort: (sig) => {
      ac.abort(sig);
      timer = setTimeout(() => force(`cleanup after ${sig} took more than ${FORCED_EXIT_MS / 1000} s`, sig), FORCED_EXIT_MS);
      timer.unref();
    },
  });
  const handler = (sig: NodeJS.Signals): void => state.handle(sig);
  const onExit = (): void => void runLastResort(last);
  for (const sig of INTERRUPT_SIGNALS) process.on(sig, handler);
  process.on("exit", onExit);
  return {
    signal: ac.signal,
    prefix,
    /** What a forced exit kills (the target, or whatever starts its processes). */
    setTarget: (t: Pick<ChaosTarget, "killAllSync">): void => {
      last.target = t;
    },
    /** What a forced exit removes (synchronously). */
    setCleanup: (f: () => void): void => {
      last.cleanupSync = f;
    },
    reason: (): string => `interrupted by ${state.received ?? "an abort"}`,
    exitCode: (): number => interruptExitCode(state.received ?? "SIGINT"),
    dispose: (): void => {
      if (timer !== undefined) clearTimeout(timer);
      for (const sig of INTERRUPT_SIGNALS) process.off(sig, handler);
      process.off("exit", onExit);
    },
  };
}

if (process.argv[1]?.endsWith("chaos/cli.ts")) {
  quietIpServerNameWarning();
  ignoreBrokenPipes();
  main().then((code) => process.exit(code), (err) => {
    process.stderr.write(`chaos: ${err instanceof Error ? err.stack ?? err.message : String(err)}\nchaos: run aborted (no verdict)\n`);
    process.exit(2);
  });
}
