// Upgrade from the release before the vault store (issue 12 item 7): a
// 3-node cluster of that release (commit PREVIOUS, run from `git archive`
// under tsx with this tree's node_modules) takes registrations of that
// release's client and snapshots (Raft snapshot format 1: the vault state
// inline); every node is stopped and started again on this tree, which
// converts the state into its store on first start. Every record is still
// recoverable with its password, every node reaches the same state digest,
// and the nodes go on taking new records.
import { execSync } from "node:child_process";
import { symlinkSync } from "node:fs";
import { join, resolve } from "node:path";
import test from "ava";
import { VaultClient } from "../../client/sdk/index.js";
import { E2E_CLIENT_OPTIONS, LocalCluster, waitFor, reportLogsOnFailure } from "../../testkit/cluster.js";
import { tempDir } from "../temp.js";

reportLogsOnFailure(test);

/** The last commit of main before the store (the previous release of the data dir format). */
const PREVIOUS = "73fc8c9";
const ROOT = resolve(import.meta.dirname, "../..");
const USERS = 12;
const hex = (b: Uint8Array): string => Buffer.from(b).toString("hex");

/** Extracts PREVIOUS into `dir` and links this tree's node_modules; returns its node entry. */
function previousRelease(dir: string): string {
  execSync(`git -C ${JSON.stringify(ROOT)} archive ${PREVIOUS} | tar -x -C ${JSON.stringify(dir)}`, { stdio: ["ignore", "ignore", "pipe"] });
  symlinkSync(join(ROOT, "node_modules"), join(dir, "node_modules"));
  return join(dir, "node/server/main.ts");
}

test.serial("a cluster of the release before the store upgrades in place without losing a record", async (t) => {
  const old = tempDir(t, "bkv-previous-");
  const cluster = await LocalCluster.start({ snapshotInterval: 8, nodeEntry: previousRelease(old) });
  const ids = cluster.nodes.map((n) => n.id);
  try {
    // The previous release's own client (unbound shares, blob v1; no token, it checked none): this tree's
    // client wraps bound shares (blob v2), which that release refuses.
    const { VaultClient: PreviousClient } = await import(join(old, "client/sdk/index.ts")) as { VaultClient: typeof VaultClient };
    const client = new PreviousClient(await cluster.descriptor(), { ...E2E_CLIENT_OPTIONS, token: cluster.token });
    const keys = new Map<string, string>();
    for (let i = 0; i < USERS; i++) keys.set(`user-${i}`, hex(await client.register(`user-${i}`, `pw-${i}`)));
    t.true(Number((await cluster.status(await cluster.leaderId())).snapshotIndex) > 1, "the old release took snapshots");
    client.close();

    for (const id of ids) await cluster.stop(id);
    cluster.useEntry(undefined);
    for (const id of ids) cluster.restart(id);
    await cluster.waitReady(90_000);
    for (const id of ids) t.regex(cluster.logOf(id), /"msg":"vault state written into the store from the Raft snapshot"/, `node ${id} converted its state`);

    const after = new VaultClient(await cluster.descriptor(), { ...E2E_CLIENT_OPTIONS, token: cluster.token });
    try {
      for (const [user, key] of keys) t.is(hex(await after.recover(user, `pw-${user.slice(5)}`)), key, `${user} recovers its key`);
      await after.register("after-upgrade", "pw");
      const digests = await waitFor(async () => {
        const sts = await Promise.all(ids.map((id) => cluster.admin(id).getClusterStatus({ includeStateDigest: true })));
        return new Set(sts.map((s) => `${s.stateDigestIndex}:${hex(s.stateDigest)}`)).size === 1 ? sts : undefined;
      }, "every node at the same digest", 60_000);
      t.is(digests.length, 3);
    } finally {
      after.close();
    }
  } finally {
    await cluster.close();
  }
});
