// The client side of issue 13: how the SDK and the CLI tell an admission
// limit (RESOURCE_EXHAUSTED, RATE_LIMITED, retry-after) from the guess limit
// (RESOURCE_EXHAUSTED, RECORD_LOCKED, 0 attempts) and from a refused token;
// the retry policy honouring retry-after; token provider failures.
import test from "ava";
import { Metadata, status } from "@grpc/grpc-js";
import { errorWithDetail } from "../../proto/rpc.js";
import { ErrorReason } from "../../proto/gen/bkv/v1/status_pb.js";
import * as errors from "../../client/sdk/errors.js";
import { NotAuthorizedError, RateLimitedError, RecordLockedError, RpcError, TokenError, rpcErrorFrom } from "../../client/sdk/errors.js";
import { withRetries } from "../../client/sdk/retry.js";
import { tokenFor } from "../../client/sdk/auth.js";
import { EXIT, exitCodeFor, run } from "../../client/cli/main.js";
import { Admission } from "../../node/server/admission.js";
import { peerHost } from "../../node/server/auth.js";
import { DEV_TOKEN_TTL_SEC, devTokenProvider, loadDevIssuer, createDevIssuer } from "../../client/cli/dev-issuer.js";
import { tempDir } from "../temp.js";

function serverError(code: status, message: string, detail?: Parameters<typeof errorWithDetail>[2], trailers: Record<string, string> = {}) {
  const e = errorWithDetail(code, message, detail);
  for (const [k, v] of Object.entries(trailers)) e.metadata.set(k, v);
  return e as ReturnType<typeof errorWithDetail> & { metadata: Metadata };
}

const quota = () => serverError(status.RESOURCE_EXHAUSTED, "too many calls from this user: retry after 1234 ms", { reason: ErrorReason.RATE_LIMITED }, { "retry-after-ms": "1234" });
const guessLimit = () => serverError(status.RESOURCE_EXHAUSTED, "the guess limit was reached", { reason: ErrorReason.RECORD_LOCKED, attemptsRemaining: 0 });

test("RESOURCE_EXHAUSTED: a quota is RateLimitedError (exit 11), the guess limit RecordLockedError (exit 3)", (t) => {
  const q = rpcErrorFrom(quota() as never, "BeginRecovery", "n1");
  t.true(q instanceof RateLimitedError);
  t.is((q as RateLimitedError).retryAfterMs, 1234);
  t.is(exitCodeFor(q, errors), EXIT.RATE_LIMITED);
  const g = rpcErrorFrom(guessLimit() as never, "BeginRecovery", "n1");
  t.true(g instanceof RecordLockedError);
  t.is(exitCodeFor(g, errors), EXIT.LOCKED);
});

test("UNAUTHENTICATED and a reasonless PERMISSION_DENIED are NotAuthorizedError (exit 12); a bad signature stays an RpcError", (t) => {
  const u = rpcErrorFrom(serverError(status.UNAUTHENTICATED, "the token has expired") as never, "Register", "n1");
  t.true(u instanceof NotAuthorizedError);
  t.is(exitCodeFor(u, errors), EXIT.NOT_AUTHORIZED);
  const p = rpcErrorFrom(serverError(status.PERMISSION_DENIED, "the token's subject \"x\" is not the request's user \"y\"") as never, "Register", "n1");
  t.true(p instanceof NotAuthorizedError);
  const sig = rpcErrorFrom(serverError(status.PERMISSION_DENIED, "bad signature", { reason: ErrorReason.BAD_SIGNATURE }) as never, "Delete", "n1");
  t.false(sig instanceof NotAuthorizedError);
  t.true(sig instanceof RpcError);
});

test("the CLI's messages: a quota says retry after and not the guess limit; a refused token says how to pass one", async (t) => {
  const said = async (err: unknown) => {
    let out = "";
    const io = { readSecrets: async () => [], stdout: () => {}, stderr: (s: string) => { out += s; }, stderrIsTTY: false, env: {} };
    // `report` is reached through run(): a command that throws `err`.
    const { COMMANDS } = await import("../../client/cli/commands.js");
    const cmd = COMMANDS.find((c) => c.name === "key generate")!;
    const original = cmd.run;
    (cmd as { run: typeof original }).run = async () => { throw err; };
    try {
      return { code: await run(["key", "generate"], io), out };
    } finally {
      (cmd as { run: typeof original }).run = original;
    }
  };
  const q = await said(rpcErrorFrom(quota() as never, "BeginRecovery", "127.0.0.1:7101"));
  t.is(q.code, EXIT.RATE_LIMITED);
  t.regex(q.out, /rate limited by 127\.0\.0\.1:7101 .*not the guess limit.*retry after 2 s/);
  const n = await said(rpcErrorFrom(serverError(status.UNAUTHENTICATED, "no authorization metadata") as never, "Register", "127.0.0.1:7101"));
  t.is(n.code, EXIT.NOT_AUTHORIZED);
  t.regex(n.out, /--token-file FILE or BKV_TOKEN/);
  const l = await said(rpcErrorFrom(guessLimit() as never, "BeginRecovery", "127.0.0.1:7101"));
  t.is(l.code, 3);
  t.notRegex(l.out, /rate limited/);
});

test("withRetries waits a quota's retry-after when it fits the deadline, and throws the RateLimitedError when it does not", async (t) => {
  const policy = { deadlineMs: 5_000, callTimeoutMs: 1000, baseDelayMs: 1, maxDelayMs: 2 };
  const slept: number[] = [];
  const sleep = async (ms: number) => { slept.push(ms); };
  let tries = 0;
  const v = await withRetries("op", policy, async () => {
    if (tries++ === 0) throw rpcErrorFrom(quota() as never, "Evaluate", "n1");
    return "ok";
  }, { sleep });
  t.is(v, "ok");
  t.true((slept[0] ?? 0) >= 1234);
  const tooLong = withRetries("op", { ...policy, deadlineMs: 500 }, async () => { throw rpcErrorFrom(quota() as never, "Evaluate", "n1"); }, { sleep });
  await t.throwsAsync(tooLong, { instanceOf: RateLimitedError });
});

test("a token provider that throws or returns nothing is a TokenError, never a call", async (t) => {
  await t.throwsAsync(tokenFor(() => { throw new Error("account service down"); }, "alice"), { instanceOf: TokenError, message: /account service down/ });
  await t.throwsAsync(tokenFor(async () => "", "alice"), { instanceOf: TokenError });
  await t.throwsAsync(tokenFor("two words", null), { instanceOf: TokenError });
  t.is(await tokenFor(async (u) => `tok-${u ?? "none"}`, null), "tok-none");
});

test("admission: per-address and per-user buckets are separate; over the limit is AdmissionRefused with a retry-after", async (t) => {
  const a = new Admission({ userPerSec: 2, userBurst: 1, addressPerSec: 2, addressBurst: 1 });
  for (let i = 0; i < 3; i++) await a.address("10.0.0.1");
  const refused = await t.throwsAsync(a.address("10.0.0.1"));
  t.is((refused as { scope?: string }).scope, "address");
  t.true((refused as unknown as { retryAfterMs: number }).retryAfterMs > 0);
  await t.notThrowsAsync(a.address("10.0.0.2"));
  await t.notThrowsAsync(a.user("10.0.0.1"), "a user bucket is not an address bucket");
  t.is(peerHost("ipv4:127.0.0.1:5501"), "127.0.0.1");
  t.is(peerHost("[::1]:5501"), "::1");
  t.is(peerHost("10.1.2.3:80"), "10.1.2.3");
});

test("the dev token provider reuses a user's token until less than half its lifetime is left, then mints a fresh one", async (t) => {
  const issuer = await loadDevIssuer((await createDevIssuer(tempDir(t, "bkv-dev-issuer-"), "c1")).keyFile);
  let now = Date.UTC(2026, 11, 4, 12);
  const provider = devTokenProvider(issuer, undefined, () => now);
  const claims = (tok: string) => JSON.parse(Buffer.from(tok.split(".")[1] ?? "", "base64url").toString()) as { sub: string; iat: number; exp: number };
  const first = await provider("alice");
  t.like(claims(first), { sub: "alice", iat: now / 1000, exp: now / 1000 + DEV_TOKEN_TTL_SEC });
  now += (DEV_TOKEN_TTL_SEC / 2) * 1000 - 1000;
  t.is(await provider("alice"), first, "reused within the first half of its lifetime");
  t.not(await provider("bob"), first, "one per user");
  t.is(claims(await provider(null)).sub, "bkv-cli");
  now += 1000;
  const second = await provider("alice");
  t.not(second, first, "fresh once half its lifetime is gone");
  t.is(claims(second).iat, now / 1000);
});
