// `npm run sim:byzantine [-- --seed N]`: prints the guess bound under a
// Byzantine leader (test/sim/byzantine.ts), measured against the formulas,
// as the Markdown table of docs/threat-model.md.
import { parseArgs } from "node:util";
import { BOUND_CASES, STRATEGIES, boundTable, measureBound } from "./byzantine.js";

const USAGE = "usage: npm run sim:byzantine -- [--seed N] (default 1)";

/** The seed from argv (1 without --seed); exits 2 with the usage on an unknown flag or a seed that is not an integer, 0 on --help. */
function seedArg(argv: string[]): number {
  try {
    const { values } = parseArgs({ args: argv, strict: true, options: { seed: { type: "string" }, help: { type: "boolean", short: "h" } } });
    if (values.help) {
      process.stdout.write(`${USAGE}\n`);
      process.exit(0);
    }
    const v = Number(values.seed ?? "1");
    if (!Number.isSafeInteger(v)) throw new Error(`--seed needs an integer (got ${JSON.stringify(values.seed)})`);
    return v;
  } catch (err) {
    process.stderr.write(`sim:byzantine: ${(err as Error).message}\n${USAGE}\n`);
    process.exit(2);
  }
}

const seed = seedArg(process.argv.slice(2));
const rows = BOUND_CASES.flatMap((c) => STRATEGIES.map((s) => measureBound(c, s, seed)));
process.stdout.write(`seed ${seed}\n\n${boundTable(rows)}\n`);
