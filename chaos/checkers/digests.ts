// Identical state on every node at the end: after healing and waiting, all
// nodes have applied the same index and their state-machine digests agree.
import type { FinalState } from "./types.js";
import { result, type CheckResult, type Violation } from "./types.js";

const NAME = "digests";

export function checkDigests(final: Pick<FinalState, "nodes">): CheckResult {
  const violations: Violation[] = [];
  const nodes = final.nodes;
  if (nodes.length === 0) return result(NAME, [{ checker: NAME, description: "no node state was collected after healing" }]);
  const byIndex = new Map<number, typeof nodes[number][]>();
  for (const n of nodes) byIndex.set(n.appliedIndex, [...(byIndex.get(n.appliedIndex) ?? []), n]);
  for (const [index, group] of byIndex) {
    const digests = new Set(group.map((n) => n.digest));
    if (digests.size > 1)
      violations.push({ checker: NAME, subject: `index ${index}`, description: `nodes at applied index ${index} disagree: ${group.map((n) => `node ${n.node} ${n.digest.slice(0, 16)}`).join(", ")}` });
  }
  if (byIndex.size > 1)
    violations.push({ checker: NAME, description: `nodes did not converge after healing: ${nodes.map((n) => `node ${n.node} at ${n.appliedIndex}`).join(", ")}` });
  return result(NAME, violations);
}
