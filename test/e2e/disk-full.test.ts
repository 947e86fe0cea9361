// A node whose disk fills up, on a real 3-node cluster: node 3's data
// directory moves onto a tmpfs with a few hundred KiB free, and
// registrations and wrong guesses run until a write there fails. The node
// must stop at once with a fatal log line that names the cause (not lmdb's
// "see commitError") and the data directory's free space, the other two
// serve on, and once space is freed the
// node restarts, catches up, and every node counts exactly the wrong
// guesses the client was told about. Needs `mount` (root with
// CAP_SYS_ADMIN); skipped, and said so, where it is not allowed.
import test from "ava";
import { execFileSync } from "node:child_process";
import { cpSync, mkdirSync, mkdtempSync, renameSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DEFAULT_GUESS_LIMIT, VaultClient, WrongPasswordError } from "../../client/sdk/index.js";
import { E2E_CLIENT_OPTIONS, LocalCluster, reportLogsOnFailure, waitFor } from "../../testkit/cluster.js";

reportLogsOnFailure(test);

/** Whether this machine lets the test mount a tmpfs (checked once, on a scratch directory). */
function canMount(): boolean {
  const dir = mkdtempSync(join(tmpdir(), "bkv-mount-"));
  try {
    execFileSync("mount", ["-t", "tmpfs", "-o", "size=1m", "tmpfs", dir], { stdio: "ignore" });
    execFileSync("umount", [dir], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const usedKiB = (dir: string) => Number(execFileSync("du", ["-sk", dir]).toString().split("\t")[0]);
const mountTest = canMount() ? test.serial : test.skip;

let cluster: LocalCluster | undefined;
let client: VaultClient | undefined;
let mounted: string | undefined;

test.after.always(async () => {
  client?.close();
  for (const n of cluster?.nodes ?? []) await cluster!.stop(n.id);
  if (mounted !== undefined) execFileSync("umount", ["-l", mounted]);
  await cluster?.close();
});

/** Moves stopped node `id`'s data directory onto a tmpfs with `freeKiB` KiB free; returns the mount point. */
function dataDirOnTmpfs(c: LocalCluster, id: number, freeKiB: number): string {
  const dir = join(c.dir, `data-${id}`);
  renameSync(dir, `${dir}.orig`);
  mkdirSync(dir);
  execFileSync("mount", ["-t", "tmpfs", "-o", `size=${usedKiB(`${dir}.orig`) + freeKiB}k`, "tmpfs", dir]);
  cpSync(`${dir}.orig`, dir, { recursive: true });
  return dir;
}

mountTest("a node whose disk fills stops with the cause in its log; the others serve; freed, it catches up and every node counts the same wrong guesses", async (t) => {
  cluster = await LocalCluster.start();
  client = new VaultClient(await cluster.descriptor(), { ...E2E_CLIENT_OPTIONS, token: cluster.token });
  const key = await client.register("alice", "right horse");
  let wrong = 0;
  const guessWrong = async () => {
    const err = await client!.recover("alice", "wrong horse").then(() => null, (e: unknown) => e);
    t.true(err instanceof WrongPasswordError, `a wrong guess is WrongPasswordError: ${String(err)}`);
    wrong++;
  };

  await cluster.stop(3);
  mounted = dataDirOnTmpfs(cluster, 3, 400);
  cluster.restart(3);
  await cluster.waitReady(30_000);

  // Registrations fill node 3's disk; a wrong guess every tenth.
  let registered = 0;
  for (let i = 0; !cluster.exited(3) && i < 2_000; i++) {
    await client.register(`user-${i}`, "pw").then(() => { registered++; }, () => { /* node 3 cannot confirm once it is gone */ });
    if (i % 10 === 9 && !cluster.exited(3)) await guessWrong();
  }
  t.true(cluster.exited(3), `node 3 stopped after ${registered} registrations`);
  const fatal = cluster.logOf(3).split("\n").filter((l) => l.includes("fatal error: stopping"));
  t.is(fatal.length, 1, "one fatal line");
  const line = JSON.parse(fatal[0] ?? "{}") as { error?: { name?: string; message?: string }; dataDirFreeBytes?: number; dataDirTotalBytes?: number };
  t.is(line.error?.name, "StorageFailedError");
  // lmdb names the cause "Input/output error", the WAL "ENOSPC: no space left on device": either, never lmdb's pointer to it.
  t.regex(line.error?.message ?? "", /(commit|write) failed, refusing further (use|writes): \S/);
  t.notRegex(line.error?.message ?? "", /see commitError/, "the cause itself, not lmdb's pointer to it");
  t.true(line.dataDirFreeBytes !== undefined && line.dataDirFreeBytes < 200 * 1024, `the line gives the data directory's free space: ${line.dataDirFreeBytes} of ${line.dataDirTotalBytes} bytes`);

  // Two nodes of three still evaluate (t = 2).
  await guessWrong();

  execFileSync("mount", ["-o", "remount,size=256m", mounted]);
  cluster.restart(3);
  const leaderIndex = Number((await cluster.status(await cluster.leaderId())).appliedIndex);
  await cluster.waitApplied(3, leaderIndex, 60_000);
  const remaining = await Promise.all([1, 2, 3].map((id) => waitFor(async () => {
    const info = await cluster!.vault(id).getRecordInfo({ userId: "alice", stale: true }, { deadline: new Date(Date.now() + 5_000) }).catch(() => undefined);
    return info?.attemptsRemaining;
  }, `node ${id}'s record of alice`)));
  t.true(wrong >= 2, `${wrong} wrong guesses`);
  t.deepEqual(remaining, [1, 2, 3].map(() => DEFAULT_GUESS_LIMIT - wrong), "every node counted each wrong guess once");
  t.deepEqual(await client.recover("alice", "right horse"), key, "the right password still recovers the key");
});
