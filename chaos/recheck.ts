// Re-runs the checkers on a finished run's files (chaos/out/<seed>/) without a cluster:
//   npx tsx chaos/recheck.ts chaos/out/<seed>
// Prints the summary (ending `faults: F, violations: V`), rewrites summary.txt and report.html; exit 1 when V > 0.
import { existsSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { checkAll } from "./checkers/index.js";
import { leadersByTerm } from "./checkers/leaders.js";
import type { FinalState } from "./checkers/types.js";
import { readHistory } from "./history.js";
import { type WorkloadShape, faultCount, htmlReport, terminalSummary, violationCount } from "./report.js";

export function recheck(dir: string): { summary: string; faults: number; violations: number } {
  const events = readHistory(join(dir, "history.jsonl"));
  const final = JSON.parse(readFileSync(join(dir, "final-state.json"), "utf8")) as FinalState;
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

/** The run's options as runner.ts wrote them (run.json); undefined for a run made before it did. */
function readRun(dir: string): { seed: string; durationS: number; workload: WorkloadShape } | undefined {
  const file = join(dir, "run.json");
  return existsSync(file) ? JSON.parse(readFileSync(file, "utf8")) : undefined;
}

if (process.argv[1]?.endsWith("recheck.ts")) {
  const dir = process.argv[2];
  if (dir === undefined) {
    process.stderr.write("usage: npx tsx chaos/recheck.ts chaos/out/<seed>\n");
    process.exit(2);
  }
  const r = recheck(dir);
  process.stdout.write(r.summary + "\n");
  process.exit(r.violations > 0 ? 1 : 0);
}
