// `npm run sim:byzantine [-- --seed N]`: prints the guess bound under a
// Byzantine leader (test/sim/byzantine.ts), measured against the formulas,
// as the Markdown table of docs/threat-model.md.
import { BOUND_CASES, STRATEGIES, boundTable, measureBound } from "./byzantine.js";

function seedArg(argv: readonly string[]): number {
  const i = argv.indexOf("--seed");
  if (i < 0) return 1;
  const v = Number(argv[i + 1]);
  if (!Number.isSafeInteger(v)) throw new Error(`--seed needs an integer (got ${String(argv[i + 1])})`);
  return v;
}

const seed = seedArg(process.argv.slice(2));
const rows = BOUND_CASES.flatMap((c) => STRATEGIES.map((s) => measureBound(c, s, seed)));
process.stdout.write(`seed ${seed}\n\n${boundTable(rows)}\n`);
