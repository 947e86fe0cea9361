// The bkv side of the cluster benchmarks: a local 3-node cluster of real
// bkv-node processes (testkit/cluster.ts), users to spend attempts on, and
// committed BeginRecovery calls to the leader.
import { randomBytes } from "node:crypto";
import { rmSync } from "node:fs";
import { VaultClient } from "../client/sdk/index.js";
import { LocalCluster } from "../testkit/cluster.js";
import { distinctPoints, stopChild } from "./drive.js";

/** Client-side scrypt for the benchmarks' registrations (the nodes never see it). */
export const CHEAP_SCRYPT = { N: 1024, r: 8, p: 1 };

/**
 * Registers u0..u{users-1} with the guess limit 255: each BeginRecovery
 * spends one attempt, so `users` cover 255 × users calls.
 */
export async function registerBeginUsers(client: VaultClient, users: number): Promise<void> {
  for (let i = 0; i < users; i += 32) {
    await Promise.all(Array.from({ length: Math.min(32, users - i) }, (_, k) => client.register(`u${i + k}`, "x", { guessLimit: 255 })));
  }
}

export interface BeginBench {
  readonly cluster: LocalCluster;
  /** The node processes' pids, the current leader first. */
  readonly pids: Array<number | undefined>;
  /**
   * One committed BeginRecovery to the leader for user u{i % users}, with a
   * fresh blinded element. A failure (e.g. an election under load) is thrown
   * and sends the next calls to the leader found then.
   */
  begin(i: number): Promise<unknown>;
}

/** Starts a cluster, registers `users` users, and returns the BeginRecovery driver. */
export async function startBeginBench(users: number, points = 60_000): Promise<BeginBench> {
  const cluster = await LocalCluster.start({ clusterId: "bench" });
  try {
    const client = new VaultClient(await cluster.descriptor(), { token: cluster.token, scrypt: CHEAP_SCRYPT });
    await registerBeginUsers(client, users);
    client.close();
    let leader = await cluster.leaderId();
    let vault = cluster.vault(leader);
    let finding: Promise<void> | undefined;
    const findLeader = () => (finding ??= cluster.leaderId().then((id) => {
      if (id !== leader) [leader, vault] = [id, cluster.vault(id)];
    }).catch(() => {}).finally(() => { finding = undefined; }));
    const blinded = distinctPoints(points);
    let next = 0;
    return {
      cluster,
      get pids() {
        return pidsLeaderFirst(cluster, leader);
      },
      begin: (i) => vault.beginRecovery({
        requestId: new Uint8Array(randomBytes(16)), userId: `u${i % users}`, blindedElement: blinded[next++ % blinded.length]!,
      }, { deadline: new Date(Date.now() + 10_000) }).catch((err: unknown) => {
        void findLeader();
        throw err;
      }),
    };
  } catch (err) {
    await cluster.close();
    throw err;
  }
}

/** The node processes' pids, `leader` first. */
export function pidsLeaderFirst(cluster: LocalCluster, leader: number): Array<number | undefined> {
  return [...cluster.nodes].sort((a, b) => Number(b.id === leader) - Number(a.id === leader)).map((n) => n.proc?.pid);
}

/**
 * Stops the nodes (bounded, and safe when Ctrl-C already stopped them), then
 * LocalCluster.close (channels, temp dir).
 */
export async function stopCluster(cluster: LocalCluster | undefined): Promise<void> {
  if (cluster === undefined) return;
  await Promise.all(cluster.nodes.map(async (n) => {
    if (n.proc !== null) await stopChild(n.proc);
    n.proc = null;
  }));
  await cluster.close();
}

/** Synchronous last resort (process 'exit'): SIGKILL the nodes, remove the cluster's dir. */
export function killClusterNow(cluster: LocalCluster | undefined): void {
  if (cluster === undefined) return;
  for (const n of cluster.nodes) n.proc?.kill("SIGKILL");
  rmSync(cluster.dir, { recursive: true, force: true });
}
