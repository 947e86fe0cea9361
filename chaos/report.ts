// The run report: a terminal summary and a self-contained HTML page (inline
// CSS and SVG, no network) with a timeline of operations per client, the
// faults, and leaders by term.
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import type { HistoryEvent, NemesisEvent, Operation } from "./history.js";
import { pairOperations } from "./history.js";
import type { CheckResult } from "./checkers/types.js";
import { FINAL_STATE_CHECKERS } from "./checkers/index.js";

/** What a run's workload was (runner.ts; run.json holds it with the seed, size and duration). */
export interface WorkloadShape {
  readonly clients: number;
  readonly users: number;
  readonly guessLimit: number;
}

export interface RunSummary {
  seed: string;
  nodes: number;
  durationS: number;
  /** The workload's shape (a replay needs it as well as the seed, size and duration); unknown for runs before run.json. */
  workload?: WorkloadShape;
  events: readonly HistoryEvent[];
  results: readonly CheckResult[];
  /** term → leader node ids (more than one is a violation). */
  leaders: ReadonlyMap<number, readonly number[]>;
  /** The command that runs the same faults under the same workload again. */
  replay?: string | undefined;
  /** The run's directory (history, schedule, report, node logs). */
  outDir?: string | undefined;
  /** Set when the run was interrupted before healing ("by SIGINT after 23.4 s"): the final-state checkers did not run. */
  interrupted?: string | undefined;
}

/** "a, b and c": the checkers an interrupted run cannot run. */
const NOT_CHECKED_WHEN_INTERRUPTED = `${FINAL_STATE_CHECKERS.slice(0, -1).join(", ")} and ${FINAL_STATE_CHECKERS.at(-1)}`;

/** How many violations and notes of each checker the terminal summary prints (report.html has them all). */
const SHOWN_VIOLATIONS = 5;
const SHOWN_NOTES = 3;

export function faultCount(events: readonly HistoryEvent[]): number {
  return events.filter((e): e is NemesisEvent => e.type === "nemesis" && (e.phase === "start" || e.fault === "reset-links")).length;
}

export function violationCount(results: readonly CheckResult[]): number {
  return results.reduce((n, r) => n + r.violations.length, 0);
}

/** The terminal summary; its last line is `faults: F, violations: V`. */
export function terminalSummary(s: RunSummary): string {
  const ops = pairOperations(s.events);
  const by = (o: Operation["outcome"]): number => ops.filter((x) => x.outcome === o).length;
  const lines = [
    `chaos run seed=${s.seed} nodes=${s.nodes} duration=${s.durationS}s${s.workload === undefined ? "" : ` clients=${s.workload.clients} users=${s.workload.users} guess-limit=${s.workload.guessLimit}`}`,
    `operations: ${ops.length} (ok ${by("ok")}, fail ${by("fail")}, unknown ${by("info")}); terms with a leader: ${s.leaders.size}`,
  ];
  if (s.interrupted !== undefined) lines.push(`INTERRUPTED ${s.interrupted}: no final state, so ${NOT_CHECKED_WHEN_INTERRUPTED} were not checked; the other checkers judged the history so far (an operation without a completion counts as of unknown outcome)`);
  for (const r of s.results) lines.push(...checkerLines(r));
  if (s.replay !== undefined) lines.push(`replay: ${s.replay}`);
  if (s.outDir !== undefined) lines.push(`evidence: ${s.outDir}/ (report.html, history.jsonl, schedule.json, cluster/node-N.log)`);
  lines.push(`faults: ${faultCount(s.events)}, violations: ${violationCount(s.results)}`);
  return lines.join("\n");
}

/** One checker's verdict, its first violations and notes, and how many more report.html holds. */
function checkerLines(r: CheckResult): string[] {
  const lines = [`  ${r.valid ? "ok  " : "FAIL"} ${r.checker}${r.violations.length ? ` (${r.violations.length} violation(s))` : ""}`];
  for (const v of r.violations.slice(0, SHOWN_VIOLATIONS)) lines.push(`       - ${v.description.slice(0, 400)}`);
  if (r.violations.length > SHOWN_VIOLATIONS) lines.push(`       - ... and ${r.violations.length - SHOWN_VIOLATIONS} more violation(s): report.html lists them all`);
  for (const n of r.notes.slice(0, SHOWN_NOTES)) lines.push(`       · ${n}`);
  if (r.notes.length > SHOWN_NOTES) lines.push(`       · ... and ${r.notes.length - SHOWN_NOTES} more note(s) in report.html`);
  return lines;
}

const esc = (s: string): string => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

const COLORS: Record<Operation["outcome"], string> = { ok: "#3a9d5d", fail: "#d9822b", info: "#8a8a8a" };
const ROW = 18;
const LEFT = 70;
const WIDTH = 1200;

function timelineSvg(s: RunSummary): string {
  const ops = pairOperations(s.events);
  const nemesis = s.events.filter((e): e is NemesisEvent => e.type === "nemesis");
  const end = Math.max(1, ...s.events.map((e) => e.time));
  const x = (t: number): number => LEFT + (Math.min(t, end) / end) * (WIDTH - LEFT - 10);
  const procs = [...new Set(ops.map((o) => o.process))].sort((a, b) => a - b);
  const rowOf = new Map(procs.map((p, i) => [p, i]));
  const height = (procs.length + 3) * ROW + 20;
  const parts: string[] = [`<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" class="timeline">`];
  for (const n of nemesis) {
    parts.push(`<line x1="${x(n.time)}" x2="${x(n.time)}" y1="0" y2="${height}" class="fault"><title>${esc(`${n.time.toFixed(0)} ms ${n.fault} ${n.target ?? ""} ${n.phase ?? ""}`)}</title></line>`);
  }
  procs.forEach((p, i) => parts.push(`<text x="4" y="${(i + 1) * ROW - 5}" class="label">client ${p}</text>`));
  for (const o of ops) {
    const y = (rowOf.get(o.process)! + 1) * ROW - 14;
    const w = Math.max(2, x(o.completeTime === Infinity ? end : o.completeTime) - x(o.invokeTime));
    const tip = `#${o.index} ${o.op} ${o.user} ${o.outcome} ${JSON.stringify({ ...o.input, ...o.output })}`;
    parts.push(`<rect class="op ${o.outcome}" x="${x(o.invokeTime).toFixed(1)}" y="${y}" width="${w.toFixed(1)}" height="12" fill="${COLORS[o.outcome]}"><title>${esc(tip)}</title></rect>`);
  }
  const ly = (procs.length + 2) * ROW;
  parts.push(`<text x="4" y="${ly}" class="label">faults</text>`);
  nemesis.forEach((n) => parts.push(`<text x="${x(n.time)}" y="${ly}" class="fault-label">${esc(n.fault)}</text>`));
  parts.push("</svg>");
  return parts.join("\n");
}

function leadersTable(leaders: ReadonlyMap<number, readonly number[]>): string {
  const rows = [...leaders].sort((a, b) => a[0] - b[0]).map(([term, ns]) => `<tr class="${ns.length > 1 ? "bad" : ""}"><td>${term}</td><td>${ns.join(", ")}</td></tr>`);
  return `<table class="leaders"><tr><th>term</th><th>leader(s)</th></tr>${rows.join("")}</table>`;
}

function resultsList(results: readonly CheckResult[]): string {
  return results
    .map((r) => {
      const vs = r.violations.map((v) => `<li class="violation">${esc(v.description)}</li>`).join("");
      const ns = r.notes.map((n) => `<li class="note">${esc(n)}</li>`).join("");
      return `<div class="checker ${r.valid ? "valid" : "invalid"}"><h3>${esc(r.checker)}: ${r.valid ? "valid" : `${r.violations.length} violation(s)`}</h3><ul>${vs}${ns}</ul></div>`;
    })
    .join("\n");
}

const CSS = `body{font:14px system-ui,sans-serif;margin:20px;color:#222}
.timeline{border:1px solid #ccc;background:#fafafa}.label{font-size:11px}.fault{stroke:#c0392b;stroke-width:1;opacity:.5}
.fault-label{font-size:9px;fill:#c0392b}.checker.valid h3{color:#2e7d32}.checker.invalid h3{color:#c62828}
.violation{color:#c62828}.note{color:#666}table.leaders td,table.leaders th{border:1px solid #ccc;padding:2px 8px}tr.bad{background:#fdd}
.legend span{display:inline-block;width:12px;height:12px;margin:0 4px 0 12px;vertical-align:middle}`;

export function htmlReport(s: RunSummary): string {
  const title = `bkv chaos run — seed ${s.seed}`;
  return `<!doctype html>
<html><head><meta charset="utf-8"><title>${esc(title)}</title><style>${CSS}</style></head>
<body>
<h1>${esc(title)}</h1>
<p class="summary">${s.nodes} nodes, ${s.durationS} s${s.workload === undefined ? "" : `; ${s.workload.clients} clients, ${s.workload.users} users, guess limit ${s.workload.guessLimit}`}. <b>faults: ${faultCount(s.events)}, violations: ${violationCount(s.results)}</b></p>
${s.interrupted === undefined ? "" : `<p class="violation"><b>Interrupted ${esc(s.interrupted)}</b>: no final state, so ${NOT_CHECKED_WHEN_INTERRUPTED} were not checked.</p>`}
${s.replay === undefined ? "" : `<p>Replay: <code>${esc(s.replay)}</code></p>`}
<h2>Checkers</h2>
${resultsList(s.results)}
<h2>Timeline</h2>
<p class="legend">operations:<span style="background:${COLORS.ok}"></span>ok<span style="background:${COLORS.fail}"></span>failed<span style="background:${COLORS.info}"></span>unknown outcome; red lines: faults (hover for details)</p>
${timelineSvg(s)}
<h2>Leaders by term</h2>
${leadersTable(s.leaders)}
</body></html>
`;
}

/** summary.txt and report.html; returns the terminal summary. */
export function writeReport(outDir: string, s: RunSummary): string {
  const summary = terminalSummary(s);
  writeFileSync(join(outDir, "report.html"), htmlReport(s));
  writeFileSync(join(outDir, "summary.txt"), summary + "\n");
  return summary;
}
