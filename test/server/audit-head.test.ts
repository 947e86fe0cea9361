// The audit chain's head in the vault store (node/server/audit-head.ts): each
// store commit records the audit log's last line in a node-local pair, past
// the replicated keys, so the state digest and a snapshot of the state are
// the same bytes with it or without it.
import test from "ava";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { VaultFiles } from "../../node/storage/index.js";
import { ALL_KEYS, LOCAL_PREFIX, VaultStateMachine, encodeCommand, localKey, snapshotChunks } from "../../node/vault/index.js";
import { decodeAuditHead, encodeAuditHead, recordAuditHead, recordedAuditHead } from "../../node/server/audit-head.js";
import { parseAuditLine } from "../../proto/audit.js";
import { CLUSTER, Harness, beginCmd, hex } from "../../testkit/vault.js";
import { tempDir } from "../temp.js";
import { startNode } from "./loop-node.js";

const HEAD = { index: 41, hash: "ab".repeat(32) };

function snapshotBytes(files: VaultFiles): Buffer {
  const view = files.store.view();
  try {
    return Buffer.concat([...snapshotChunks(CLUSTER, view.scan(...ALL_KEYS))]);
  } finally {
    view.release();
  }
}

test("the head is a node-local pair: the digest and a snapshot of the state are the same bytes with it", async (t) => {
  const files = await VaultFiles.open(join(tempDir(t), "vault"));
  t.teardown(() => files.close());
  const h = new Harness(new VaultStateMachine({ clusterId: CLUSTER, store: files.store }));
  for (let i = 0; i < 5; i++) h.apply(beginCmd(`nobody-${i}`));
  await files.store.commit();
  const [digest, snapshot] = [hex(h.sm.digest()), snapshotBytes(files)];
  recordAuditHead(files.store, HEAD);
  await files.store.commit();
  t.deepEqual(recordedAuditHead(files.store), HEAD);
  const reopened = new VaultStateMachine({ clusterId: CLUSTER, store: files.store });
  t.is(hex(reopened.digest()), digest, "the digest does not cover it");
  t.true(snapshotBytes(files).equals(snapshot), "a snapshot does not carry it");
  t.false([...files.store.scan(...ALL_KEYS)].some(([k]) => k[0] === LOCAL_PREFIX), "a scan of the replicated keys does not see it");
  t.is(files.store.get(localKey("audithead"))?.[0], 1, "it is in the store");
});

test("the head's value: format, index, hash; another format or length reads as none", (t) => {
  const v = encodeAuditHead(HEAD);
  t.is(v.length, 41);
  t.deepEqual(decodeAuditHead(v), HEAD);
  t.is(decodeAuditHead(Uint8Array.of(2, ...v.subarray(1))), undefined);
  t.is(decodeAuditHead(v.subarray(0, 40)), undefined);
  t.throws(() => encodeAuditHead({ index: -1, hash: HEAD.hash }), { instanceOf: RangeError });
  t.throws(() => encodeAuditHead({ index: 1, hash: "AB".repeat(32) }), { instanceOf: RangeError });
});

test("each store commit records the audit log's last line: after a stop the store names the file's head", async (t) => {
  t.timeout(60_000);
  const dir = tempDir(t);
  const a = await startNode(dir);
  t.teardown(() => a.close());
  for (let i = 0; i < 200 && !a.loop.isLeader; i++) await new Promise((r) => setTimeout(r, 10));
  for (let i = 0; i < 3; i++) {
    const c = beginCmd(`nobody-${i}`);
    await a.loop.propose(c.requestId, encodeCommand(c));
  }
  await a.close();
  const last = parseAuditLine(readFileSync(join(dir, "audit.log"), "utf8").trim().split("\n").at(-1)!);
  t.is(last.kind, "attempt");
  const files = await VaultFiles.open(join(dir, "vault"));
  t.teardown(() => files.close());
  t.deepEqual(recordedAuditHead(files.store), { index: last.index, hash: last.hash });
});
