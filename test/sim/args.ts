// Command-line parsing for `npm run sim` (see docs/simulation.md):
//   npm run sim -- --seeds N [--from S] [--nodes 3|5] [--steps K] [--storm] [--raft MODULE]
//   npm run sim -- --replay S [--nodes 3|5] [--steps K] [--storm] [--verbose] [--raft MODULE]
// --storm makes every seed an election storm (see faults.ts).
// --raft loads another copy of the Raft library (e.g. one with an injected bug).

import { parseArgs } from "node:util";

export class UsageError extends Error {
  override name = "UsageError";
}

export type CliCommand =
  | { kind: "seeds"; seeds: number; from: number; nodes: 3 | 5 | null; steps: number | null; storm: boolean; raft: string | null }
  | {
    kind: "replay"; seed: number; nodes: 3 | 5 | null; steps: number | null; storm: boolean; verbose: boolean; raft: string | null;
  };

export const USAGE = [
  "usage: npm run sim -- --seeds N [--from S] [--nodes 3|5] [--steps K] [--storm] [--raft MODULE]",
  "       npm run sim -- --replay S [--nodes 3|5] [--steps K] [--storm] [--verbose] [--raft MODULE]",
].join("\n");

export function parseCli(argv: readonly string[]): CliCommand {
  let values;
  try {
    ({ values } = parseArgs({
      args: [...argv],
      strict: true,
      allowPositionals: false,
      options: {
        seeds: { type: "string" },
        from: { type: "string" },
        nodes: { type: "string" },
        replay: { type: "string" },
        steps: { type: "string" },
        verbose: { type: "boolean" },
        storm: { type: "boolean" },
        raft: { type: "string" },
      },
    }));
  } catch (err) {
    throw new UsageError(`${(err as Error).message}\n${USAGE}`);
  }
  const nodes = values.nodes === undefined ? null : parseNodes(values.nodes);
  const steps = values.steps === undefined ? null : parseCount("--steps", values.steps, 1);
  const raft = values.raft ?? null;
  const storm = values.storm ?? false;
  if (values.replay !== undefined) {
    if (values.seeds !== undefined || values.from !== undefined) throw new UsageError(`--replay excludes --seeds and --from\n${USAGE}`);
    return {
      kind: "replay", seed: parseCount("--replay", values.replay, 0), nodes, steps, storm, verbose: values.verbose ?? false, raft,
    };
  }
  if (values.seeds === undefined) throw new UsageError(`one of --seeds or --replay is required\n${USAGE}`);
  if (values.verbose !== undefined) throw new UsageError(`--verbose applies to --replay only\n${USAGE}`);
  const from = values.from === undefined ? 1 : parseCount("--from", values.from, 0);
  return { kind: "seeds", seeds: parseCount("--seeds", values.seeds, 1), from, nodes, steps, storm, raft };
}

function parseCount(flag: string, s: string, min: number): number {
  if (!/^\d+$/.test(s)) throw new UsageError(`${flag} must be a non-negative integer, got "${s}"`);
  const n = Number(s);
  if (!Number.isSafeInteger(n) || n < min) throw new UsageError(`${flag} must be an integer >= ${min}, got "${s}"`);
  return n;
}

function parseNodes(s: string): 3 | 5 {
  if (s === "3") return 3;
  if (s === "5") return 5;
  throw new UsageError(`--nodes must be 3 or 5, got "${s}"`);
}

/** Cluster size of a seed when --nodes is not given: odd seeds run 3 nodes, even seeds 5. */
export function nodesForSeed(seed: number, fixed: 3 | 5 | null): 3 | 5 {
  return fixed ?? (seed % 2 === 1 ? 3 : 5);
}

/** The exact command that replays one seed. */
export function replayCommand(
  seed: number, nodes: number, steps: number | null, raft: string | null = null, storm = false,
): string {
  const extra = `${steps === null ? "" : ` --steps ${steps}`}${storm ? " --storm" : ""}${raft === null ? "" : ` --raft ${raft}`}`;
  return `npm run sim -- --replay ${seed} --nodes ${nodes}${extra}`;
}
