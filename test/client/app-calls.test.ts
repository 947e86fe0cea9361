// The SDK as an app uses it, against the in-process fake cluster: what a
// call after close() throws, and a token provider that never answers.
import test from "ava";
import { ClientError, TokenError, VaultClient, type ClientWarning, type TokenProvider } from "../../client/sdk/index.js";
import { FAST, FakeCluster } from "./fake-cluster.js";

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
