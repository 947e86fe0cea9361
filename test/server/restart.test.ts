// A restart on real files (DiskStorage, the lmdb vault store, the audit log),
// in process: the node resumes from its store, and the committed log after
// the Raft snapshot, which Raft hands over again, is not applied again
// (docs/storage.md, "Restart").
import test, { type ExecutionContext } from "ava";
import { encodeCommand } from "../../node/vault/index.js";
import { beginCmd } from "../../testkit/vault.js";
import { tempDir } from "../storage/helpers.js";
import { startNode } from "./loop-node.js";

async function until(t: ExecutionContext, what: string, cond: () => boolean): Promise<void> {
  for (let i = 0; i < 3000 && !cond(); i++) await new Promise((r) => setTimeout(r, 10));
  t.true(cond(), what);
}

test("a restart resumes at the store's applied index and applies none of the entries the store holds again", async (t) => {
  t.timeout(120_000);
  const dir = tempDir(t);
  const a = await startNode(dir);
  t.teardown(() => a.close());
  await until(t, "a single voter elects itself", () => a.loop.isLeader);
  // The bootstrap snapshot holds the state inline: the first applied entry owes a store snapshot.
  await until(t, "the first store snapshot", () => a.loop.lastSnapshotIndex > 1);
  for (let i = 0; i < 300; i += 50) {
    await Promise.all(Array.from({ length: 50 }, (_, k) => {
      const c = beginCmd(`nobody-${i + k}`); // refused (no such record), yet applied and remembered
      return a.loop.propose(c.requestId, encodeCommand(c));
    }));
  }
  const applied = a.loop.vault.appliedIndex;
  const commands = a.events.filter((e) => e.kind === "command").length;
  t.true(commands >= 300, `${commands} commands applied`);
  t.true(a.loop.lastSnapshotIndex < applied - 250, `the last snapshot (${a.loop.lastSnapshotIndex}) is far behind ${applied}: the log after it is handed over again on restart`);
  await a.close();

  const b = await startNode(dir);
  t.teardown(() => b.close());
  t.is(b.loop.vault.appliedIndex, applied, "the store opens at the index applied before the stop");
  await until(t, "the restarted node leads again and applies its new term's first entry", () => b.loop.vault.appliedIndex > applied);
  const again = b.events.filter((e) => e.kind === "command" && e.index <= applied).map((e) => e.index);
  t.deepEqual(again, [], "no entry the store held was applied again");
});
