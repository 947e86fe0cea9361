// LmdbVaultStore when a commit fails: the store on disk stays a prefix of
// the commits (a commit sealed behind a failed one is refused, never written
// without it: the failed one's entries, e.g. attempt counts, would be skipped
// as applied after a restart), and the failure is reported rather than
// ending the process with an unhandled rejection.
import { spawn, spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import test from "ava";
import { LmdbVaultStore } from "../../node/storage/vault-store.js";
import { StorageFailedError } from "../../node/storage/index.js";
import { tempDir } from "./helpers.js";

const b = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, "latin1"));
const s = (u: Uint8Array | undefined): string | undefined => (u === undefined ? undefined : Buffer.from(u).toString("latin1"));

/** Pairs of a closed store, reopened. */
async function reopened(dir: string, keys: string[]): Promise<Record<string, string | undefined>> {
  const store = await LmdbVaultStore.open(dir);
  try {
    return Object.fromEntries(keys.map((k) => [k, s(store.get(b(k)))]));
  } finally {
    await store.close();
  }
}

test("a commit sealed behind one that fails is refused and not written, nor any later one; they settle in call order", async (t) => {
  const dir = tempDir(t);
  const store = await LmdbVaultStore.open(dir);
  store.put(b("applied"), b("1"));
  await store.commit();

  let failA!: (err: Error) => void;
  store.put(b("attempts/alice"), b("1"));
  store.put(b("applied"), b("2"));
  const a = store.commit(new Promise((_resolve, reject) => { failA = reject; })); // A: its audit flush will fail
  store.put(b("attempts/bob"), b("1"));
  store.put(b("applied"), b("3"));
  const bc = store.commit(); // B: sealed while A is pending
  store.put(b("applied"), b("4"));
  const c = store.commit(Promise.resolve()); // C: its own `after` resolved at once
  const order: string[] = [];
  for (const [name, p] of [["A", a], ["B", bc], ["C", c]] as const) p.then(() => order.push(`${name} resolved`), () => order.push(name));

  failA(new Error("the audit flush failed"));
  await t.throwsAsync(a, { instanceOf: StorageFailedError, message: /the audit flush failed/ });
  await t.throwsAsync(bc, { instanceOf: StorageFailedError, message: /the audit flush failed/ }, "B names the first failure");
  await t.throwsAsync(c, { instanceOf: StorageFailedError });
  t.deepEqual(order, ["A", "B", "C"]);
  t.throws(() => store.commit(), { instanceOf: StorageFailedError });
  await store.close();
  t.deepEqual(await reopened(dir, ["applied", "attempts/alice", "attempts/bob"]), { applied: "1", "attempts/alice": undefined, "attempts/bob": undefined });
});

const FSIZE_WRITER = fileURLToPath(new URL("./fixtures/vault-store-fsize.ts", import.meta.url));
/** The child's file size limit: past the first small commit, short of a 1 MiB value. */
const FSIZE_LIMIT = 256 * 1024;

test("an lmdb commit failure (data.mdb past the file size limit) is reported, not an unhandled rejection; the commit behind it is not written", async (t) => {
  if (spawnSync("prlimit", ["--version"]).status !== 0) {
    t.log("SKIPPED: prlimit (util-linux) is not installed");
    t.pass();
    return;
  }
  const dir = tempDir(t);
  const child = spawn("prlimit", [`--fsize=${FSIZE_LIMIT}`, process.execPath, "--import", "tsx", FSIZE_WRITER, dir], { stdio: ["ignore", "pipe", "pipe"] });
  let [stdout, stderr] = ["", ""];
  child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
  child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
  const guard = setTimeout(() => child.kill("SIGKILL"), 30_000);
  const code = await new Promise<number | null>((resolve) => child.on("exit", (c) => resolve(c)));
  clearTimeout(guard);
  t.is(code, 0, `the writer exited ${code}: ${stderr}`);
  const [line, alive] = stdout.trim().split("\n");
  t.is(alive, "alive", "no unhandled rejection ended the writer");
  const { a, b: second } = JSON.parse(line ?? "{}") as { a?: string; b?: string };
  t.regex(a ?? "", /^StorageFailedError: vault store commit failed, refusing further use: /);
  t.notRegex(a ?? "", /see commitError/, "lmdb's cause is named");
  t.is(second, a, "the commit behind it fails with the same error");
  t.deepEqual(await reopened(dir, ["applied", "attempts/alice", "attempts/bob"]), { applied: "1", "attempts/alice": undefined, "attempts/bob": undefined });
});
