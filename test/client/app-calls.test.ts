// The SDK as an app uses it, against the in-process fake cluster: what a
// call after close() throws, a token provider that never answers, and a
// token refused (or a provider failing) after BeginRecovery counted the
// attempt: the app is told it is the token, and an opened key is returned.
import test from "ava";
import * as grpc from "@grpc/grpc-js";
import { ErrorReason } from "../../proto/gen/bkv/v1/status_pb.js";
import { ClientError, NotAuthorizedError, TokenError, VaultClient, type ClientWarning, type TokenProvider } from "../../client/sdk/index.js";
import { EXIT, exitCodeFor } from "../../client/cli/main.js";
import * as sdkErrors from "../../client/sdk/errors.js";
import { FAST, FakeCluster, fail } from "./fake-cluster.js";

/** A 3-node fake cluster (t = 2) and a FAST client with `token`, recording warnings; both closed after. */
async function withTokens(token: TokenProvider, body: (c: FakeCluster, client: VaultClient, warnings: ClientWarning[]) => Promise<void>): Promise<void> {
  const warnings: ClientWarning[] = [];
  const cluster = await FakeCluster.start(3, 2);
  const client = new VaultClient(cluster.descriptor(), { ...FAST, token, onWarning: (w) => warnings.push(w) });
  try {
    await body(cluster, client, warnings);
  } finally {
    client.close();
    cluster.stop();
  }
}

/** A provider that answers "good" until `broken.on`, then `broken.answer()` (throws, or returns an expired token). */
function switchable(): { provider: TokenProvider; broken: { on: boolean; answer: () => string } } {
  const broken = { on: false, answer: () => "expired-token" };
  return { provider: () => (broken.on ? broken.answer() : "good-token"), broken };
}

const onAll = (cluster: FakeCluster, method: string, then: () => grpc.ServiceError | undefined) => {
  for (const n of cluster.nodes) cluster.fault(n.id, (m) => (m === method ? then() : undefined));
};
const unauthenticated = () => fail(grpc.status.UNAUTHENTICATED, "the token had expired at this node's time", ErrorReason.UNSPECIFIED);

test.serial("status() after close() is ClientError CLOSED, like every other call", async (t) => {
  await withTokens("good-token", async (_cluster, client) => {
    client.close();
    const err = await t.throwsAsync(client.status());
    t.true(err instanceof ClientError && err.code === "CLOSED", err?.message);
    const withUser = await t.throwsAsync(client.status("alice"));
    t.true(withUser instanceof ClientError && withUser.code === "CLOSED", withUser?.message);
  });
});

test.serial("a token provider that never answers fails the call with TokenError within the call timeout, not never", async (t) => {
  await withTokens(() => new Promise<string>(() => {}), async (_cluster, client) => {
    const started = Date.now();
    const outcome = await Promise.race([
      client.recover("alice", "pw").then(() => "resolved", (err: unknown) => err),
      new Promise((r) => setTimeout(() => r("still pending after 8 s"), 8_000)),
    ]);
    t.true(outcome instanceof TokenError, String(outcome));
    t.regex((outcome as Error).message, /did not answer within 1000 ms/);
    t.true(Date.now() - started < 5_000);
  });
});

test.serial("Evaluate refused UNAUTHENTICATED after the attempt was counted: NotAuthorizedError (exit 12), not NotEnoughEvaluationsError", async (t) => {
  await withTokens("good-token", async (cluster, client) => {
    await client.register("erin", "pw");
    onAll(cluster, "Evaluate", unauthenticated);
    const err = await t.throwsAsync(client.recover("erin", "pw"));
    t.true(err instanceof NotAuthorizedError, `${err?.constructor.name}: ${err?.message}`);
    t.is(exitCodeFor(err, sdkErrors), EXIT.NOT_AUTHORIZED);
    t.is(cluster.records.get("erin")?.attempts, 1, "the attempt was counted");
  });
});

test.serial("the token provider failing after BeginRecovery: TokenError, not NotEnoughEvaluationsError", async (t) => {
  const { provider, broken } = switchable();
  broken.answer = () => {
    throw new Error("account service down");
  };
  await withTokens(provider, async (cluster, client) => {
    await client.register("fay", "pw");
    onAll(cluster, "BeginRecovery", () => {
      broken.on = true;
      return undefined;
    });
    const err = await t.throwsAsync(client.recover("fay", "pw"));
    t.true(err instanceof TokenError, `${err?.constructor.name}: ${err?.message}`);
    t.regex(err?.message ?? "", /account service down/);
  });
});

test.serial("a lone node refusing the token in Evaluate does not decide: the others' evaluations open the key", async (t) => {
  await withTokens("good-token", async (cluster, client) => {
    const key = await client.register("gus", "pw");
    cluster.fault(1, (m) => (m === "Evaluate" ? unauthenticated() : undefined));
    t.deepEqual(await client.recover("gus", "pw"), key);
  });
});

test.serial("ConfirmRecovery refused UNAUTHENTICATED after the key opened: the key is returned with CONFIRM_UNAVAILABLE", async (t) => {
  await withTokens("good-token", async (cluster, client, warnings) => {
    const key = await client.register("hal", "pw");
    onAll(cluster, "ConfirmRecovery", unauthenticated);
    t.deepEqual(await client.recover("hal", "pw"), key);
    t.deepEqual(warnings.map((w) => w.code), ["CONFIRM_UNAVAILABLE"]);
    t.is(cluster.records.get("hal")?.attempts, 1, "the attempt still counts");
  });
});

test.serial("the token provider failing for ConfirmRecovery after the key opened: the key is returned with CONFIRM_UNAVAILABLE", async (t) => {
  const { provider, broken } = switchable();
  broken.answer = () => {
    throw new Error("account service down");
  };
  await withTokens(provider, async (cluster, client, warnings) => {
    const key = await client.register("ida", "pw");
    onAll(cluster, "Evaluate", () => {
      broken.on = true;
      return undefined;
    });
    t.deepEqual(await client.recover("ida", "pw"), key);
    t.deepEqual(warnings.map((w) => w.code), ["CONFIRM_UNAVAILABLE"]);
  });
});
