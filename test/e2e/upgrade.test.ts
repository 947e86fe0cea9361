// Upgrade from the release before the vault store (issue 12 item 7): a
// 3-node cluster of that release (commit PREVIOUS, run from `git archive`
// under tsx with this tree's node_modules) takes registrations of that
// release's client and snapshots (Raft snapshot format 1: the vault state
// inline); every node is stopped and started again on this tree, which
// converts the state into its store on first start. The operator then
// requires bound shares (the old state took unbound ones). Every record is
// still recoverable with its password, every node reaches the same state
// digest, and the nodes go on taking new records.
import { execSync } from "node:child_process";
import { symlinkSync } from "node:fs";
import { join, resolve } from "node:path";
import { randomBytes } from "node:crypto";
import test, { type ExecutionContext } from "ava";
import { type ServiceError, status } from "@grpc/grpc-js";
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

/**
 * The upgraded state, bootstrapped before bound shares, does not require
 * them until an operator's RequireBoundShares; then every node reports bound
 * shares only (docs/operations.md "Bound shares").
 */
async function requireBoundShares(t: ExecutionContext, cluster: LocalCluster, ids: readonly number[]): Promise<void> {
  const bound = () => Promise.all(ids.map(async (id) => (await cluster.admin(id).getClusterStatus({})).boundSharesOnly));
  t.deepEqual(await bound(), ids.map(() => false), "a state from before bound shares");
  const requestId = new Uint8Array(randomBytes(16));
  const answer = await waitFor(async () => cluster.admin(await cluster.leaderId()).requireBoundShares({ requestId })
    .catch((err: ServiceError) => (err.code === status.UNAVAILABLE ? undefined : Promise.reject(err))), "RequireBoundShares on the leader");
  t.false(answer.alreadyRequired);
  await waitFor(async () => ((await bound()).every((b) => b) ? true : undefined), "every node to apply bind-shares");
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

    const warnings: string[] = [];
    const after = new VaultClient(await cluster.descriptor(), { ...E2E_CLIENT_OPTIONS, token: cluster.token, onWarning: (w) => warnings.push(w.code) });
    try {
      // Before the activation this tree's client is refused at the port (BOUND_SHARES_NOT_ACTIVE) and registers unbound shares.
      const early = await after.register("before-activation", "pw");
      t.deepEqual(warnings, ["UNBOUND_SHARES"]);
      await requireBoundShares(t, cluster, ids);
      for (const [user, key] of keys) t.is(hex(await after.recover(user, `pw-${user.slice(5)}`)), key, `${user} recovers its key (unbound shares, registered before)`);
      t.deepEqual(await after.recover("before-activation", "pw"), early);
      await after.register("after-upgrade", "pw");
      t.deepEqual(warnings, ["UNBOUND_SHARES"], "bound shares once activated: no fallback");
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
