import test from "ava";
import { nodesForSeed, parseCli, replayCommand, UsageError } from "./args.js";

test("--seeds with defaults", (t) => {
  t.deepEqual(parseCli(["--seeds", "500"]), { kind: "seeds", seeds: 500, from: 1, nodes: null, steps: null, storm: false, raft: null });
});

test("--seeds with --from, --nodes and --steps", (t) => {
  t.deepEqual(parseCli(["--seeds", "10", "--from", "100", "--nodes", "5", "--steps", "50"]),
    { kind: "seeds", seeds: 10, from: 100, nodes: 5, steps: 50, storm: false, raft: null });
  t.deepEqual(parseCli(["--seeds", "3", "--storm", "--raft", "/tmp/r/index.ts"]),
    { kind: "seeds", seeds: 3, from: 1, nodes: null, steps: null, storm: true, raft: "/tmp/r/index.ts" });
});

test("--replay", (t) => {
  t.deepEqual(parseCli(["--replay", "17", "--nodes", "3", "--verbose"]),
    { kind: "replay", seed: 17, nodes: 3, steps: null, storm: false, verbose: true, raft: null });
});

test("bad input is a UsageError", (t) => {
  for (const argv of [
    [], ["--seeds"], ["--seeds", "x"], ["--seeds", "0"], ["--seeds", "-3"], ["--seeds", "1.5"], ["--seeds", "5", "--nodes", "4"],
    ["--replay", "1", "--seeds", "3"], ["--seeds", "3", "--verbose"], ["--bogus"], ["positional"],
  ]) {
    t.throws(() => parseCli(argv), { instanceOf: UsageError }, argv.join(" "));
  }
});

test("cluster size alternates by seed unless fixed; the replay command is exact", (t) => {
  t.is(nodesForSeed(1, null), 3);
  t.is(nodesForSeed(2, null), 5);
  t.is(nodesForSeed(2, 3), 3);
  t.is(replayCommand(42, 5, null), "npm run sim -- --replay 42 --nodes 5");
  t.is(replayCommand(42, 3, 100), "npm run sim -- --replay 42 --nodes 3 --steps 100");
  t.is(replayCommand(7, 5, null, "/tmp/x/index.ts", true), "npm run sim -- --replay 7 --nodes 5 --storm --raft /tmp/x/index.ts");
});
