// The Ready loop's apply budget (node/server/apply-budget.ts) in a real
// single-voter RaftLoop: once applying has proven costly, a burst of
// committed entries is applied over several Readies, none past the budget's
// floor of 4 KiB, every entry once and in order. The cost is made by the
// test (a busy loop per applied command), so the split does not depend on
// how fast the machine is: a slower one only makes the Readies smaller.
import test from "ava";
import { encodeCommand } from "../../node/vault/index.js";
import { beginCmd } from "../../testkit/vault.js";
import { tempDir } from "../storage/helpers.js";
import { startNode } from "./loop-node.js";

const COST_MS = 1;

function busy(ms: number): void {
  const end = performance.now() + ms;
  while (performance.now() < end) { /* the apply's CPU */ }
}

test("a burst of costly entries is applied over several Readies within the budget, each entry once, in order", async (t) => {
  t.timeout(120_000);
  const readies: number[] = [];
  const node = await startNode(tempDir(t), {
    onOutcome: (e) => { if (e.kind === "command") busy(COST_MS); },
    onApplied: (entries) => readies.push(entries),
  });
  t.teardown(() => node.close());
  for (let i = 0; i < 3000 && !node.loop.isLeader; i++) await new Promise((r) => setTimeout(r, 10));
  t.true(node.loop.isLeader, "a single voter elects itself");
  const burst = async (n: number, tag: string) => {
    const cmds = Array.from({ length: n }, (_, i) => beginCmd(`${tag}${i}`));
    await Promise.all(cmds.map((c) => node.loop.propose(c.requestId, encodeCommand(c))));
  };
  await burst(20, "warm"); // the loop learns what applying costs
  const before = readies.length;
  const firstIndex = node.loop.vault.appliedIndex + 1;
  await burst(400, "u");
  const split = readies.slice(before);
  const bytes = encodeCommand(beginCmd("u100")).length + 24;
  t.true(split.length >= 4, `400 entries of ~${bytes} B over ${split.length} Readies`);
  t.true(split.every((n) => n <= Math.ceil(4096 / bytes) + 1), `each Ready within the 4 KiB floor: ${split.join(",")}`);
  const applied = node.events.filter((e) => e.kind === "command" && e.index >= firstIndex).map((e) => e.index);
  t.deepEqual(applied, Array.from({ length: applied.length }, (_, i) => firstIndex + i), "every entry once, in order");
  t.is(applied.length, 400);
});
