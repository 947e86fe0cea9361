// A dropped tail of the audit log (node/server/audit.ts, audit-head.ts): the
// vault store records the chain's head with each commit, so at open a file
// whose chain does not reach it is found (a gap line in the chain, an error
// line, the metric), and `bkv admin audit verify` reports the gap. What is
// not a gap: a torn last line, lines past the store's head (flushed for a
// commit a crash kept from being written), a store that recorded nothing (an
// upgrade), and, on a real loop, a restart after a commit.
import test, { type ExecutionContext } from "ava";
import { appendFileSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { AuditLog } from "../../node/server/audit.js";
import { type AuditHead, recordedAuditHead, reportAuditGap } from "../../node/server/audit-head.js";
import { jsonLogger } from "../../node/server/log.js";
import { Metrics } from "../../node/server/metrics.js";
import type { AppliedEvent } from "../../node/server/raft-loop.js";
import { VaultFiles } from "../../node/storage/index.js";
import { encodeCommand, type VaultResult } from "../../node/vault/index.js";
import { GENESIS_HASH, auditLine, parseAuditLine, verifyAuditChain } from "../../proto/audit.js";
import { runAdminAudit } from "../../client/cli/admin-audit.js";
import type { CliIo } from "../../client/cli/io.js";
import { beginCmd } from "../../testkit/vault.js";
import { tempDir } from "../temp.js";
import { startNode } from "./loop-node.js";

const okBegin: VaultResult = { ok: true, kind: "begin", attemptId: 1, attemptsRemaining: 9, version: 1 };

/** The event of an attempt applied at `index`: the same on every call (a re-applied entry). */
function attempt(index: number, result: VaultResult = okBegin): AppliedEvent {
  return { kind: "command", index, data: encodeCommand(beginCmd("alice", undefined, new Uint8Array(16).fill(index))), result };
}

function tempFile(t: ExecutionContext): string {
  return join(tempDir(t, "bkv-audit-"), "audit.log");
}

function lines(file: string) {
  return readFileSync(file, "utf8").trim().split("\n").map(parseAuditLine);
}

function headAt(file: string, index: number): AuditHead {
  const line = lines(file).find((l) => l.index === index)!;
  return { index, hash: line.hash };
}

/** A log with a bootstrap segment and attempts at 2..last, closed; returns its text. */
async function written(file: string, last: number): Promise<string> {
  const log = AuditLog.open(file, 1);
  for (let i = 2; i <= last; i++) log.record(attempt(i));
  await log.close();
  return readFileSync(file, "utf8");
}

/** The file keeps its first `n` lines only (a cut tail). */
function keepLines(file: string, text: string, n: number): void {
  writeFileSync(file, `${text.split("\n").slice(0, n).join("\n")}\n`);
}

function io(): CliIo & { out: string; err: string } {
  const o = { out: "", err: "", env: {}, stdout: (s: string) => { o.out += s; }, stderr: (s: string) => { o.err += s; } };
  return o as unknown as CliIo & { out: string; err: string };
}

test("a tail cut after a commit is found at open: a gap line names the head the store recorded, after what the file still holds", async (t) => {
  const file = tempFile(t);
  const text = await written(file, 6);
  const recorded = headAt(file, 6); // what the store's last commit recorded
  keepLines(file, text, 3); // lines of index 1, 2, 3 are left
  const log = AuditLog.open(file, 1, recorded);
  t.deepEqual(log.gap, { expected: recorded, found: headAt(file, 3), reason: "behind" });
  for (let i = 2; i <= 7; i++) log.record(attempt(i)); // the loop re-applies what the store does not hold: 7 only
  await log.close();
  const got = lines(file);
  t.deepEqual(got.map((l) => [l.index, l.kind]), [[1, "segment"], [2, "attempt"], [3, "attempt"], [6, "gap"], [7, "attempt"]]);
  t.deepEqual([got[3]?.expectedIndex, got[3]?.expectedHash, got[3]?.reason], [6, recorded.hash, "behind"]);
  const v = verifyAuditChain(readFileSync(file, "utf8"));
  t.true(v.ok);
  t.deepEqual(v.ok ? v.gaps : [], [{ line: 4, afterIndex: 3, expectedIndex: 6, expectedHash: recorded.hash, reason: "behind" }]);
  const again = AuditLog.open(file, 1, headAt(file, 7)); // the next commit recorded the head after the gap
  t.is(again.gap, null, "found once: the gap line is in the chain now");
  await again.close();
});

test("a restart before any commit recorded a newer head does not record the same gap again", async (t) => {
  const file = tempFile(t);
  const text = await written(file, 6);
  const recorded = headAt(file, 6);
  keepLines(file, text, 3);
  await AuditLog.open(file, 1, recorded).close(); // the gap line; then the node stops before its store commits again
  const gapped = readFileSync(file, "utf8");
  const again = AuditLog.open(file, 1, recorded);
  t.is(again.gap, null, "the gap line in the file records this very loss");
  await again.close();
  t.is(readFileSync(file, "utf8"), gapped, "no second gap line");
  const other = AuditLog.open(file, 1, { index: 6, hash: "ab".repeat(32) });
  t.is(other.gap?.reason, "differs", "a gap line for another head is no excuse");
  await other.close();
});

test("a whole file lost: the new file starts with the gap line, not with a segment", async (t) => {
  const file = tempFile(t);
  await written(file, 4);
  const recorded = headAt(file, 4);
  rmSync(file);
  const log = AuditLog.open(file, 1, recorded);
  t.deepEqual(log.gap, { expected: recorded, found: null, reason: "behind" });
  await log.close();
  const got = lines(file);
  t.deepEqual(got.map((l) => [l.index, l.kind, l.prev]), [[4, "gap", GENESIS_HASH]]);
  const v = verifyAuditChain(readFileSync(file, "utf8"));
  t.deepEqual(v.ok ? v.gaps.map((g) => [g.line, g.afterIndex]) : null, [[1, -1]]);
});

test("a file that holds another line at the recorded index (an other chain restored) is a gap too", async (t) => {
  const file = tempFile(t);
  await written(file, 5);
  const recorded = headAt(file, 4);
  const other = tempFile(t);
  const log0 = AuditLog.open(other, 1);
  for (let i = 2; i <= 5; i++) log0.record(attempt(i, { ...okBegin, attemptsRemaining: 3 })); // the same indexes, other lines
  await log0.close();
  writeFileSync(file, readFileSync(other));
  const log = AuditLog.open(file, 1, recorded);
  t.deepEqual(log.gap, { expected: recorded, found: headAt(file, 5), reason: "differs" });
  await log.close();
  const got = lines(file);
  t.deepEqual(got.slice(-2).map((l) => [l.index, l.kind]), [[5, "attempt"], [5, "gap"]], "the gap line may repeat the index before it");
  t.true(verifyAuditChain(readFileSync(file, "utf8")).ok);
  const out = io();
  t.is(await runAdminAudit(["verify", file], out), 6);
  t.regex(out.err, /line 6 records a gap: .*the file's chain ended at index 5 but held another line at index 4: lines were lost or replaced/);
});

test("not a gap: a file past the store's head (flushed for a commit a crash lost), a torn last line, a store that recorded nothing", async (t) => {
  const file = tempFile(t);
  const text = await written(file, 6);
  const ahead = AuditLog.open(file, 1, headAt(file, 4)); // the store holds up to 4; lines 5 and 6 were flushed for a commit never written
  t.is(ahead.gap, null);
  await ahead.close();
  const six = headAt(file, 6);
  appendFileSync(file, '{"v":1,"index":7,"kind":"att'); // a crash inside the write of 7: no commit recorded it
  const torn = AuditLog.open(file, 1, six);
  t.is(torn.gap, null);
  await torn.close();
  t.is(readFileSync(file, "utf8"), text, "the torn line cut, nothing added");
  const upgrade = AuditLog.open(file, 1, undefined);
  t.is(upgrade.gap, null);
  await upgrade.close();
  t.is(readFileSync(file, "utf8"), text);
});

test("the head is found far back in a long file (many lines past it), read backwards over several blocks", async (t) => {
  const file = tempFile(t);
  await written(file, 1500); // ~250 KiB: several 64 KiB blocks
  const log = AuditLog.open(file, 1, headAt(file, 40));
  t.is(log.gap, null);
  await log.close();
  const other = AuditLog.open(file, 1, { index: 40, hash: "ab".repeat(32) });
  t.is(other.gap?.reason, "differs");
  await other.close();
});

test("said loudly: an error line names the expected and the found head, and bkv_audit_gaps_total counts it", async (t) => {
  const out: string[] = [];
  const log = jsonLogger("info", { node: 1 }, () => ({}), (l) => { out.push(l); });
  const metrics = new Metrics(() => null, { node: "1" });
  const gap = { expected: { index: 9, hash: "cd".repeat(32) }, found: { index: 7, hash: "ef".repeat(32) }, reason: "behind" as const };
  reportAuditGap(gap, "/data/audit.log", log, metrics.auditGaps);
  t.is(out.length, 1);
  const line = JSON.parse(out[0]!) as Record<string, unknown>;
  t.is(line.level, "error");
  t.regex(line.msg as string, /audit log lost lines/);
  t.like(line, { file: "/data/audit.log", reason: "behind", expectedIndex: 9, expectedHash: "cd".repeat(32), foundIndex: 7, foundHash: "ef".repeat(32) });
  t.regex(await metrics.registry.metrics(), /^bkv_audit_gaps_total\{node="1"\} 1$/m);
});

test("`bkv admin audit verify` names each gap and exits 6; --allow-gaps names them and exits 0; --user lists the events and the gap; --json says the same as one object", async (t) => {
  const file = tempFile(t);
  const text = await written(file, 6);
  const recorded = headAt(file, 6);
  keepLines(file, text, 3);
  await AuditLog.open(file, 1, recorded).close();
  const strict = io();
  t.is(await runAdminAudit(["verify", file], strict), 6);
  t.regex(strict.out, /4 lines verified, last index 6/);
  t.regex(strict.err, new RegExp(`line 4 records a gap: .*index 6 \\(hash ${recorded.hash}\\); the file's chain ended at index 3, before it`));
  const allowed = io();
  t.is(await runAdminAudit(["verify", "--allow-gaps", file], allowed), 0);
  t.regex(allowed.err, /line 4 records a gap/);
  const user = io();
  t.is(await runAdminAudit(["--user", "alice", file], user), 6);
  t.deepEqual(user.out.trim().split("\n").map((l) => JSON.parse(l).index), [2, 3]);
  t.regex(user.err, /line 4 records a gap/);
  const json = io();
  t.is(await runAdminAudit(["verify", "--json", file], json), 6, "--json: the same exit code");
  t.like(JSON.parse(json.out), { file, ok: true, lines: 4, lastIndex: 6, gaps: [{ line: 4, expectedIndex: 6, expectedHash: recorded.hash }] });
  const userJson = io();
  t.is(await runAdminAudit(["--user", "alice", "--allow-gaps", "--json", file], userJson), 0);
  t.deepEqual((JSON.parse(userJson.out) as { events: Array<{ index: number }> }).events.map((e) => e.index), [2, 3]);
  writeFileSync(file, `${text.split("\n")[0]}\n`);
  const clean = io();
  t.is(await runAdminAudit(["verify", file], clean), 0, "no gap: as before");
  t.is(clean.err, "");
});

test("a gap line without the expected head does not verify; a file written before gaps existed still does", (t) => {
  const OLD = [ // written by the release before this change (c1241c4)
    '{"v":1,"index":1,"kind":"segment","from":"bootstrap","prev":"0000000000000000000000000000000000000000000000000000000000000000","hash":"07f7d74027d93bdc647850a63f53d6b37fcc717542af04b579db67c2ac831881"}',
    '{"v":1,"index":3,"kind":"register","user":"alice","requestId":"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa","outcome":"ok","version":1,"prev":"07f7d74027d93bdc647850a63f53d6b37fcc717542af04b579db67c2ac831881","hash":"cda933dbaebbc3f7ea871da00913e724ea5d8ddc1c4234be1de696853f3aa95d"}',
    '{"v":1,"index":4,"kind":"attempt","user":"alice","requestId":"bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb","outcome":"ok","attemptsRemaining":9,"prev":"cda933dbaebbc3f7ea871da00913e724ea5d8ddc1c4234be1de696853f3aa95d","hash":"01c26c34144dc048bf173e63bd4745cc6e037900344b72edde9d6c9dc36286ff"}',
    '{"v":1,"index":5,"kind":"membership","outcome":"ok","change":"AddLearner","node":4,"prev":"01c26c34144dc048bf173e63bd4745cc6e037900344b72edde9d6c9dc36286ff","hash":"0e938bd0770dc7415c13875ce8e35ea9b114ee880f94ab9b0c04662feb4d5ef9"}',
  ];
  const v = verifyAuditChain(`${OLD.join("\n")}\n`);
  t.deepEqual(v, { ok: true, lines: 4, lastIndex: 5, lastHash: "0e938bd0770dc7415c13875ce8e35ea9b114ee880f94ab9b0c04662feb4d5ef9", gaps: [] });
  const gapLine = auditLine({ index: 6, kind: "gap", reason: "behind" }, v.ok ? v.lastHash : ""); // the node never writes one: by hand
  t.deepEqual(verifyAuditChain(`${OLD.join("\n")}\n${gapLine.text}\n`), { ok: false, line: 5, reason: "a gap line without the expected index and hash" });
});

/** Proposes `count` begins on a single-voter node (refused: no such record; applied and audited all the same). */
async function proposeBegins(n: Awaited<ReturnType<typeof startNode>>, count: number): Promise<void> {
  for (let i = 0; i < 300 && !n.loop.isLeader; i++) await new Promise((r) => setTimeout(r, 10));
  for (let i = 0; i < count; i++) {
    const c = beginCmd(`nobody-${i}`);
    await n.loop.propose(c.requestId, encodeCommand(c));
  }
}

test("on a real loop: a tail cut after the store committed is found at the restart, once; the chain goes on after the gap line", async (t) => {
  t.timeout(60_000);
  const dir = tempDir(t);
  const file = join(dir, "audit.log");
  const a = await startNode(dir);
  t.teardown(() => a.close());
  await proposeBegins(a, 4);
  await a.close();
  const text = readFileSync(file, "utf8");
  const all = lines(file);
  const head = { index: all.at(-1)!.index, hash: all.at(-1)!.hash };
  keepLines(file, text, all.length - 2); // the last two lines are lost
  const b = await startNode(dir);
  t.teardown(() => b.close());
  t.deepEqual(b.audit.gap, { expected: head, found: headAt(file, all.at(-3)!.index), reason: "behind" });
  await proposeBegins(b, 1);
  await b.close();
  const got = lines(file);
  t.deepEqual(got.slice(all.length - 2).map((l) => l.kind), ["gap", "attempt"], "the gap line, then what b applied");
  t.true(got.at(-1)!.index > head.index);
  const v = verifyAuditChain(readFileSync(file, "utf8"));
  t.is(v.ok ? v.gaps.length : -1, 1);
  const c = await startNode(dir);
  t.teardown(() => c.close());
  t.is(c.audit.gap, null, "the next restart finds the head it recorded after the gap");
  await c.close();
  const files = await VaultFiles.open(join(dir, "vault"));
  t.teardown(() => files.close());
  t.deepEqual(recordedAuditHead(files.store), { index: got.at(-1)!.index, hash: got.at(-1)!.hash });
});
