// End-to-end: the simulation against this repository's node/raft.

import test from "ava";
import * as raft from "../../node/raft/index.js";
import { runSeed } from "./cluster.js";
import type { RaftLib } from "./raft-lib.js";

const lib: RaftLib = raft;

test("the same seed gives the same trace twice", (t) => {
  for (const [seed, nodes] of [[3, 3], [4, 5]] as const) {
    const a = runSeed({ seed, nodes, lib, steps: 300 });
    const b = runSeed({ seed, nodes, lib, steps: 300 });
    t.is(a.digest, b.digest);
    t.deepEqual(a.stats, b.stats);
  }
  t.not(runSeed({ seed: 5, nodes: 3, lib, steps: 300 }).digest, runSeed({ seed: 7, nodes: 3, lib, steps: 300 }).digest);
});

test("20 seeds, 3 and 5 nodes: no violation, and the runs do real work", (t) => {
  let commits = 0;
  for (let seed = 1; seed <= 20; seed++) {
    const r = runSeed({ seed, nodes: seed % 2 === 1 ? 3 : 5, lib });
    t.is(r.violation, null, `seed ${seed}: ${r.violation?.message ?? ""}\n${r.lastLines.join("\n")}`);
    t.true(r.stats.leaders >= 1 || r.stats.commit > 1, `seed ${seed} elected no leader`);
    commits += r.stats.commit;
  }
  t.true(commits > 20 * 10, `only ${commits} commits in 20 seeds`);
});
