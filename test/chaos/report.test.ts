import test from "ava";
import { htmlReport, terminalSummary, type RunSummary } from "../../chaos/report.js";
import { checkAll, checkGuessBound, checkNoRelease } from "../../chaos/checkers/index.js";
import { H } from "./history-builder.js";

function crafted(): RunSummary {
  const h = new H().op(1, "register", "alice", 0, 10, "ok", { guessLimit: 3 }, { version: 1 });
  h.op(2, "recover", "alice", 20, 40, "ok", { passwordCorrect: false }, { keyReleased: true });
  h.op(3, "begin", "bob<script>", 25, null, "info");
  const events = h.sorted();
  events.push({ type: "nemesis", fault: "kill", target: "node-2", phase: "start", time: 30 }, { type: "nemesis", fault: "heal", time: 50 });
  return { seed: "42", nodes: 3, durationS: 1, workload: { clients: 3, users: 2, guessLimit: 3 }, events, results: [checkGuessBound(events), checkNoRelease(events)], leaders: new Map([[2, [1]], [3, [2, 3]]]) };
}

test("terminal summary ends with the faults/violations line and names the failing checker", (t) => {
  const out = terminalSummary(crafted());
  t.is(out.split("\n").at(-1), "faults: 1, violations: 1");
  t.is(out.split("\n")[0], "chaos run seed=42 nodes=3 duration=1s clients=3 users=2 guess-limit=3", "what a replay needs");
  t.regex(out, /FAIL no-release/);
  t.regex(out, /ok {3}guess-bound/);
});

test("HTML report is self-contained and shows clients, faults, leaders and violations", (t) => {
  const html = htmlReport(crafted());
  t.false(/https?:\/\//.test(html.replace('xmlns="http://www.w3.org/2000/svg"', "")), "no network reference");
  t.regex(html, /<svg[^>]*class="timeline"/);
  t.regex(html, /client 1<\/text>[\s\S]*client 2<\/text>[\s\S]*client 3<\/text>/);
  t.is((html.match(/<rect class="op /g) ?? []).length, 3);
  t.regex(html, /<rect class="op info"/);
  t.regex(html, /class="fault-label">kill</);
  t.regex(html, /<tr class="bad"><td>3<\/td><td>2, 3<\/td>/);
  t.regex(html, /key released to a wrong password/);
  t.false(html.includes("bob<script>"), "user ids are escaped");
  t.regex(html, /faults: 1, violations: 1/);
});

test("checkAll runs the right-password checker and the summary names it", (t) => {
  const h = new H().op(1, "register", "alice", 0, 10, "ok", { guessLimit: 3, version: 1, setsPasswordSeq: 1 }, { version: 1, warnings: [] });
  h.op(2, "recover", "alice", 20, 40, "fail", { passwordCorrect: true, passwordSeq: 1 }, { error: "WRONG_PASSWORD", attemptsRemaining: 2, warnings: [] });
  const events = h.sorted();
  const results = checkAll({ events, final: { nodes: [], records: { alice: { version: 1, attemptsRemaining: 2, locked: false } } }, logs: new Map() });
  const out = terminalSummary({ seed: "rp", nodes: 3, durationS: 1, events, results, leaders: new Map() });
  t.regex(out, /FAIL right-password \(1 violation\(s\)\)/);
  t.deepEqual(results.find((r) => r.checker === "right-password")?.violations.map((v) => v.ops), [[0, 1]]);
});

test("the summary says how to replay the run and where its evidence is, just above the last line", (t) => {
  const lines = terminalSummary({ ...crafted(), replay: "npm run chaos -- --nodes 3 --duration 1 --seed 42", outDir: "/x/chaos/out/42" }).split("\n");
  t.is(lines.at(-3), "replay: npm run chaos -- --nodes 3 --duration 1 --seed 42");
  t.is(lines.at(-2), "evidence: /x/chaos/out/42/ (report.html, history.jsonl, schedule.json, cluster/node-N.log)");
  t.is(lines.at(-1), "faults: 1, violations: 1");
  t.regex(htmlReport({ ...crafted(), replay: "npm run chaos -- --seed 42" }), /Replay: <code>npm run chaos -- --seed 42<\/code>/);
});

test("a checker with more violations than the summary prints says how many more report.html holds", (t) => {
  const violations = Array.from({ length: 8 }, (_, i) => ({ checker: "counters", description: `v${i}` }));
  const out = terminalSummary({ ...crafted(), results: [{ checker: "counters", valid: false, violations, notes: ["a", "b", "c", "d"] }] });
  t.regex(out, /- v4\n {7}- \.\.\. and 3 more violation\(s\): report\.html lists them all\n/);
  t.false(out.includes("v5"));
  t.regex(out, /· \.\.\. and 1 more note\(s\) in report\.html/);
  t.is(out.split("\n").at(-1), "faults: 1, violations: 8", "the count is of all of them");
});

test("an interrupted run's summary says so, and which checkers did not run", (t) => {
  const out = terminalSummary({ ...crafted(), interrupted: "by SIGINT after 12.5 s" });
  t.regex(out.split("\n")[2]!, /^INTERRUPTED by SIGINT after 12\.5 s: no final state, so durability, digests and node-exits were not checked/);
  t.regex(htmlReport({ ...crafted(), interrupted: "by SIGTERM after 3.0 s" }), /<b>Interrupted by SIGTERM after 3\.0 s<\/b>/);
});
