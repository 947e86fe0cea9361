// A restart on real files (DiskStorage, the lmdb vault store, the audit log),
// in process: the node resumes from its store, and the committed log after
// the Raft snapshot, which Raft hands over again, is not applied again
// (docs/storage.md, "Restart").
import { join } from "node:path";
import test, { type ExecutionContext } from "ava";
import { bootstrapSnapshot } from "../../node/raft/index.js";
import { DiskStorage, VaultFiles } from "../../node/storage/index.js";
import { VaultStateMachine, encodeCommand } from "../../node/vault/index.js";
import { AuditLog } from "../../node/server/audit.js";
import { jsonLogger } from "../../node/server/log.js";
import { type AppliedEvent, RaftLoop } from "../../node/server/raft-loop.js";
import { encodeServerSnapshot } from "../../node/server/snapshot-data.js";
import { openVault } from "../../node/server/vault-open.js";
import { CLUSTER, beginCmd } from "../../testkit/vault.js";
import { tempDir } from "../storage/helpers.js";

const quiet = jsonLogger("error", {}, () => ({}), () => {});
const link = { send: () => {}, addPeer: () => {}, removePeer: () => {}, fetchSnapshot: () => { throw new Error("no peers"); } };

interface Node { loop: RaftLoop; events: AppliedEvent[]; close(): Promise<void> }

/** A single-voter node on `dir`, started as node.ts starts one (bootstrapped on first use). */
async function startNode(dir: string): Promise<Node> {
  const storage = await DiskStorage.open(join(dir, "raft"));
  if (storage.lastIndex() === 0 && storage.snapshot().metadata.index === 0) {
    const vault = new VaultStateMachine({ clusterId: CLUSTER }).snapshot();
    await storage.saveSnapshot(bootstrapSnapshot([1], encodeServerSnapshot({ peers: new Map([[1, "127.0.0.1:1"]]), vault })));
  }
  const files = await VaultFiles.open(join(dir, "vault"));
  const sm = await openVault(files, storage.snapshot(), CLUSTER, quiet);
  const audit = AuditLog.open(join(dir, "audit.log"), storage.snapshot().metadata.index);
  const events: AppliedEvent[] = [];
  const loop = new RaftLoop({
    id: 1, clusterId: CLUSTER, storage, files, sm, tickMs: 5, electionTick: 10, heartbeatTick: 1, snapshotInterval: 100_000,
    snapshotRetention: 2, proposalTimeoutMs: 30_000, log: quiet, onFatal: (err) => { throw err; }, attest: async () => {},
    beforeStoreCommit: () => audit.flush(), onOutcome: (e) => { events.push(e); audit.record(e); },
  });
  loop.start(link, new Map());
  let closed = false;
  return {
    loop, events,
    close: async () => {
      if (closed) return;
      closed = true;
      await loop.stop();
      await audit.close();
      await storage.close();
      await files.close();
    },
  };
}

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
