// A voter that lost its Raft state (node/server/lost-state.ts): refused when
// its token's keys existed before this start, let through when this start
// generated them (a new node).
import test from "ava";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { LostRaftStateError, holdsRaftFiles, refuseLostRaftState } from "../../node/server/lost-state.js";
import { tempDir } from "../temp.js";
import { startFailureAction } from "../../node/server/start-failure.js";

const facts = { nodeId: 2, tokenLabel: "bkv-node-2", dataDir: "/var/lib/bkv" };

test("a token whose keys this start generated is a new node's: it bootstraps", (t) => {
  t.notThrows(() => refuseLostRaftState({ keysGenerated: true }, facts));
});

test("a token whose keys existed already served the node: refused, saying to replace it or restore the data dir", (t) => {
  const err = t.throws(() => refuseLostRaftState({ keysGenerated: false }, facts), { instanceOf: LostRaftStateError });
  t.is(err?.name, "LostRaftStateError");
  t.regex(err?.message ?? "", /^the HSM token 'bkv-node-2' already served node 2 .*the data dir \/var\/lib\/bkv holds no Raft state/);
  t.regex(err?.message ?? "", /must not vote again under its old id/);
  t.regex(err?.message ?? "", /bkv admin remove 2, then a new node with a new id, a new token, an empty data dir and join: true; or restore this data dir from a backup/);
  t.is(startFailureAction(err, { ...facts, clientListen: "", peerListen: "", adminListen: "", metricsListen: "" }), undefined, "its message says what to do");
});

test("a restart is a Raft dir holding a WAL segment or a snapshot; a missing or empty one is not", (t) => {
  const raft = join(tempDir(t, "bkv-lost-state-"), "raft");
  t.false(holdsRaftFiles(raft), "no dir");
  mkdirSync(join(raft, "wal"), { recursive: true });
  mkdirSync(join(raft, "snap"), { recursive: true });
  t.false(holdsRaftFiles(raft), "empty dirs (as a refused start leaves them)");
  writeFileSync(join(raft, "snap", "1-2.snap"), "");
  t.true(holdsRaftFiles(raft));
});
