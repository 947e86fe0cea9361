// The SDK as an app uses it, against the in-process fake cluster: what a
// call after close() throws.
import test from "ava";
import { ClientError, VaultClient, type ClientWarning, type TokenProvider } from "../../client/sdk/index.js";
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
