// No node process ends by itself: under the nemesis's faults a node is killed
// and restarted by the harness, never crashes. An exit the harness did not
// cause (a crash, an assertion, the OOM killer, another process's signal) is
// reported with the node's log, where the node says why.
import { result, type CheckResult, type FinalState } from "./types.js";

const NAME = "node-exits";

export function checkNodeExits(final: Pick<FinalState, "unexpectedExits">): CheckResult {
  const exits = final.unexpectedExits ?? [];
  return result(NAME, exits.map((e) => ({ checker: NAME, subject: `node ${e.node}`, description: `node ${e.node} ${e.how} at ${e.at} without the harness stopping it (a crash, the OOM killer or another process's signal): see ${e.log}` })));
}
