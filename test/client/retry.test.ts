// Unit tests of the retry loop, the grace gatherer and the progress bar.
import test from "ava";
import { status } from "@grpc/grpc-js";
import { REDIRECT, isTransient, jitteredDelay, withRetries } from "../../client/sdk/retry.js";
import { gatherWithGrace } from "../../client/sdk/gather.js";
import { ClientError, RecordLockedError, RpcError, TransientError, UnavailableError } from "../../client/sdk/errors.js";
import { type CliIo, progressBar } from "../../client/cli/io.js";

const POLICY = { deadlineMs: 10_000, callTimeoutMs: 100, baseDelayMs: 10, maxDelayMs: 80 };

function rpc(code: number, reason = "UNSPECIFIED", leaderAddress?: string): RpcError {
  return new RpcError({ method: "M", address: "a:1", grpcCode: code, serverMessage: "m", reason, attemptsRemaining: undefined, leaderAddress });
}

test("transient: UNAVAILABLE, DEADLINE_EXCEEDED, retryable reasons and socket errors; not typed answers", (t) => {
  t.true(isTransient(rpc(status.UNAVAILABLE)));
  t.true(isTransient(rpc(status.DEADLINE_EXCEEDED)));
  t.true(isTransient(rpc(status.FAILED_PRECONDITION, "ATTEMPT_NOT_APPLIED")));
  t.true(isTransient(new Error("ECONNRESET")));
  t.false(isTransient(rpc(status.FAILED_PRECONDITION, "RECORD_LOCKED")));
  t.false(isTransient(rpc(status.INVALID_ARGUMENT)));
  t.false(isTransient(new ClientError("CLOSED", "closed")));
  t.true(isTransient(new TransientError("node 2 has not applied it yet")), "the client's own transient error");
  t.false(isTransient(new RecordLockedError("GetRecordInfo", "a:1")), "a locked record seen in a read");
  t.false(isTransient(new RecordLockedError("Evaluate", "a:1", rpc(status.FAILED_PRECONDITION, "RECORD_LOCKED"))), "a node's refusal");
});

test("jittered delays stay within the doubling ceiling and the maximum", (t) => {
  for (let n = 0; n < 12; n++) {
    for (let i = 0; i < 50; i++) {
      const d = jitteredDelay(POLICY, n);
      t.true(d >= 1 && d <= Math.min(POLICY.maxDelayMs, POLICY.baseDelayMs * 2 ** n), `n=${n} d=${d}`);
    }
  }
});

test("a non-transient error passes through at once, unchanged", async (t) => {
  const err = rpc(status.NOT_FOUND);
  let tries = 0;
  const got = await t.throwsAsync(withRetries("op", POLICY, async () => {
    tries++;
    throw err;
  }));
  t.is(got, err);
  t.is(tries, 1);
});

test("transient errors back off (sleeping) and then succeed", async (t) => {
  const sleeps: number[] = [];
  let tries = 0;
  const v = await withRetries("op", POLICY, async () => {
    if (++tries < 4) throw rpc(status.UNAVAILABLE);
    return "ok";
  }, { sleep: async (ms) => void sleeps.push(ms) });
  t.is(v, "ok");
  t.is(sleeps.length, 3);
});

test("redirects retry without sleeping, at most 3 in a row", async (t) => {
  const sleeps: number[] = [];
  let tries = 0;
  await withRetries("op", POLICY, async () => {
    if (++tries <= 5) throw rpc(status.UNAVAILABLE, "NOT_LEADER", "b:2");
    return "ok";
  }, { onTransient: () => REDIRECT, sleep: async (ms) => void sleeps.push(ms) });
  t.is(tries, 6);
  t.is(sleeps.length, 1, "the 4th consecutive redirect backs off once");
});

test("the deadline ends the loop with UnavailableError carrying the last error", async (t) => {
  let tries = 0;
  const last = rpc(status.UNAVAILABLE, "NO_LEADER");
  const err = await t.throwsAsync(withRetries("Register", { ...POLICY, deadlineMs: 50 }, async () => {
    tries++;
    throw last;
  })) as UnavailableError;
  t.true(err instanceof UnavailableError);
  t.is(err.lastError, last);
  t.is(err.attempts, tries);
  t.regex(err.message, /Register: cluster unavailable after \d+ tries/);
});

test("gatherWithGrace: all settle, or the grace after the first success", async (t) => {
  const all = await gatherWithGrace([Promise.resolve(1), Promise.reject(new Error("x")), Promise.resolve(2)], 1000);
  t.deepEqual(all.values.sort(), [1, 2]);
  t.is(all.errors.length, 1);
  const never = new Promise<number>(() => undefined);
  const early = await gatherWithGrace([Promise.resolve(1), never], 20);
  t.deepEqual(early.values, [1], "a hung node does not hold the answer back");
  t.deepEqual(await gatherWithGrace([], 10), { values: [], errors: [] });
});

function fakeIo(tty: boolean): CliIo & { err: string } {
  const io = { err: "", readSecrets: async () => [], stdout: () => undefined, stderrIsTTY: tty, env: {}, stderr: (s: string) => (io.err += s) };
  return io;
}

test("the progress bar draws on a TTY for large files only", (t) => {
  const big = 20 * 1024 * 1024;
  const io = fakeIo(true);
  const bar = progressBar(io, "decrypting");
  bar?.(big, big);
  t.regex(io.err, /^\rdecrypting \[#{30}\] 100% {2}20\.0\/20\.0 MiB\n$/);
  const small = fakeIo(true);
  progressBar(small, "x")?.(1024, 1024);
  t.is(small.err, "", "small files: no bar");
  t.is(progressBar(fakeIo(false), "x"), undefined, "not a TTY: no bar");
});
