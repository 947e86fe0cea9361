// Re-runs the checkers on a finished run's files (chaos/out/<seed>/) without a cluster:
//   npm run chaos:recheck -- chaos/out/<seed>
// Prints the summary (ending `faults: F, violations: V`), rewrites summary.txt and report.html. Exit codes
// (CHAOS_EXIT): 0, 1 when V > 0, 2 when the run's files cannot be read (missing, truncated, corrupt: one line
// naming the file and what is wrong), 64 usage.
import { existsSync, readFileSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { checkAll, checkHistoryOnly, checkRecovered } from "./checkers/index.js";
import { leadersByTerm } from "./checkers/leaders.js";
import type { FinalState } from "./checkers/types.js";
import { CHAOS_EXIT } from "./args.js";
import { HistoryFormatError, readHistory } from "./history.js";
import { type WorkloadShape, faultCount, violationCount, writeReport } from "./report.js";

/** A run's file that is missing, unreadable or not what runner.ts writes; the message names the file. */
export class RunFilesError extends Error {
  override readonly name = "RunFilesError";
}

export function recheck(dir: string): { summary: string; faults: number; violations: number } {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new RunFilesError(`${dir}: no such directory (a run's directory is chaos/out/<seed>)`);
  const events = readRunFile(dir, "history.jsonl", readHistory);
  const run = readRun(dir);
  const logs = readNodeLogs(join(dir, "cluster"));
  const guessLimit = run?.workload.guessLimit;
  // A run interrupted before healing has no final state: the history-only checkers judge it, as when it stopped.
  const final = run?.interrupted === undefined ? readRunFile(dir, "final-state.json", readFinalState) : undefined;
  const results = final === undefined ? checkHistoryOnly({ events, logs, guessLimit }) : checkAll({ events, final, logs, guessLimit });
  if (run?.notRecovered !== undefined) results.push(checkRecovered(run.notRecovered));
  const seed = run?.seed ?? dir.split("/").filter(Boolean).at(-1) ?? "?";
  const durationS = run?.durationS ?? Math.round(Math.max(0, ...events.map((e) => e.time)) / 1000);
  const nodes = final?.nodes.length ?? run?.nodes ?? logs.size;
  const summary = writeReport(dir, { seed, nodes, durationS, workload: run?.workload, events, results, leaders: leadersByTerm(logs), replay: run?.replay, outDir: dir, interrupted: run?.interrupted });
  return { summary, faults: faultCount(events), violations: violationCount(results) };
}

/** node-N.log of a run's cluster dir, by node id (none when the dir is absent). */
function readNodeLogs(cdir: string): Map<number, string> {
  const logs = new Map<number, string>();
  if (!existsSync(cdir)) return logs;
  for (const f of readdirSync(cdir)) {
    const m = /^node-(\d+)\.log$/.exec(f);
    if (m) logs.set(Number(m[1]), readFileSync(join(cdir, f), "utf8"));
  }
  return logs;
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

/** run.json as runner.ts writes it (replay and interrupted since 2026-12-07). */
type RunJson = { seed: string; nodes?: number; durationS: number; workload: WorkloadShape; replay?: string; interrupted?: string; notRecovered?: string };

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
