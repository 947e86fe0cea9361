import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import test, { type ExecutionContext } from "ava";
import type { HistoryEvent } from "../../chaos/history.js";
import { CHAOS_EXIT } from "../../chaos/args.js";
import { recheck, recheckMain } from "../../chaos/recheck.js";
import { tempDir } from "../temp.js";
import { H } from "./history-builder.js";

/** Two wrong-password begins on a user registered before the history started (its guess limit is not in the history). */
function twoWrongGuesses(): HistoryEvent[] {
  const h = new H();
  h.op(1, "begin", "carol", 0, 10, "fail", {}, { error: "WRONG_PASSWORD", attemptsRemaining: 1 });
  h.op(1, "begin", "carol", 20, 30, "fail", {}, { error: "WRONG_PASSWORD", attemptsRemaining: 0 });
  return h.sorted();
}

/** A run directory `<tmp>/<name>/` as runner.ts leaves it (run.json only when `run` is given). */
function runDir(t: ExecutionContext, name: string, events: HistoryEvent[], run?: object): string {
  const dir = join(tempDir(t, "bkv-recheck-"), name);
  mkdirSync(join(dir, "cluster"), { recursive: true });
  writeFileSync(join(dir, "history.jsonl"), events.map((e) => JSON.stringify(e)).join("\n") + "\n");
  writeFileSync(join(dir, "final-state.json"), JSON.stringify({ nodes: [{ node: 1, appliedIndex: 9, digest: "ab" }], records: {} }));
  writeFileSync(join(dir, "cluster", "node-1.log"), "");
  if (run !== undefined) writeFileSync(join(dir, "run.json"), JSON.stringify(run));
  return dir;
}

test("recheck takes the workload from run.json: its guess limit judges the history, its shape heads the summary", (t) => {
  const dir = runDir(t, "gl1", twoWrongGuesses(), { seed: "gl1-seed", nodes: 1, durationS: 60, workload: { clients: 2, users: 1, guessLimit: 1 } });
  const r = recheck(dir);
  const lines = r.summary.split("\n");
  t.is(lines[0], "chaos run seed=gl1-seed nodes=1 duration=60s clients=2 users=1 guess-limit=1");
  t.is(r.violations, 1, "two definite attempts against a limit of 1");
  t.regex(r.summary, /FAIL guess-bound/);
  t.is(lines.at(-1), "faults: 0, violations: 1");
  t.is(readFileSync(join(dir, "summary.txt"), "utf8"), r.summary + "\n", "summary.txt rewritten");
  t.regex(readFileSync(join(dir, "report.html"), "utf8"), /faults: 0, violations: 1/);
});

test("recheck of a run made before run.json: the seed is the directory's name, the default guess limit applies", (t) => {
  const dir = runDir(t, "old-seed", twoWrongGuesses());
  const r = recheck(dir);
  t.true(r.summary.startsWith("chaos run seed=old-seed nodes=1 duration=0s"), r.summary.split("\n")[0]);
  t.is(r.violations, 0, "two attempts are within the default limit of 10");
  t.is(r.summary.split("\n").at(-1), "faults: 0, violations: 0");
});

/** recheckMain's exit code and output. */
function cli(argv: string[]): { code: number; out: string; err: string } {
  let out = "";
  let err = "";
  const code = recheckMain(argv, (s) => (out += s), (s) => (err += s));
  return { code, out, err };
}

test("recheck cli: no directory, two, or a flag is a usage error (64)", (t) => {
  for (const argv of [[], ["a", "b"], ["--frob"]]) {
    const r = cli(argv);
    t.is(r.code, CHAOS_EXIT.USAGE, argv.join(" "));
    t.regex(r.err, /usage: npm run chaos:recheck -- DIR/);
  }
  t.is(cli(["--help"]).code, CHAOS_EXIT.OK);
});

test("recheck cli: a missing directory or file is one clear line and exit 2, not a stack trace with exit 1 (a violation's code)", (t) => {
  const none = cli(["/nonexistent/chaos-run"]);
  t.is(none.code, CHAOS_EXIT.NO_RUN);
  t.is(none.err, "chaos:recheck: /nonexistent/chaos-run: no such directory (a run's directory is chaos/out/<seed>)\nchaos:recheck: nothing checked (no verdict)\n");
  const dir = runDir(t, "nohist", twoWrongGuesses());
  rmSync(join(dir, "history.jsonl"));
  t.regex(cli([dir]).err, /history\.jsonl: missing\n/);
});

test("recheck cli: a truncated or corrupt history, final state or run.json names the file and the line, exit 2", (t) => {
  const dir = runDir(t, "cut", twoWrongGuesses(), { seed: "cut", nodes: 1, durationS: 5, workload: { clients: 1, users: 1, guessLimit: 5 } });
  const hist = join(dir, "history.jsonl");
  const text = readFileSync(hist, "utf8");
  writeFileSync(hist, text.slice(0, text.indexOf("\n") + 20));
  let r = cli([dir]);
  t.is(r.code, CHAOS_EXIT.NO_RUN);
  t.regex(r.err, /history\.jsonl: history line 2: not JSON \(truncated or corrupt\?\)/);
  t.notRegex(r.err, /\bat \S+:\d+/, "no stack trace");
  writeFileSync(hist, text.replace('"type":"fail"', '"type":"fial"'));
  t.regex(cli([dir]).err, /history line \d+: unknown type "fial"/);
  writeFileSync(hist, text);
  writeFileSync(join(dir, "final-state.json"), '{"nodes": [');
  r = cli([dir]);
  t.is(r.code, CHAOS_EXIT.NO_RUN);
  t.regex(r.err, /final-state\.json: not JSON \(truncated or corrupt\?\)/);
  writeFileSync(join(dir, "final-state.json"), "[]");
  t.regex(cli([dir]).err, /final-state\.json: not a final state/);
  writeFileSync(join(dir, "final-state.json"), JSON.stringify({ nodes: [], records: {} }));
  writeFileSync(join(dir, "run.json"), "{");
  t.regex(cli([dir]).err, /run\.json: not JSON/);
});

test("recheck of an interrupted run (run.json says so, no final state): the history-only checkers, and the summary says it", (t) => {
  const run = { seed: "cut", nodes: 3, durationS: 60, workload: { clients: 1, users: 1, guessLimit: 1 }, replay: "npm run chaos -- --nodes 3 --duration 60 --seed cut --guess-limit 1", interrupted: "by SIGINT after 4.2 s" };
  const dir = runDir(t, "cut", twoWrongGuesses(), run);
  rmSync(join(dir, "final-state.json"));
  const r = cli([dir]);
  t.is(r.code, CHAOS_EXIT.VIOLATIONS, "a violation before the interruption is one");
  t.regex(r.out, /INTERRUPTED by SIGINT after 4\.2 s: /);
  t.regex(r.out, /FAIL guess-bound/);
  t.notRegex(r.out, /^ +(ok  |FAIL) (durability|digests)/m, "the final-state checkers did not run");
  t.regex(r.out, /replay: npm run chaos -- --nodes 3 --duration 60 --seed cut --guess-limit 1\n/);
  t.regex(r.out, new RegExp(`evidence: ${dir}/ `));
});

test("recheck of a run without a final state that was not interrupted (a crash) names the missing file", (t) => {
  const dir = runDir(t, "crash", twoWrongGuesses(), { seed: "crash", nodes: 1, durationS: 5, workload: { clients: 1, users: 1, guessLimit: 5 } });
  rmSync(join(dir, "final-state.json"));
  const r = cli([dir]);
  t.is(r.code, CHAOS_EXIT.NO_RUN);
  t.regex(r.err, /final-state\.json: missing\n/);
});
