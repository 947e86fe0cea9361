// Re-runs the checkers on a finished run's files (chaos/out/<seed>/) without a cluster:
//   npm run chaos:recheck -- chaos/out/<seed>
// Prints the summary (ending `faults: F, violations: V`), rewrites summary.txt and report.html. Exit codes
// (CHAOS_EXIT): 0, 1 when V > 0, 2 when the run's files cannot be read (missing, truncated, corrupt: one line
// naming the file and what is wrong), 64 usage.
import { existsSync, readFileSync, readdirSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { checkAll } from "./checkers/index.js";
import { leadersByTerm } from "./checkers/leaders.js";
import type { FinalState } from "./checkers/types.js";
import { CHAOS_EXIT } from "./args.js";
import { HistoryFormatError, readHistory } from "./history.js";
import { type WorkloadShape, faultCount, htmlReport, terminalSummary, violationCount } from "./report.js";

/** A run's file that is missing, unreadable or not what runner.ts writes; the message names the file. */
export class RunFilesError extends Error {
  override readonly name = "RunFilesError";
}

export function recheck(dir: string): { summary: string; faults: number; violations: number } {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new RunFilesError(`${dir}: no such directory (a run's directory is chaos/out/<seed>)`);
  const events = readRunFile(dir, "history.jsonl", readHistory);
  const final = readRunFile(dir, "final-state.json", readFinalState);
  const logs = new Map<number, string>();
  const cdir = join(dir, "cluster");
  if (existsSync(cdir))
    for (const f of readdirSync(cdir)) {
      const m = /^node-(\d+)\.log$/.exec(f);
      if (m) logs.set(Number(m[1]), readFileSync(join(cdir, f), "utf8"));
    }
  const run = readRun(dir);
  const results = checkAll({ events, final, logs, guessLimit: run?.workload.guessLimit });
  const seed = run?.seed ?? dir.split("/").filter(Boolean).at(-1) ?? "?";
  const durationS = run?.durationS ?? Math.round(Math.max(0, ...events.map((e) => e.time)) / 1000);
  const s = { seed, nodes: final.nodes.length, durationS, workload: run?.workload, events, results, leaders: leadersByTerm(logs) };
  const summary = terminalSummary(s);
  writeFileSync(join(dir, "summary.txt"), summary + "\n");
  writeFileSync(join(dir, "report.html"), htmlReport(s));
  return { summary, faults: faultCount(events), violations: violationCount(results) };
}

/** `read(dir/name)`, with any failure (absent, unreadable, truncated, corrupt) as a RunFilesError naming the file. */
function readRunFile<T>(dir: string, name: string, read: (path: string) => T): T {
  const path = join(dir, name);
  if (!existsSync(path)) throw new RunFilesError(`${path}: missing`);
  try {
    return read(path);
  } catch (err) {
    const what = err instanceof HistoryFormatError ? `${err.message} (truncated or corrupt?)` : err instanceof SyntaxError ? `not JSON (truncated or corrupt?): ${err.message}` : (err as Error).message;
    throw new RunFilesError(`${path}: ${what}`);
  }
}

function readFinalState(path: string): FinalState {
  const f = JSON.parse(readFileSync(path, "utf8")) as Partial<FinalState> | null;
  if (f === null || typeof f !== "object" || !Array.isArray(f.nodes) || typeof f.records !== "object" || f.records === null) throw new Error("not a final state (needs nodes[] and records{})");
  return f as FinalState;
}

type RunJson = { seed: string; durationS: number; workload: WorkloadShape };

/** The run's options as runner.ts wrote them (run.json); undefined for a run made before it did. */
function readRun(dir: string): RunJson | undefined {
  return existsSync(join(dir, "run.json")) ? readRunFile(dir, "run.json", (p) => JSON.parse(readFileSync(p, "utf8")) as RunJson) : undefined;
}

export const RECHECK_USAGE = "usage: npm run chaos:recheck -- DIR   (DIR: a run's directory, chaos/out/<seed>)";

/** The CLI: one run directory; returns the exit code. */
export function recheckMain(argv: readonly string[], out: (s: string) => void, err: (s: string) => void): number {
  if (argv.includes("--help") || argv.includes("-h")) {
    out(`${RECHECK_USAGE}\n`);
    return CHAOS_EXIT.OK;
  }
  if (argv.length !== 1 || argv[0]!.startsWith("-")) {
    err(`chaos:recheck: ${argv.length === 0 ? "which run? give its directory" : `expected one directory, got ${argv.map((a) => JSON.stringify(a)).join(" ")}`}\n${RECHECK_USAGE}\n`);
    return CHAOS_EXIT.USAGE;
  }
  try {
    const r = recheck(argv[0]!);
    out(`${r.summary}\n`);
    return r.violations > 0 ? CHAOS_EXIT.VIOLATIONS : CHAOS_EXIT.OK;
  } catch (e) {
    if (!(e instanceof RunFilesError)) throw e;
    err(`chaos:recheck: ${e.message}\nchaos:recheck: nothing checked (no verdict)\n`);
    return CHAOS_EXIT.NO_RUN;
  }
}

if (process.argv[1]?.endsWith("recheck.ts")) {
  process.exit(recheckMain(process.argv.slice(2), (s) => process.stdout.write(s), (s) => process.stderr.write(s)));
}
