// A single-voter RaftLoop on real files (DiskStorage, the lmdb vault store,
// the audit log), in process, started as node.ts starts one: for tests of
// the loop that need no peers.
import { join } from "node:path";
import { bootstrapSnapshot } from "../../node/raft/index.js";
import { DiskStorage, VaultFiles } from "../../node/storage/index.js";
import { VaultStateMachine } from "../../node/vault/index.js";
import { AuditLog } from "../../node/server/audit.js";
import { recordedAuditHead } from "../../node/server/audit-head.js";
import { jsonLogger } from "../../node/server/log.js";
import { type AppliedEvent, RaftLoop, type RaftLoopOptions } from "../../node/server/raft-loop.js";
import { encodeServerSnapshot } from "../../node/server/snapshot-data.js";
import { openVault } from "../../node/server/vault-open.js";
import { CLUSTER } from "../../testkit/vault.js";

const quiet = jsonLogger("error", {}, () => ({}), () => {});
const link = { send: () => {}, addPeer: () => {}, removePeer: () => {}, fetchSnapshot: () => { throw new Error("no peers"); } };

export interface Node { loop: RaftLoop; audit: AuditLog; events: AppliedEvent[]; close(): Promise<void> }

/** A single-voter node on `dir` (bootstrapped on first use); `hooks` (onApplied, onOutcome) are called besides its own; `clusterNow` is the loop's. */
export async function startNode(dir: string, hooks: Pick<RaftLoopOptions, "onApplied" | "onOutcome" | "clusterNow"> = {}): Promise<Node> {
  const storage = await DiskStorage.open(join(dir, "raft"));
  if (storage.lastIndex() === 0 && storage.snapshot().metadata.index === 0) {
    const vault = new VaultStateMachine({ clusterId: CLUSTER }).snapshot();
    await storage.saveSnapshot(bootstrapSnapshot([1], encodeServerSnapshot({ peers: new Map([[1, "127.0.0.1:1"]]), vault })));
  }
  const files = await VaultFiles.open(join(dir, "vault"));
  const sm = await openVault(files, storage.snapshot(), CLUSTER, quiet);
  const audit = AuditLog.open(join(dir, "audit.log"), storage.snapshot().metadata.index, recordedAuditHead(files.store));
  const events: AppliedEvent[] = [];
  const loop = new RaftLoop({
    id: 1, clusterId: CLUSTER, storage, files, sm, tickMs: 5, electionTick: 10, heartbeatTick: 1, snapshotInterval: 100_000,
    snapshotRetention: 2, proposalTimeoutMs: 30_000, log: quiet, onFatal: (err) => { throw err; }, attest: async () => {},
    beforeStoreCommit: (store) => audit.flushFor(store), onOutcome: (e) => { events.push(e); audit.record(e); hooks.onOutcome?.(e); },
    ...(hooks.onApplied === undefined ? {} : { onApplied: hooks.onApplied }),
    ...(hooks.clusterNow === undefined ? {} : { clusterNow: hooks.clusterNow }),
  });
  loop.start(link, new Map());
  let closed = false;
  return {
    loop, audit, events,
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

