// `bkv admin` against a real 3-node cluster (real processes, real mTLS with
// an operator certificate, 127.0.0.1): every command, its refusals with their
// messages, a retried AddLearner answering its first outcome, the admin
// port's caller check, its metrics, and a fourth node that joins by itself
// after a dead node was removed. The CLI runs in-process through run(),
// given only one follower's admin address: it finds and follows the leader.
import test from "ava";
import { execFileSync } from "node:child_process";
import { type KeyObject, createHash, randomBytes } from "node:crypto";
import { type CryptoKey, SignJWT, exportJWK, generateKeyPair } from "jose";
import { G, encodePoint, randomScalar } from "../../proto/crypto/index.js";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import * as grpc from "@grpc/grpc-js";
import { run } from "../../client/cli/main.js";
import type { CliIo } from "../../client/cli/io.js";
import { AdminService } from "../../proto/gen/bkv/v1/admin_pb.js";
import { errorDetailOf, unaryClient } from "../../proto/rpc.js";
import { ErrorReason } from "../../proto/gen/bkv/v1/status_pb.js";
import { LocalCluster, waitFor, reportLogsOnFailure } from "../../testkit/cluster.js";
import { decodeServerSnapshot } from "../../node/server/snapshot-data.js";
import { VaultStateMachine } from "../../node/vault/index.js";
import { parseAuditLine } from "../../proto/audit.js";

reportLogsOnFailure(test);

interface Result {
  code: number;
  out: string;
  err: string;
}

let cluster: LocalCluster;
let endpoints: string;

test.before(async () => {
  cluster = await LocalCluster.start({ nodeConfig: { hsmProbeIntervalMs: 1000 } });
  const lead = await cluster.leaderId();
  endpoints = cluster.node(lead === 1 ? 2 : 1).admin; // a follower: the CLI must find the leader itself
});

test.after.always(async () => {
  await cluster?.close();
});

async function admin(...argv: string[]): Promise<Result> {
  let out = "";
  let err = "";
  const io: CliIo = {
    readSecrets: () => Promise.reject(new Error("no secrets in bkv admin")),
    stdout: (s) => (out += s),
    stderr: (s) => (err += s),
    stderrIsTTY: false,
    env: { BKV_ADMIN_CERTS: cluster.certsDir },
  };
  const code = await run(["admin", ...argv, "--endpoints", endpoints, "--timeout", "30"], io);
  return { code, out, err };
}

/**
 * Polls of this file run the CLI, which opens a connection to every admin
 * port each time: 500 ms apart, so that a poll stays under the admin port's
 * connect rate from one address (8 a second, proto/connection-gate.ts) with
 * the cluster's own clients and a joining node beside it. At 100 ms apart a
 * wait beside a dead node tripped the rate and the per-address cap (16), and
 * then found no leader.
 */
const CLI_POLL_MS = 500;

/**
 * `f`'s outcome, tried again while it fails UNAVAILABLE: every test of this
 * file connects to the admin ports from 127.0.0.1, whose connect rate (8 new
 * connections a second, proto/connection-gate.ts) a burst of them exceeds.
 */
async function settled<T>(f: () => Promise<T>): Promise<T> {
  const outcome = await waitFor(async () => {
    try {
      return { value: await f() };
    } catch (err) {
      return (err as grpc.ServiceError).code === grpc.status.UNAVAILABLE ? undefined : { err };
    }
  }, "an answer other than UNAVAILABLE", 15_000, CLI_POLL_MS);
  if ("err" in outcome) throw outcome.err;
  return outcome.value;
}

/** The command's JSON; run again while it fails because a connection was refused at the connect rate (settled, above). */
async function json<T>(...argv: string[]): Promise<T> {
  const r = await waitFor(async () => {
    const x = await admin(...argv, "--json");
    return x.code === 5 && x.err.includes("socket disconnected before secure TLS connection was established") ? undefined : x;
  }, `bkv admin ${argv.join(" ")} past the connect rate`, 15_000, CLI_POLL_MS);
  if (r.code !== 0) throw new Error(`bkv admin ${argv.join(" ")}: exit ${r.code}: ${r.err}`);
  return JSON.parse(r.out) as T;
}

interface StatusJson {
  leader: number;
  boundSharesOnly: boolean | null;
  members: Array<{ id: number; kind: string; role: string; lag: number; reachable: boolean; version: string; hsm: string; health: string; applied: number; storeBytes: number }>;
}

/** The leader's id; retried for a while: a status can fail for a moment (an election, or the admin port's connect rate after a burst of CLI runs from 127.0.0.1). */
async function leader(): Promise<number> {
  return waitFor(() => json<StatusJson>("status").then((s) => s.leader, () => undefined), "a leader in bkv admin status", 15_000, CLI_POLL_MS);
}

test.serial("status: every member with its role, indexes, lag, version, store, HSM and health, as a table and as JSON", async (t) => {
  const version = (JSON.parse(readFileSync("package.json", "utf8")) as { version: string }).version;
  const s = await json<StatusJson>("status");
  t.deepEqual(s.members.map((m) => m.id).sort(), [1, 2, 3]);
  t.is(s.members.filter((m) => m.role === "leader").length, 1);
  t.is(s.members.find((m) => m.role === "leader")?.id, s.leader);
  for (const m of s.members) {
    t.is(m.kind, "voter");
    t.true(m.reachable);
    t.is(m.version, version);
    t.is(m.hsm, "ok");
    t.is(m.health, "serving");
    t.true(m.applied > 0 && m.storeBytes > 0);
  }
  const table = await admin("status");
  t.is(table.code, 0, table.err);
  t.regex(table.out, /^ID\s+KIND\s+ROLE\s+TERM\s+COMMIT\s+APPLIED\s+SNAPSHOT\s+LAG\s+REACHABLE\s+VERSION\s+RECORDS\s+STORE\s+HSM\s+HEALTH\s+ADMIN\n/);
  t.is(table.out.trim().split("\n").length, 5);
  t.true(s.boundSharesOnly, "a new cluster registers bound shares only from its bootstrap");
  t.regex(table.out, /\nregistrations: bound shares only\n$/);
});

test.serial("require-bound-shares: on a new cluster it reports already required; every node applies and audits the entry with its request id", async (t) => {
  const rid = "0f1e2d3c4b5a69788796a5b4c3d2e1f0";
  const r = await json<{ boundSharesOnly: boolean; alreadyRequired: boolean }>("require-bound-shares", "--request-id", rid);
  t.deepEqual(r, { boundSharesOnly: true, alreadyRequired: true });
  for (const n of cluster.nodes) {
    const line = await waitFor(() => cluster.auditOf(n.id).trim().split("\n").map(parseAuditLine).find((l) => l.requestId === rid), `node ${n.id}'s audit line`);
    t.like(line, { kind: "bind-shares", outcome: "ok" }, `node ${n.id}`);
  }
  const text = await admin("require-bound-shares");
  t.is(text.code, 0, text.err);
  t.is(text.out, "registrations take bound shares only (was already so)\n");
  const shared = await admin("shared-shares"); // a cluster of bound shares holds no copy
  t.is(shared.code, 0, shared.err);
  t.regex(shared.out, /^no share is held by more than one user \(node \d+ at applied index \d+, \d+ records\)\n$/);
});

test.serial("members: the leader's view, the leader starred", async (t) => {
  const r = await admin("members");
  t.is(r.code, 0, r.err);
  const lead = await leader();
  t.regex(r.out, new RegExp(`^${lead}\\s+voter\\s+\\*\\s+127\\.0\\.0\\.1:`, "m"));
  const m = await json<{ members: Array<{ id: number; admin: string }> }>("members");
  t.deepEqual(m.members.map((x) => x.admin).sort(), cluster.nodes.map((n) => n.admin).sort());
});

test.serial("refusals: unknown nodes, and a learner promoted before it caught up", async (t) => {
  let r = await admin("promote", "9");
  t.is(r.code, 1);
  t.regex(r.err, /FAILED_PRECONDITION: node 9 is not a learner/);
  r = await admin("remove", "9");
  t.is(r.code, 1);
  t.regex(r.err, /FAILED_PRECONDITION: node 9 is not a member/);
  r = await admin("add-learner", "abc", "127.0.0.1:1");
  t.is(r.code, 64);
  t.regex(r.err, /node id must be a positive integer/);
  // Node 5 is added, but nothing runs at its address: it never catches up.
  t.is((await admin("add-learner", "5", "127.0.0.1:9")).code, 0);
  r = await admin("promote", "5");
  t.is(r.code, 1);
  t.regex(r.err, /node 5 has not caught up: it (is not reachable from the leader|has not acknowledged any entry yet); retry once it has/);
  const removed = await admin("remove", "5");
  t.is(removed.code, 0, removed.err);
  t.regex(removed.out, /node 5 removed \(index \d+\)/);
});

test.serial("request_id: a retried add-learner answers its first outcome; another id finds it in effect; another address is refused; the same id for another request is refused", async (t) => {
  const rid = "00112233445566778899aabbccddeeff";
  const first = await json<{ index: number }>("add-learner", "6", "127.0.0.1:9", "--request-id", rid);
  const retry = await json<{ index: number }>("add-learner", "6", "127.0.0.1:9", "--request-id", rid);
  t.is(retry.index, first.index, "the retry answers the first outcome, not 'already a member'");
  const again = await admin("add-learner", "6", "127.0.0.1:9");
  t.is(again.code, 0, "another id (a retry that reached a new leader): the change is in effect");
  t.regex(again.out, /^node 6 is already a member at 127\.0\.0\.1:9: nothing to do$/m);
  t.like(await json<{ index: number; alreadyInEffect: boolean }>("add-learner", "6", "127.0.0.1:9"), { index: 0, alreadyInEffect: true });
  const moved = await admin("add-learner", "6", "127.0.0.1:10");
  t.is(moved.code, 1);
  t.regex(moved.err, /FAILED_PRECONDITION: node 6 is already a member, at peer address 127\.0\.0\.1:9: remove it first to move it/);
  const reused = await admin("add-learner", "7", "127.0.0.1:9", "--request-id", rid);
  t.is(reused.code, 1);
  t.regex(reused.err, /INVALID_ARGUMENT: request_id 00112233445566778899aabbccddeeff was used for another request/);
  t.is((await admin("remove", "6")).code, 0);
  const metrics = await cluster.metricsOf(await leader());
  t.regex(metrics, /bkv_admin_requests_total\{method="AddLearner",code="OK",node="\d"\} [2-9]/);
  t.regex(metrics, /bkv_admin_requests_total\{method="PromoteLearner",code="FAILED_PRECONDITION",node="\d"\} [1-9]/);
  t.regex(metrics, /bkv_admin_request_seconds_count\{node="\d",method="RemoveNode"\} [1-9]/);
});

test.serial("snapshot save: the leader's snapshot streamed to a file, with its size and SHA-256", async (t) => {
  const file = join(cluster.dir, "snap.bin");
  const r = await admin("snapshot", "save", file);
  t.is(r.code, 0, r.err);
  const bytes = readFileSync(file);
  t.is(bytes.subarray(0, 4).toString("latin1"), "bkvS", "the server snapshot payload");
  const saved = decodeServerSnapshot(bytes);
  t.true((saved.vault?.length ?? 0) > 0, "the vault state inline, not a reference to the leader's store");
  const restored = VaultStateMachine.restore({ clusterId: cluster.clusterId }, saved.vault ?? new Uint8Array(0));
  t.is(restored.nodes().length, 3, "a self-contained state: every node's announcement");
  const sha = createHash("sha256").update(bytes).digest("hex");
  t.regex(r.out, new RegExp(`saved the snapshot of the leader at 127\\.0\\.0\\.1:\\d+ \\(taken at index \\d+, term \\d+\\) to .*: ${bytes.length} bytes, sha256 ${sha}`));
  const again = await admin("snapshot", "save", file);
  t.is(again.code, 8, "an existing file is not overwritten");
});

test.serial("digests: every member's digest at one applied index, all equal", async (t) => {
  const d = await json<{ index: number; agree: boolean; members: Array<{ id: number; index: number; digest: string }> }>("digests");
  t.true(d.agree);
  t.is(d.members.length, 3);
  t.true(d.members.every((m) => m.index === d.index && /^[0-9a-f]{64}$/.test(m.digest)));
  const r = await admin("digests");
  t.is(r.code, 0, r.err);
  t.regex(r.out, /all 3 members agree at index \d+/);
});

test.serial("transfer-leader: another voter leads", async (t) => {
  const before = await leader();
  const to = [1, 2, 3].find((id) => id !== before) as number;
  const r = await admin("transfer-leader", String(to));
  t.is(r.code, 0, r.err);
  t.regex(r.out, new RegExp(`node ${to} leads \\(term \\d+\\)`));
  t.is(await waitFor(async () => ((await leader()) === to ? to : undefined), "the new leader"), to);
});

test.serial("a follower's not-leader answer names the leader's ADMIN address", async (t) => {
  const lead = await leader();
  const follower = [1, 2, 3].find((id) => id !== lead) as number;
  const err = await t.throwsAsync(cluster.admin(follower).promoteLearner({ requestId: new Uint8Array(16).fill(7), nodeId: 9n }));
  t.is((err as grpc.ServiceError).code, grpc.status.UNAVAILABLE);
  const detail = errorDetailOf(err as grpc.ServiceError);
  t.is(detail?.reason, ErrorReason.NOT_LEADER);
  t.is(Number(detail?.leaderId), lead);
  t.is(detail?.leaderAddress, cluster.node(lead).admin, "the admin address, not the client address");
  t.regex((err as grpc.ServiceError).details, new RegExp(`send admin calls to node ${lead} at ${cluster.node(lead).admin.replace(/\./g, "\\.")}`));
});

test.serial("the admin port admits operator and node certificates only", async (t) => {
  const certs = cluster.certsDir;
  // A certificate from the cluster CA, but for neither an operator nor a node.
  execFileSync("openssl", ["req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", join(certs, "mallory.key"), "-out", join(certs, "mallory.csr"), "-subj", "/O=bkv/CN=mallory"], { stdio: "ignore" });
  writeFileSync(join(certs, "mallory.ext"), "extendedKeyUsage=clientAuth\n");
  execFileSync("openssl", ["x509", "-req", "-in", join(certs, "mallory.csr"), "-CA", join(certs, "ca.crt"), "-CAkey", join(certs, "ca.key"), "-CAcreateserial", "-out", join(certs, "mallory.crt"), "-days", "1", "-extfile", join(certs, "mallory.ext")], { stdio: "ignore" });
  const call = (name: string) => settled(() => {
    const creds = grpc.credentials.createSsl(readFileSync(join(certs, "ca.crt")), readFileSync(join(certs, `${name}.key`)), readFileSync(join(certs, `${name}.crt`)));
    const { client, channel } = unaryClient(AdminService, cluster.node(1).admin, creds);
    return client.getClusterStatus({}, { deadline: new Date(Date.now() + 5000) }).finally(() => channel.close());
  });
  t.is(Number((await call("operator")).nodeId), 1);
  t.is(Number((await call("node-2")).nodeId), 1);
  const err = await t.throwsAsync(call("mallory"));
  t.is((err as grpc.ServiceError).code, grpc.status.PERMISSION_DENIED);
  t.regex((err as grpc.ServiceError).details, /admits operator and node certificates only .* not CN "mallory"/);
});

test.serial("a file the command cannot read exits 8", async (t) => {
  const r = await admin("issuer-keys", "rotate", "--file", join(cluster.dir, "no-such-file"));
  t.is(r.code, 8, r.err);
  t.regex(r.err, /cannot read .*no-such-file: ENOENT/);
});

// It retires the development issuer's key in the replicated state: later tests make no client calls.
test.serial("issuer-keys rotate: a set signed by a stranger is refused; one signed by the current key replaces the replicated keys; tokens of the retired key are then refused before anything is proposed", async (t) => {
  const next = await generateKeyPair("EdDSA", { crv: "Ed25519", extractable: true });
  const keys = [{ ...(await exportJWK(next.publicKey)), kid: "rotated-1" }];
  const iat = Math.floor(Date.now() / 1000);
  const sign = (key: CryptoKey | KeyObject) => new SignJWT({ keys }).setProtectedHeader({ alg: "EdDSA", kid: cluster.issuer.kid })
    .setIssuer(cluster.issuer.issuer).setAudience(cluster.clusterId).setIssuedAt(iat).sign(key);
  const file = join(cluster.dir, "signed-jwks");
  writeFileSync(file, await sign(next.privateKey)); // a stranger's signature under the current kid
  const forged = await admin("issuer-keys", "rotate", "--file", file);
  t.not(forged.code, 0);
  t.regex(forged.err, /not signed by a current key of issuer "bkv-dev-issuer"/);
  const before = await cluster.vault(1).beginRecovery(beginRequest("nobody")).catch((e: grpc.ServiceError) => e);
  t.is((before as grpc.ServiceError).code, grpc.status.NOT_FOUND, "the dev key's token is good before the rotation");
  writeFileSync(file, await sign(cluster.issuer.key));
  const rotated = await admin("issuer-keys", "rotate", "--file", file);
  t.is(rotated.code, 0, rotated.err);
  t.regex(rotated.out, /issuer keys rotated/);
  const replayed = await admin("issuer-keys", "rotate", "--file", file);
  t.not(replayed.code, 0, "the same set again: signed by a key that is no longer current");
  for (const n of cluster.nodes) {
    const after = await waitFor(() => cluster.vault(n.id).beginRecovery(beginRequest("nobody")).then(() => undefined, (e: grpc.ServiceError) => (e.code === grpc.status.UNAUTHENTICATED ? e : undefined)), `node ${n.id} to apply the rotation`);
    t.regex(after.details, /issuer "bkv-dev-issuer" has no key/);
  }
});

test.serial("a dead voter: removing another voter is refused (quorum), the dead one is removed, a fourth node joins by itself, and --force overrides", async (t) => {
  const lead = await leader();
  const [dead, other] = [1, 2, 3].filter((id) => id !== lead) as [number, number];
  if (endpoints === cluster.node(dead).admin) endpoints = cluster.node(lead).admin;
  await cluster.kill(dead);
  await waitFor(async () => (await json<StatusJson>("status")).members.find((m) => m.id === dead)?.reachable === false || undefined, `node ${dead} unreachable`, 30_000, CLI_POLL_MS);
  const refused = await admin("remove", String(other));
  t.is(refused.code, 1);
  t.regex(refused.err, new RegExp(`removing node ${other} would leave voters \\[.*\\] of which 1 \\(\\[${lead}\\]\\) are reachable, fewer than their quorum of 2`));
  t.is((await admin("remove", String(dead))).code, 0, "the dead node goes");
  const n4 = await cluster.addNode(4, { autoJoin: true });
  endpoints = `${endpoints},${n4.admin}`;
  await waitFor(async () => (await json<StatusJson>("status")).members.find((m) => m.id === 4 && m.kind === "voter") ?? undefined, "node 4 a voter by itself", 90_000, CLI_POLL_MS);
  const s = await json<StatusJson>("status");
  t.deepEqual(s.members.filter((m) => m.kind === "voter").map((m) => m.id).sort(), [lead, other, 4].sort());
  t.is(s.members.find((m) => m.id === 4)?.health, "serving");
  t.regex(cluster.logOf(4), /join: added as a learner[\s\S]*join: promoted to voter/);
  // Now node 4 dies too: removing `other` is refused, and done with --force.
  await cluster.kill(4);
  await waitFor(async () => (await json<StatusJson>("status")).members.find((m) => m.id === 4)?.reachable === false || undefined, "node 4 unreachable", 30_000, CLI_POLL_MS);
  t.is((await admin("remove", String(other))).code, 1);
  const forced = await admin("remove", String(other), "--force");
  t.is(forced.code, 0, forced.err);
  // Voters now: the leader and dead node 4; the leader steps down (CheckQuorum). status still shows each node's view.
  const down = await waitFor(async () => {
    const r = await admin("status");
    return r.code === 5 ? r : undefined;
  }, "status without a leader", 30_000, CLI_POLL_MS);
  t.regex(down.err, /no leader known: each row is that node's own view/);
  t.regex(down.out, new RegExp(`^${lead}\\s+voter\\s+(follower|pre-candidate|candidate)\\s`, "m"));
  t.regex(down.out, /^4\s+voter\s+-\s/m);
});

test.serial("usage: unknown subcommands, missing arguments; audit routes to the audit commands (no endpoint: test/client/cli.test.ts)", async (t) => {
  let r = await admin("frobnicate");
  t.is(r.code, 64);
  t.regex(r.err, /unknown command "admin frobnicate"/);
  r = await admin("snapshot", "save");
  t.is(r.code, 64);
  t.regex(r.err, /takes FILE/);
  r = await admin("audit", "log");
  t.is(r.code, 64);
  t.regex(r.err, /unknown audit command "log/);
  const help = await admin("--help");
  t.is(help.code, 0);
  for (const c of ["status", "members", "add-learner", "promote", "remove", "transfer-leader", "snapshot save", "issuer-keys rotate", "require-bound-shares", "shared-shares", "digests", "audit"]) t.true(help.out.includes(`  ${c}`), c);
});

function beginRequest(user: string) {
  return { requestId: new Uint8Array(randomBytes(16)), userId: user, blindedElement: encodePoint(G.multiply(randomScalar())) };
}
