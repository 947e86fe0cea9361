// `npm run sim`: runs simulation seeds or replays one (see args.ts and
// docs/simulation.md). Ends a multi-seed run with `seeds: N, violations: V`
// and exits 1 when V > 0.

import { type CliCommand, nodesForSeed, parseCli, replayCommand, USAGE, UsageError } from "./args.js";
import { runSeed, type RunResult } from "./cluster.js";
import { loadRaftLib, type RaftLib } from "./raft-lib.js";

async function main(argv: readonly string[]): Promise<number> {
  if (argv.includes("--help") || argv.includes("-h")) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  let cmd: CliCommand;
  try {
    cmd = parseCli(argv);
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`${err.message}\n`);
      return 2;
    }
    throw err;
  }
  const lib = await loadRaftLib(cmd.raft ?? undefined);
  return cmd.kind === "replay" ? replay(cmd, lib) : runSeeds(cmd, lib);
}

function runSeeds(cmd: Extract<CliCommand, { kind: "seeds" }>, lib: RaftLib): number {
  const started = Date.now();
  let violations = 0;
  for (let k = 0; k < cmd.seeds; k++) {
    const seed = cmd.from + k;
    const nodes = nodesForSeed(seed, cmd.nodes);
    const r = runSeed({ seed, nodes, lib, storm: cmd.storm, ...(cmd.steps === null ? {} : { steps: cmd.steps }) });
    if (r.violation !== null) {
      violations++;
      reportViolation(r, cmd);
    }
    if ((k + 1) % 100 === 0 && k + 1 < cmd.seeds) {
      const secs = ((Date.now() - started) / 1000).toFixed(1);
      process.stderr.write(`sim: ${k + 1}/${cmd.seeds} seeds, ${violations} violations, ${secs}s\n`);
    }
  }
  const secs = ((Date.now() - started) / 1000).toFixed(1);
  process.stderr.write(`sim: seeds ${cmd.from}..${cmd.from + cmd.seeds - 1} in ${secs}s\n`);
  process.stdout.write(`seeds: ${cmd.seeds}, violations: ${violations}\n`);
  return violations > 0 ? 1 : 0;
}

function reportViolation(r: RunResult, cmd: Extract<CliCommand, { kind: "seeds" }>): void {
  const v = r.violation!;
  process.stdout.write([
    `VIOLATION seed=${r.seed} nodes=${r.nodes} invariant="${v.invariant}"`,
    `  ${v.detail.split("\n").join("\n  ")}`,
    `  replay: ${replayCommand(r.seed, r.nodes, cmd.steps, cmd.raft, cmd.storm)}`,
    "  last events:",
    ...r.lastLines.slice(-12).map((l) => `    ${l}`),
    "",
  ].join("\n"));
}

function replay(cmd: Extract<CliCommand, { kind: "replay" }>, lib: RaftLib): number {
  const nodes = nodesForSeed(cmd.seed, cmd.nodes);
  const r = runSeed({
    seed: cmd.seed, nodes, lib, storm: cmd.storm, verbose: cmd.verbose, print: (line) => process.stdout.write(`${line}\n`),
    ...(cmd.steps === null ? {} : { steps: cmd.steps }),
  });
  const s = r.stats;
  process.stdout.write(`stats: ${JSON.stringify(s)}\ntrace digest: ${r.digest}\n`);
  if (r.violation === null) {
    process.stdout.write(`seed ${cmd.seed} (${nodes} nodes): no violation\n`);
    return 0;
  }
  process.stdout.write(`seed ${cmd.seed} (${nodes} nodes): VIOLATION of ${r.violation.invariant}: ${r.violation.detail}\n`);
  return 1;
}

main(process.argv.slice(2)).then(
  (code) => { process.exitCode = code; },
  (err: unknown) => {
    process.stderr.write(`sim: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
    process.exitCode = 2;
  },
);
