// Self and inclusive time per function of a V8 .cpuprofile (node
// --cpu-prof): the sum of the sample intervals whose top frame is the
// function (self), or which have it anywhere on the stack (inclusive),
// largest first. Usage: npx tsx bench/cpuprofile.ts FILE.cpuprofile [top=40]
import { readFileSync } from "node:fs";

interface ProfileNode { id: number; children?: number[]; callFrame: { functionName: string; url: string; lineNumber: number } }
interface Profile { nodes: ProfileNode[]; samples: number[]; timeDeltas: number[] }

const profile = JSON.parse(readFileSync(process.argv[2] ?? "", "utf8")) as Profile;
const top = Number(process.argv[3] ?? 40);
const byId = new Map(profile.nodes.map((n) => [n.id, n]));
const parent = new Map<number, number>();
for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
const name = (id: number): string => {
  const f = byId.get(id)?.callFrame;
  return f === undefined ? "?" : `${f.functionName || "(anonymous)"} ${f.url.replace(`file://${process.cwd()}/`, "")}:${f.lineNumber + 1}`;
};
const [self, inclusive] = [new Map<string, number>(), new Map<string, number>()];
const add = (m: Map<string, number>, k: string, us: number) => m.set(k, (m.get(k) ?? 0) + us);
profile.samples.forEach((id, i) => {
  const us = profile.timeDeltas[i] ?? 0;
  add(self, name(id), us);
  const stack = new Set<string>();
  for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) stack.add(name(at));
  for (const f of stack) add(inclusive, f, us);
});
const total = [...self.values()].reduce((a, b) => a + b, 0);
for (const [title, m] of [["self", self], ["inclusive", inclusive]] as const) {
  console.log(`${title} (of ${(total / 1000).toFixed(0)} ms)`);
  for (const [f, us] of [...m].sort((a, b) => b[1] - a[1]).slice(0, top)) {
    console.log(`${(us / 1000).toFixed(1).padStart(9)} ms ${((100 * us) / total).toFixed(1).padStart(5)}%  ${f}`);
  }
}
