import test from "ava";
import { parseArgs } from "../../chaos/cli.js";

test("cli arguments: nodes, duration, seed and options", (t) => {
  const o = parseArgs(["--nodes", "5", "--duration", "60", "--seed", "s-1", "--clients", "3", "--guess-limit", "4", "--keep"]);
  t.like(o, { nodes: 5, durationS: 60, seed: "s-1", clients: 3, guessLimit: 4, keep: true });
  t.is(parseArgs([]).nodes, 3);
});

test("cli arguments: bad input is a clear error", (t) => {
  t.throws(() => parseArgs(["--nodes", "4"]), { message: /3 or 5/ });
  t.throws(() => parseArgs(["--nodes", "7"]), { message: /--nodes must be an integer in 3..5/ });
  t.throws(() => parseArgs(["--duration"]), { message: /needs a value/ });
  t.throws(() => parseArgs(["--seed", "../x"]), { message: /--seed must be/ });
  t.throws(() => parseArgs(["--frobnicate"]), { message: /unknown argument --frobnicate/ });
});
