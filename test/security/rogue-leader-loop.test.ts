// Hostile Raft messages from one member that leads (it needs no election: a
// higher term makes it the leader of whoever accepts it) against an honest
// RaftLoop follower on real storage (DiskStorage, the lmdb vault store).
// onFatal is what main.ts wires to "log and exit", so a call to it is a
// remote crash.
import test from "ava";
import { join } from "node:path";
import { ConfChangeType, EntryType, MessageType, bootstrapSnapshot, encodeConfChange, message } from "../../node/raft/index.js";
import { DiskStorage, VaultFiles } from "../../node/storage/index.js";
import { VaultStateMachine } from "../../node/vault/index.js";
import { jsonLogger } from "../../node/server/log.js";
import { RaftLoop } from "../../node/server/raft-loop.js";
import { encodeServerSnapshot } from "../../node/server/snapshot-data.js";
import { openVault } from "../../node/server/vault-open.js";
import { CLUSTER } from "../../testkit/vault.js";
import { tempDir } from "../temp.js";

const quiet = jsonLogger("error", {}, () => ({}), () => {});
const PEERS = new Map([[1, "127.0.0.1:1"], [2, "127.0.0.1:2"], [3, "127.0.0.1:3"]]);

interface Follower {
  loop: RaftLoop;
  fatal: unknown[];
  links: string[];
  close(): Promise<void>;
}

/** Node 1 of voters 1–3 on `dir` (bootstrapped on first use); node 3 plays the rogue leader. */
async function follower(dir: string): Promise<Follower> {
  const storage = await DiskStorage.open(join(dir, "raft"));
  if (storage.snapshot().metadata.index === 0) {
    const vault = new VaultStateMachine({ clusterId: CLUSTER }).snapshot();
    await storage.saveSnapshot(bootstrapSnapshot([1, 2, 3], encodeServerSnapshot({ peers: PEERS, vault })));
  }
  const files = await VaultFiles.open(join(dir, "vault"));
  const sm = await openVault(files, storage.snapshot(), CLUSTER, quiet);
  const fatal: unknown[] = [];
  const links: string[] = [];
  const loop = new RaftLoop({
    id: 1, clusterId: CLUSTER, storage, files, sm, tickMs: 50, electionTick: 1000, heartbeatTick: 1, snapshotInterval: 100_000,
    snapshotRetention: 2, proposalTimeoutMs: 30_000, log: quiet, onFatal: (err) => { fatal.push(err); }, attest: async () => {},
  });
  loop.start({
    send: () => {}, addPeer: (id, a) => { links.push(`add ${id} ${a}`); }, removePeer: (id) => { links.push(`remove ${id}`); },
    fetchSnapshot: () => { throw new Error("no snapshots here"); },
  }, new Map());
  return { loop, fatal, links, close: async () => { await loop.stop(); await storage.close(); await files.close(); } };
}

/** The rogue's MsgApp of term 5 appending membership entry `data` at index 2 and committing it. */
function confChangeEntry(data: Uint8Array) {
  return message({
    type: MessageType.App, from: 3, to: 1, term: 5, index: 1, logTerm: 1, commit: 2,
    entries: [{ index: 2, term: 5, type: EntryType.ConfChange, data }],
  });
}

async function appliedTo(f: Follower, index: number): Promise<void> {
  for (let i = 0; i < 100 && f.loop.vault.appliedIndex < index; i++) await new Promise((r) => setTimeout(r, 20));
}

test("a committed membership entry that does not decode changes nothing and stops no node, also at its restart", async (t) => {
  const dir = tempDir(t);
  const n = await follower(dir);
  n.loop.step(confChangeEntry(new Uint8Array([0xff])));
  await appliedTo(n, 2);
  t.is(n.loop.vault.appliedIndex, 2, "applied (as nothing)");
  t.deepEqual(n.fatal, [], "no fatal error: before the fix, ErrInvalidConfChange stopped the node");
  t.deepEqual(n.loop.voters, [1, 2, 3]);
  await n.close();
  const again = await follower(dir); // the entry is in the WAL: replayed at start
  await new Promise((r) => setTimeout(r, 200));
  t.deepEqual(again.fatal, [], "before the fix, every restart stopped again on the same entry");
  t.deepEqual(again.loop.voters, [1, 2, 3]);
  await again.close();
});

test("a committed membership change Raft ignores (adding voter 2 as a learner) leaves the transport's addresses alone", async (t) => {
  const n = await follower(tempDir(t));
  t.teardown(() => n.close());
  n.links.length = 0;
  n.loop.step(confChangeEntry(encodeConfChange({ type: ConfChangeType.AddLearner, nodeId: 2, context: new TextEncoder().encode("10.66.6.6:9999") })));
  await appliedTo(n, 2);
  t.is(n.loop.vault.appliedIndex, 2);
  t.deepEqual(n.loop.voters, [1, 2, 3], "Raft ignored the change");
  t.is(n.loop.peers.get(2), "127.0.0.1:2", "before the fix, node 2's address moved to the rogue's choice");
  t.deepEqual(n.links, []);
  t.deepEqual(n.fatal, []);
});

test("a committed membership change Raft takes still updates the transport", async (t) => {
  const n = await follower(tempDir(t));
  t.teardown(() => n.close());
  n.links.length = 0;
  n.loop.step(confChangeEntry(encodeConfChange({ type: ConfChangeType.AddLearner, nodeId: 4, context: new TextEncoder().encode("127.0.0.1:4") })));
  await appliedTo(n, 2);
  t.deepEqual(n.loop.learners, [4]);
  t.is(n.loop.peers.get(4), "127.0.0.1:4");
  t.deepEqual(n.links, ["add 4 127.0.0.1:4"]);
});
