// npm run chaos -- --nodes 3|5 --duration SECONDS --seed S [--clients N] [--users N] [--guess-limit N] [--keep]
// Ends with `faults: F, violations: V`; exit 1 when V > 0, 2 on a usage or setup error.
import { randomBytes } from "node:crypto";
import { runChaos, type RunOptions } from "./runner.js";

export function parseArgs(argv: readonly string[]): RunOptions {
  const o: RunOptions = { nodes: 3, durationS: 60, seed: randomBytes(4).toString("hex") };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const val = (): string => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    const int = (lo: number, hi: number): number => {
      const v = val();
      const n = Number(v);
      if (!Number.isInteger(n) || n < lo || n > hi) throw new Error(`${a} must be an integer in ${lo}..${hi}, got ${JSON.stringify(v)}`);
      return n;
    };
    switch (a) {
      case "--nodes": o.nodes = int(3, 5); if (o.nodes === 4) throw new Error("--nodes must be 3 or 5"); break;
      case "--duration": o.durationS = int(5, 86_400); break;
      case "--seed": o.seed = val(); if (!/^[\w.-]{1,64}$/.test(o.seed)) throw new Error("--seed must be 1-64 letters, digits, . _ -"); break;
      case "--clients": o.clients = int(1, 32); break;
      case "--users": o.users = int(1, 100); break;
      case "--guess-limit": o.guessLimit = int(1, 255); break;
      case "--keep": o.keep = true; break;
      default: throw new Error(`unknown argument ${a}`);
    }
  }
  return o;
}

async function main(): Promise<number> {
  let opts: RunOptions;
  try {
    opts = parseArgs(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`chaos: ${(err as Error).message}\nusage: npm run chaos -- --nodes 3|5 --duration SECONDS --seed S\n`);
    return 2;
  }
  process.stderr.write(`chaos: seed ${opts.seed} (replay: npm run chaos -- --nodes ${opts.nodes} --duration ${opts.durationS} --seed ${opts.seed})\n`);
  const r = await runChaos(opts);
  process.stdout.write(`${r.summary}\n`);
  process.stderr.write(`report: ${r.outDir}/report.html\n`);
  return r.violations > 0 ? 1 : 0;
}

if (process.argv[1]?.endsWith("cli.ts")) {
  main().then((code) => process.exit(code), (err) => {
    process.stderr.write(`chaos: ${err instanceof Error ? err.stack ?? err.message : String(err)}\nchaos: run aborted (no verdict)\n`);
    process.exit(2);
  });
}
