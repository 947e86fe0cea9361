// Client authentication, admission limits and the audit trail on a real
// 3-node cluster (issue 13): real tokens (EdDSA, the cluster's development
// issuer, and forged ones), refusals with the right status BEFORE anything
// is proposed (every node's applied index unchanged, while the same call
// with a good token moves it), per-user rate limits, the ports following the
// replicated issuer keys (not the JWKS files), and the nodes' audit logs
// verified and equal.
import test, { type ExecutionContext } from "ava";
import { randomBytes } from "node:crypto";
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { status, type ServiceError } from "@grpc/grpc-js";
import { LocalCluster, E2E_CLIENT_OPTIONS, waitFor, reportLogsOnFailure } from "../../testkit/cluster.js";
import { RateLimitedError, RecordLockedError, VaultClient, WrongPasswordError } from "../../client/sdk/index.js";
import { type DevIssuer, createDevIssuer, loadDevIssuer, mintToken } from "../../client/cli/dev-issuer.js";
import { G, encodePoint } from "../../proto/crypto/index.js";
import { errorDetailOf } from "../../proto/rpc.js";
import { ErrorReason } from "../../proto/gen/bkv/v1/status_pb.js";
import { parseAuditLine, verifyAuditChain } from "../../proto/audit.js";
import { EXIT, run } from "../../client/cli/main.js";
import { type CliIo, splitSecretLines } from "../../client/cli/io.js";
import { descriptorToJson } from "../../client/sdk/index.js";
import { fileTempDir } from "../temp.js";

reportLogsOnFailure(test);

const LIMITS = { userPerSec: 5, userBurst: 5, addressPerSec: 100_000, addressBurst: 100_000 };
let cluster: LocalCluster;
let client: VaultClient;
/** A second issuer nobody trusts (its own key pair). */
let stranger: DevIssuer;
let strangerJwks: string;
const minted: string[] = [];

test.before(async () => {
  cluster = await LocalCluster.start({ clusterId: "auth-e2e", limits: LIMITS });
  client = new VaultClient(await cluster.descriptor(), { ...E2E_CLIENT_OPTIONS, token: cluster.token });
  const files = await createDevIssuer(fileTempDir("bkv-stranger-"), "auth-e2e");
  stranger = await loadDevIssuer(files.keyFile);
  strangerJwks = files.jwksFile;
  await client.register("alice", "alice pw", { guessLimit: 10 });
});

test.after.always(async () => {
  client?.close();
  await cluster?.close();
});

async function token(issuer: DevIssuer, o: Parameters<typeof mintToken>[1]): Promise<string> {
  const t = await mintToken(issuer, o);
  minted.push(t);
  return t;
}

async function appliedIndexes(): Promise<number[]> {
  return Promise.all(cluster.nodes.map(async (n) => Number((await cluster.status(n.id)).appliedIndex)));
}

function beginRequest(user: string) {
  return { requestId: randomBytes(16), userId: user, blindedElement: encodePoint(G) };
}

/** `call` fails with `code` and a message matching `why`, and no node's applied index moves. */
async function refusedBeforeProposal(t: ExecutionContext, call: () => Promise<unknown>, code: status, why: RegExp): Promise<void> {
  const before = await appliedIndexes();
  const err = await t.throwsAsync(call) as unknown as ServiceError;
  t.is(err.code, code, err.details);
  t.regex(err.details, why);
  await new Promise((r) => setTimeout(r, 300)); // a proposal, had one been made, would have applied by now
  t.deepEqual(await appliedIndexes(), before, "nothing was proposed");
}

test.serial("refused tokens: none, expired, another user's, unknown issuer, unknown key, forged, wrong audience, too long-lived; nothing proposed", async (t) => {
  const now = Math.floor(Date.now() / 1000);
  const forged: DevIssuer = { ...stranger, issuer: cluster.issuer.issuer, kid: cluster.issuer.kid };
  const cases: Array<[string, string | null, status, RegExp]> = [
    ["no token", null, status.UNAUTHENTICATED, /no authorization metadata/],
    ["expired", await token(cluster.issuer, { subject: "alice", now: now - 3000, ttlSec: 300 }), status.UNAUTHENTICATED, /expired/],
    ["another user's", await token(cluster.issuer, { subject: "mallory" }), status.PERMISSION_DENIED, /subject "mallory" is not the request's user "alice"/],
    ["unknown issuer", await token({ ...stranger, issuer: "https://evil.example" }, { subject: "alice" }), status.UNAUTHENTICATED, /unknown token issuer "https:\/\/evil\.example"/],
    ["unknown key", await token({ ...stranger, issuer: cluster.issuer.issuer }, { subject: "alice" }), status.UNAUTHENTICATED, /has no key/],
    ["forged signature", await token(forged, { subject: "alice" }), status.UNAUTHENTICATED, /signature does not verify/],
    ["wrong audience", await token(cluster.issuer, { subject: "alice", audience: "another-cluster" }), status.UNAUTHENTICATED, /audience is not this cluster/],
    ["too long-lived", await token(cluster.issuer, { subject: "alice", ttlSec: 86_400 }), status.UNAUTHENTICATED, /at most 3600 s/],
    ["not a JWT", "not-a-jwt", status.UNAUTHENTICATED, /not a JWT/],
  ];
  for (const [name, tok, code, why] of cases) {
    for (const id of [1, 2]) {
      t.log(`${name} → node ${id}`);
      await refusedBeforeProposal(t, () => cluster.vault(id, tok).beginRecovery(beginRequest("alice"), { deadline: new Date(Date.now() + 5000) }), code, why);
    }
  }
  // The control: the same call with a good token proposes (the indexes move), so the refusals above were the token's.
  const before = await appliedIndexes();
  const good = await token(cluster.issuer, { subject: "alice" });
  await cluster.vault(1, good).beginRecovery(beginRequest("alice"));
  await waitFor(async () => (await appliedIndexes()).every((i, k) => i > before[k]!) || undefined, "the good begin to apply everywhere");
});

test.serial("reads and evaluations need the user's token too; the descriptor takes any valid token of the cluster", async (t) => {
  const mallory = await token(cluster.issuer, { subject: "mallory" });
  const e1 = await t.throwsAsync(cluster.vault(1, mallory).getRecordInfo({ userId: "alice" })) as unknown as ServiceError;
  t.is(e1.code, status.PERMISSION_DENIED);
  const e2 = await t.throwsAsync(cluster.vault(2, mallory).evaluate({ userId: "alice", attemptId: 1n })) as unknown as ServiceError;
  t.is(e2.code, status.PERMISSION_DENIED);
  const d = await cluster.vault(1, mallory).getClusterDescriptor({});
  t.is(d.descriptor?.nodes.length, 3);
  const e3 = await t.throwsAsync(cluster.vault(1, null).getClusterDescriptor({})) as unknown as ServiceError;
  t.is(e3.code, status.UNAUTHENTICATED);
  const e4 = await t.throwsAsync(cluster.vault(1, await token(cluster.issuer, { subject: "x", audience: "another-cluster" })).getClusterDescriptor({})) as unknown as ServiceError;
  t.is(e4.code, status.UNAUTHENTICATED);
});

test.serial("the ports verify against the replicated issuer keys, not the JWKS file: a key added to the file only is refused, nothing proposed", async (t) => {
  const added = await token({ ...stranger, issuer: cluster.issuer.issuer }, { subject: "alice" });
  const keys = (file: string) => (JSON.parse(readFileSync(file, "utf8")) as { keys: object[] }).keys;
  writeFileSync(cluster.jwksFile, JSON.stringify({ keys: [...keys(cluster.jwksFile), ...keys(strangerJwks)] }));
  await new Promise((r) => setTimeout(r, 1500)); // past the old gate's once-a-second re-read of the file
  for (const id of [1, 2]) {
    await refusedBeforeProposal(t, () => cluster.vault(id, added).beginRecovery(beginRequest("alice"), { deadline: new Date(Date.now() + 5000) }), status.UNAUTHENTICATED, /issuer "bkv-dev-issuer" has no key/);
  }
  const e = await t.throwsAsync(cluster.vault(3, added).getRecordInfo({ userId: "alice" })) as unknown as ServiceError;
  t.is(e.code, status.UNAUTHENTICATED, "reads too");
});

test.serial("a node restarts without the JWKS file, which it read only at bootstrap, and verifies tokens against the replicated keys", async (t) => {
  const saved = readFileSync(cluster.jwksFile);
  rmSync(cluster.jwksFile);
  try {
    await cluster.stop(2);
    cluster.restart(2);
    const alice = await token(cluster.issuer, { subject: "alice" });
    const info = await waitFor(() => cluster.vault(2, alice).getRecordInfo({ userId: "alice" }, { deadline: new Date(Date.now() + 2000) }).catch(() => undefined), "node 2 serving alice's record", 30_000);
    t.true(info.version > 0);
    t.true(cluster.node(2).proc !== null && cluster.node(2).proc!.exitCode === null, "node 2 runs");
    t.false(cluster.logOf(2).includes("JWKS files cannot be read"));
  } finally {
    writeFileSync(cluster.jwksFile, saved);
  }
});

test.serial("over the per-user limit: RESOURCE_EXHAUSTED, reason RATE_LIMITED, a retry-after in the message and trailer; nothing proposed", async (t) => {
  await client.register("hammer", "pw", { guessLimit: 10 });
  const good = await token(cluster.issuer, { subject: "hammer" });
  const v = cluster.vault(1, good);
  let refusedBegins = 0;
  for (let round = 0; round < 5 && refusedBegins === 0; round++) {
    const reads = await Promise.allSettled(Array.from({ length: 20 }, () => v.getRecordInfo({ userId: "hammer" })));
    const limited = reads.filter((r) => r.status === "rejected").map((r) => (r as PromiseRejectedResult).reason as ServiceError);
    t.true(limited.length > 0, "20 reads at once are over 5/s + 5");
    for (const err of limited) {
      t.is(err.code, status.RESOURCE_EXHAUSTED);
      t.is(errorDetailOf(err)?.reason, ErrorReason.RATE_LIMITED);
      t.regex(err.details, /too many calls from this user: retry after \d+ ms/);
      t.true(Number(err.metadata.get("retry-after-ms")[0]) > 0);
    }
    const before = await appliedIndexes();
    const begin = await v.beginRecovery(beginRequest("hammer")).then(() => undefined, (e: ServiceError) => e);
    if (begin === undefined) continue; // a new one-second window opened between the reads and the begin
    t.is(begin.code, status.RESOURCE_EXHAUSTED);
    await new Promise((r) => setTimeout(r, 300));
    t.deepEqual(await appliedIndexes(), before, "a refused begin proposes nothing");
    refusedBegins++;
  }
  t.true(refusedBegins > 0);
});

test.serial("the SDK tells a quota from the guess limit: RateLimitedError vs RecordLockedError", async (t) => {
  await client.register("quota", "pw", { guessLimit: 1 });
  const impatient = new VaultClient(client.descriptor, { ...E2E_CLIENT_OPTIONS, token: cluster.token, retry: { deadlineMs: 300, callTimeoutMs: 2000 } });
  try {
    // Every node's bucket for the user, kept empty while the impatient client tries (buckets refill at
    // 5/s: on a loaded machine a single burn left tokens by the time its calls came, and it recovered).
    const tok = await token(cluster.issuer, { subject: "quota" });
    const burn = () => Promise.allSettled(cluster.nodes.flatMap((n) => Array.from({ length: 15 }, () => cluster.vault(n.id, tok).getRecordInfo({ userId: "quota" }))));
    await burn();
    let burning = true;
    const keepBurning = (async () => { while (burning) await burn(); })();
    let err: Error | undefined;
    try {
      err = await t.throwsAsync(impatient.recover("quota", "pw"), undefined, "the impatient client is refused by every node's quota");
    } finally {
      burning = false;
      await keepBurning;
    }
    t.true(err instanceof RateLimitedError, String(err));
    t.true(err instanceof RateLimitedError && err.retryAfterMs > 0);
    t.false(err instanceof RecordLockedError);
  } finally {
    impatient.close();
  }
  // A patient client waits out the retry-after (the SDK honours it within its deadline), then the guess limit speaks.
  await t.throwsAsync(client.recover("quota", "wrong"), { instanceOf: WrongPasswordError });
  const locked = await t.throwsAsync(client.recover("quota", "pw"), undefined, "the one guess is spent: the record locks");
  t.true(locked instanceof RecordLockedError, String(locked));
});

test.serial("audit logs: every node's chain verifies, lines are equal across nodes, and survive a restart without repeats", async (t) => {
  await client.recover("alice", "alice pw");
  await t.throwsAsync(client.recover("alice", "wrong"), { instanceOf: WrongPasswordError });
  await client.register("bob", "bob pw");
  await client.delete("bob", "bob pw");
  await cluster.stop(3);
  await client.recover("alice", "alice pw");
  cluster.restart(3);
  const lead = await cluster.leaderId();
  const index = Number((await cluster.status(lead)).appliedIndex);
  for (const n of cluster.nodes) await cluster.waitApplied(n.id, index, 30_000);
  const texts = cluster.nodes.map((n) => cluster.auditOf(n.id));
  for (const [i, text] of texts.entries()) {
    const v = verifyAuditChain(text);
    t.true(v.ok, `node ${i + 1}: ${JSON.stringify(v)}`);
  }
  const lines = texts.map((x) => x.trim().split("\n").map(parseAuditLine));
  const upTo = (ls: typeof lines[number]) => ls.filter((l) => l.index <= index).map((l) => JSON.stringify(l));
  t.deepEqual(upTo(lines[1]!), upTo(lines[0]!));
  t.deepEqual(upTo(lines[2]!), upTo(lines[0]!), "the restarted node wrote each index once and agrees");
  const kinds = new Set(lines[0]!.map((l) => l.kind));
  for (const k of ["segment", "register", "attempt", "confirm", "delete", "lockout"]) t.true(kinds.has(k as never), k);
  const bob = lines[0]!.filter((l) => l.user === "bob").map((l) => l.kind);
  t.deepEqual([bob[0], bob.at(-1)], ["register", "delete"]);
  const all = [...texts, ...cluster.nodes.map((n) => cluster.logOf(n.id))].join("\n");
  for (const tok of minted) t.false(all.includes(tok.split(".")[2]!), "no token in an audit or node log");
  t.false(all.includes("alice pw"));
});

async function bkv(argv: string[], stdin: string, env: NodeJS.ProcessEnv = {}): Promise<{ code: number; out: string; err: string }> {
  const r = { code: 0, out: "", err: "" };
  const io: CliIo = { readSecrets: async (p) => splitSecretLines(stdin, p.length), stdout: (x) => (r.out += x), stderr: (x) => (r.err += x), stderrIsTTY: false, env };
  r.code = await run(argv, io);
  return r;
}

test.serial("the CLI needs no extra step next to a dev issuer key; --token-file / BKV_TOKEN take precedence and a wrong token exits 12", async (t) => {
  const file = join(cluster.dir, "cluster.json"); // next to dev-issuer.key.json, as `npm start` lays it out
  writeFileSync(file, JSON.stringify(descriptorToJson(await cluster.descriptor())));
  const reg = await bkv(["register", "--user", "carol", "--password-stdin", "--cluster", file], "carol pw\n");
  t.is(reg.code, EXIT.OK, reg.err);
  const rec = await bkv(["recover", "--user", "carol", "--password-stdin", "--cluster", file], "carol pw\n");
  t.is(rec.code, EXIT.OK, rec.err);
  t.is(rec.out, reg.out, "the same key");
  const mallory = await token(cluster.issuer, { subject: "mallory" });
  const denied = await bkv(["recover", "--user", "carol", "--password-stdin", "--cluster", file], "carol pw\n", { BKV_TOKEN: mallory });
  t.is(denied.code, EXIT.NOT_AUTHORIZED);
  t.regex(denied.err, /not authorized by .*PERMISSION_DENIED/);
  t.false(denied.err.includes(mallory));
  const tokenFile = join(cluster.dir, "carol.jwt");
  writeFileSync(tokenFile, `${await token(cluster.issuer, { subject: "carol" })}\n`);
  const viaFile = await bkv(["status", "--user", "carol", "--cluster", file, "--token-file", tokenFile], "", { BKV_TOKEN: mallory });
  t.is(viaFile.code, EXIT.OK, viaFile.err);
  t.regex(viaFile.out, /record v1, 10 attempts remaining/);
});

test.serial("a node with authentication off warns at start and in /readyz, and takes calls without a token", async (t) => {
  const open = await LocalCluster.start({ size: 1, clusterId: "auth-off", authDisabled: true });
  try {
    const body = await waitFor(async () => {
      const res = await fetch(`http://${open.node(1).metrics}/readyz`);
      return res.status === 200 ? res.text() : undefined;
    }, "readyz");
    t.regex(body, /^ready\nwarning: client authentication is OFF/);
    t.true(open.logOf(1).split("\n").some((l) => l.includes('"level":"warn"') && l.includes("client authentication is OFF")));
    const d = await open.vault(1, null).getClusterDescriptor({});
    t.is(d.descriptor?.clusterId, "auth-off");
  } finally {
    await open.close();
  }
  const res = await fetch(`http://${cluster.node(1).metrics}/readyz`);
  t.is(await res.text(), "ready\n", "a node with authentication on says nothing more");
});

test.serial("a node of a cluster that verifies tokens does not start with authentication off, and says why", async (t) => {
  const one = await LocalCluster.start({ size: 1, clusterId: "auth-on-then-off" });
  try {
    await one.stop(1);
    const n = one.node(1);
    const config = JSON.parse(readFileSync(n.configFile, "utf8")) as Record<string, unknown>;
    writeFileSync(n.configFile, JSON.stringify({ ...config, auth: { disabled: true } }));
    one.restart(1);
    await waitFor(async () => (one.exited(1) ? true : undefined), "node 1 exits", 30_000);
    const lines = one.logOf(1).split("\n");
    t.true(lines.some((l) => l.includes("start failed") && l.includes("auth is disabled, but this cluster verifies client tokens")), lines.slice(-5).join("\n"));
    t.false(lines.some((l) => l.includes("client authentication is OFF") && l.includes('"node started"')));
  } finally {
    await one.close();
  }
});
