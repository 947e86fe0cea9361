// The audit log (node/server/audit.ts) and its format and verifier
// (proto/audit.ts), on a real file: lines derived from applied outcomes only,
// the chain across a restart, a torn last line, a snapshot segment, and a
// verifier that names the first line a changed byte breaks.
import test, { type ExecutionContext } from "ava";
import { closeSync, readFileSync, writeFileSync, appendFileSync } from "node:fs";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { AuditLog, commandEvent } from "../../node/server/audit.js";
import type { AppliedEvent } from "../../node/server/raft-loop.js";
import { ConfChangeType } from "../../node/raft/index.js";
import { VaultStateMachine, encodeCommand, stampTime, vaultError, type VaultResult } from "../../node/vault/index.js";
import { CLUSTER, VOTERS, register, registerCmd } from "../../testkit/vault.js";
import { GENESIS_HASH, auditLine, parseAuditLine, verifyAuditChain } from "../../proto/audit.js";
import { G, encodePoint } from "../../proto/crypto/index.js";
import { runAdminAudit } from "../../client/cli/admin-audit.js";
import type { CliIo } from "../../client/cli/io.js";
import { tempDir } from "../temp.js";

const BLINDED = encodePoint(G);

function begin(user: string, requestId: Uint8Array = randomBytes(16)): Uint8Array {
  return encodeCommand({ kind: "begin", requestId, user, blinded: BLINDED });
}

function command(index: number, data: Uint8Array, result: VaultResult): AppliedEvent {
  return { kind: "command", index, data, result };
}

const okBegin = (remaining: number): VaultResult => ({ ok: true, kind: "begin", attemptId: 1, attemptsRemaining: remaining, version: 1 });

function tempFile(t: ExecutionContext): string {
  return join(tempDir(t, "bkv-audit-"), "audit.log");
}

function lines(file: string) {
  return readFileSync(file, "utf8").trim().split("\n").map(parseAuditLine);
}

function io(): CliIo & { out: string; err: string } {
  const o = { out: "", err: "", env: {}, stdout: (s: string) => { o.out += s; }, stderr: (s: string) => { o.err += s; } };
  return o as unknown as CliIo & { out: string; err: string };
}

test("a new log starts a bootstrap segment; commands become chained lines; no-ops and announcements none", async (t) => {
  const file = tempFile(t);
  const log = AuditLog.open(file, 1);
  log.record(command(2, new Uint8Array(0), vaultError("INVALID_ARGUMENT", "no-op")));
  log.record(command(3, begin("alice"), okBegin(9)));
  log.record(command(4, begin("alice"), vaultError("GUESS_LIMIT_REACHED", "locked", 0)));
  log.record({ kind: "membership", index: 5, change: { type: ConfChangeType.AddLearner, nodeId: 4, context: new Uint8Array(0) } as never });
  await log.close();
  const got = lines(file);
  t.deepEqual(got.map((l) => [l.index, l.kind, l.user, l.outcome, l.attemptsRemaining]), [
    [1, "segment", undefined, undefined, undefined],
    [3, "attempt", "alice", "ok", 9],
    [4, "lockout", "alice", "GUESS_LIMIT_REACHED", 0],
    [5, "membership", undefined, "ok", undefined],
  ]);
  t.is(got[0]?.from, "bootstrap");
  t.is(got[0]?.prev, GENESIS_HASH);
  t.is(got[3]?.change, "AddLearner");
  t.is(got[3]?.node, 4);
  t.true(verifyAuditChain(readFileSync(file, "utf8")).ok);
});

test("a line carries no secret: the blinded element, signatures and record fields stay out", (t) => {
  const ev = commandEvent(9, begin("bob", new Uint8Array(16).fill(0xab)), okBegin(3));
  t.deepEqual(ev, { index: 9, kind: "attempt", user: "bob", requestId: "ab".repeat(16), outcome: "ok", attemptsRemaining: 3 });
});

test("the event from what apply parsed is the event parsed from the entry's bytes", (t) => {
  const sm = new VaultStateMachine({ clusterId: CLUSTER });
  const payloads = [begin("nobody"), stampTime(begin("nobody"), 5), Uint8Array.of(1, 2, 3), new Uint8Array(0), encodeCommand(registerCmd(register("ann")))];
  payloads.forEach((data, i) => {
    const out = sm.apply(2 + i, data, VOTERS);
    t.deepEqual(commandEvent(2 + i, data, out.result, out), commandEvent(2 + i, data, out.result), `payload ${i}`);
  });
  t.is(commandEvent(9, new Uint8Array(0), okBegin(1), { requestId: null, command: null }), undefined, "a leader's no-op");
});

test("restart: the chain resumes from the last line and an index already written is not written again", async (t) => {
  const file = tempFile(t);
  const a = AuditLog.open(file, 1);
  a.record(command(3, begin("alice"), okBegin(9)));
  a.record(command(4, begin("alice"), okBegin(8)));
  await a.close();
  const b = AuditLog.open(file, 1); // the loop re-applies the entries after its snapshot (index 1)
  b.record(command(3, begin("alice"), okBegin(9)));
  b.record(command(4, begin("alice"), okBegin(8)));
  b.record(command(5, begin("alice"), okBegin(7)));
  await b.close();
  t.deepEqual(lines(file).map((l) => l.index), [1, 3, 4, 5]);
  t.true(verifyAuditChain(readFileSync(file, "utf8")).ok);
});

test("a torn last line (a crash inside a write) is cut at open; the chain goes on from the line before", async (t) => {
  const file = tempFile(t);
  const a = AuditLog.open(file, 1);
  a.record(command(3, begin("alice"), okBegin(9)));
  await a.close();
  appendFileSync(file, '{"v":1,"index":4,"kind":"att');
  t.false(verifyAuditChain(readFileSync(file, "utf8")).ok);
  const b = AuditLog.open(file, 1);
  b.record(command(4, begin("alice"), okBegin(8)));
  await b.close();
  t.deepEqual(lines(file).map((l) => l.index), [1, 3, 4]);
  t.true(verifyAuditChain(readFileSync(file, "utf8")).ok);
});

test("restart of a log far longer than one read block: only its tail is read, a torn tail longer than a block is cut, the chain goes on", async (t) => {
  const file = tempFile(t);
  const a = AuditLog.open(file, 1);
  for (let i = 2; i < 1500; i++) a.record(command(i, begin(`user-${i}`), okBegin(9))); // ~250 KiB: several 64 KiB blocks
  await a.close();
  appendFileSync(file, `{"v":1,"index":1500,"kind":"attempt","user":"${"x".repeat(100_000)}`); // torn, without a newline, > one block
  const b = AuditLog.open(file, 1);
  b.record(command(1499, begin("again"), okBegin(8))); // written before the stop: not again
  b.record(command(1500, begin("alice"), okBegin(8)));
  await b.close();
  const got = lines(file);
  t.is(got.length, 1500);
  t.deepEqual(got.slice(-2).map((l) => [l.index, l.user]), [[1499, "user-1499"], [1500, "alice"]]);
  t.true(verifyAuditChain(readFileSync(file, "utf8")).ok);
});

test("an installed snapshot starts a new segment that says so; a joining node's log starts there", async (t) => {
  const file = tempFile(t);
  const log = AuditLog.open(file, 0); // a joining node: no state yet, no line
  t.is(readFileSync(file, "utf8"), "");
  log.record({ kind: "snapshot", index: 40 });
  log.record(command(38, begin("alice"), okBegin(9))); // covered by the snapshot: never applied here
  log.record(command(41, begin("alice"), okBegin(8)));
  await log.close();
  const got = lines(file);
  t.deepEqual(got.map((l) => [l.index, l.kind, l.from]), [[40, "segment", "snapshot"], [41, "attempt", undefined]]);
  t.true(verifyAuditChain(readFileSync(file, "utf8")).ok);
});

test("one changed byte fails verification at its line, whichever byte; `bkv admin audit verify` says which", async (t) => {
  const file = tempFile(t);
  const log = AuditLog.open(file, 1);
  for (let i = 0; i < 6; i++) log.record(command(3 + i, begin(i % 2 === 0 ? "alice" : "bob"), okBegin(9 - i)));
  await log.close();
  const good = readFileSync(file, "utf8");
  const ok = io();
  t.is(await runAdminAudit(["verify", file], ok), 0);
  t.regex(ok.out, /7 lines verified, last index 8/);
  const rows = good.split("\n");
  const target = 4; // 1-based line 4
  const offset = rows.slice(0, target - 1).join("\n").length + 1;
  for (const at of [offset + 3, offset + 20, offset + rows[target - 1]!.length - 3]) {
    const bytes = Buffer.from(good);
    bytes[at] = bytes[at] === 0x31 ? 0x32 : 0x31;
    const bad = bytes.toString("utf8");
    const v = verifyAuditChain(bad);
    t.false(v.ok);
    t.is(v.ok ? 0 : v.line, target, `byte ${at - offset} of line ${target}`);
    const broken = join(tempDir(t, "bkv-audit-"), "broken.log");
    writeFileSync(broken, bad);
    const out = io();
    t.is(await runAdminAudit(["verify", broken], out), 6);
    t.regex(out.err, new RegExp(`line ${target} does not verify`));
  }
});

test("`bkv admin audit --user U` lists U's events only; a dropped line breaks the chain at the next one", async (t) => {
  const file = tempFile(t);
  const log = AuditLog.open(file, 1);
  for (let i = 0; i < 4; i++) log.record(command(3 + i, begin(i % 2 === 0 ? "alice" : "bob"), okBegin(9 - i)));
  await log.close();
  const out = io();
  t.is(await runAdminAudit(["--user", "bob", file], out), 0);
  t.deepEqual(out.out.trim().split("\n").map((l) => JSON.parse(l).index), [4, 6]);
  const rows = readFileSync(file, "utf8").split("\n");
  const dropped = [...rows.slice(0, 2), ...rows.slice(3)].join("\n");
  const v = verifyAuditChain(dropped);
  t.deepEqual(v, { ok: false, line: 3, reason: "prev is not the previous line's hash" });
  t.is(await runAdminAudit(["nonsense"], io()), 64);
});

test("flush: writes the lines recorded before it and resolves once they are durable, in order; a failed write rejects it and every later flush (the loop then stops the node)", async (t) => {
  const file = tempFile(t);
  const log = AuditLog.open(file, 1);
  log.record(command(2, begin("alice"), okBegin(9)));
  t.deepEqual(lines(file).map((l) => l.index), [1], "recorded, not written yet: the event loop does not wait for the disk");
  for (let i = 0; i < 1000 && lines(file).length < 2; i++) await new Promise((resolve) => setTimeout(resolve, 10)); // the turn's write, on the pool
  t.deepEqual(lines(file).map((l) => l.index), [1, 2], "written once the turn ended, before any flush");
  log.record(command(3, begin("bob"), okBegin(8)));
  const flushed = log.flush();
  log.record(command(4, begin("bob"), okBegin(7))); // recorded during the write: the next flush writes it
  await flushed;
  t.deepEqual(lines(file).map((l) => l.index), [1, 2, 3]);
  await log.flush();
  await log.flush(); // nothing new: resolves with the last one
  t.deepEqual(lines(file).map((l) => l.index), [1, 2, 3, 4]);
  t.true(verifyAuditChain(readFileSync(file, "utf8")).ok);
  log.record(command(5, begin("carol"), okBegin(6)));
  crash(log);
  await t.throwsAsync(log.flush(), { code: "EBADF" });
  await t.throwsAsync(log.flush(), { code: "EBADF" }, "a failed flush fails the ones after it");
});

/** The event of an attempt applied at `index`: the same on every call (a re-applied entry). */
function attempt(index: number): AppliedEvent {
  return command(index, begin("alice", new Uint8Array(16).fill(index)), okBegin(12 - index));
}

/** The log's file is closed under it (as by a crash): its writes from now on fail (EBADF) and reach no other file. */
function crash(log: AuditLog): void {
  const handle = log as unknown as { fd: number };
  const fd = handle.fd;
  handle.fd = 1 << 30; // a descriptor that is never open
  closeSync(fd);
}

test("a crash before a flush loses only the lines after the last flush; the restarted loop records them again and the chain stays whole", async (t) => {
  const file = tempFile(t);
  const a = AuditLog.open(file, 1);
  for (let i = 2; i <= 4; i++) a.record(attempt(i));
  await a.flush(); // the store then commits up to index 4
  for (let i = 5; i <= 6; i++) a.record(attempt(i));
  crash(a); // lines 5 and 6 never reach the file, and the store holds up to 4
  t.deepEqual(lines(file).map((l) => l.index), [1, 2, 3, 4]);
  const b = AuditLog.open(file, 1);
  for (let i = 2; i <= 7; i++) b.record(attempt(i)); // re-applied after the snapshot at 1
  await b.close();
  t.deepEqual(lines(file).map((l) => l.index), [1, 2, 3, 4, 5, 6, 7]);
  t.true(verifyAuditChain(readFileSync(file, "utf8")).ok);
});

test("a crash inside a flush's write (whole lines of the batch written, the last torn) is cut at open; the chain goes on", async (t) => {
  const whole = tempFile(t);
  const a = AuditLog.open(whole, 1);
  for (let i = 2; i <= 6; i++) a.record(attempt(i));
  await a.close(); // one write of lines 2-6
  const text = readFileSync(whole, "utf8");
  const file = tempFile(t);
  writeFileSync(file, text.slice(0, text.lastIndexOf('"index":6') + 20)); // the write stopped inside line 6
  t.false(verifyAuditChain(readFileSync(file, "utf8")).ok);
  const b = AuditLog.open(file, 1);
  for (let i = 2; i <= 7; i++) b.record(attempt(i));
  await b.close();
  t.deepEqual(lines(file).map((l) => l.index), [1, 2, 3, 4, 5, 6, 7]);
  t.is(readFileSync(file, "utf8").split("\n").slice(0, 6).join("\n"), text.split("\n").slice(0, 6).join("\n"), "the same lines as the log that was not torn");
  t.true(verifyAuditChain(readFileSync(file, "utf8")).ok);
});

test("a line is JSON.stringify of its fields in format order, then prev and hash (the format's definition)", (t) => {
  const event = { index: 7, kind: "attempt" as const, user: "al\"ice\u2028", requestId: "ab", outcome: "ok", attemptsRemaining: 3 };
  const { text, hash } = auditLine(event, GENESIS_HASH);
  t.is(text, JSON.stringify({ v: 1, ...event, prev: GENESIS_HASH, hash }));
  t.deepEqual(parseAuditLine(text), { v: 1, ...event, prev: GENESIS_HASH, hash });
});
