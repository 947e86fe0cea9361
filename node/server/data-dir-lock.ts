// One bkv-node process per data dir. A second process on the same dir (a
// second `npm start`, a second container on one pod's volume) would read the WAL
// while the first writes it, take a record being written for a torn tail
// and truncate it, and commit to the same stores. The lock is a listening
// Unix socket in Linux's abstract namespace, named after the data dir's real
// path: binding it is atomic, the kernel releases it when the process ends
// however it ends (no stale lock file after a crash, no PID reuse to guess
// about), and the holder answers a connection with its pid for the message.
// The namespace is the network namespace's: two hosts, or two pods, sharing
// one volume are not seen. Elsewhere than Linux nothing is locked.
import { createHash } from "node:crypto";
import { mkdirSync, realpathSync } from "node:fs";
import { type Server, connect, createServer } from "node:net";

export interface DataDirLock {
  release(): Promise<void>;
}

/** Another process holds the data dir: the node must not start. */
export class DataDirInUseError extends Error {
  override readonly name = "DataDirInUseError";
  constructor(readonly dir: string, readonly holderPid: number | null) {
    const who = holderPid === null ? "another bkv-node process" : `another bkv-node process (pid ${holderPid})`;
    super(`the data dir ${dir} is in use by ${who}: stop that process first, or give this node its own dataDir`);
  }
}

const UNLOCKED: DataDirLock = { release: () => Promise.resolve() };

/** The abstract socket name of `dir` (its real path, so two spellings of one dir share it). */
export function lockName(dir: string): string {
  return `\0bkv-data-dir-${createHash("sha256").update(realpathSync(dir)).digest("hex").slice(0, 40)}`;
}

/** Creates `dir` if needed and takes its lock; rejects with DataDirInUseError while another process holds it. */
export async function lockDataDir(dir: string, platform: NodeJS.Platform = process.platform): Promise<DataDirLock> {
  mkdirSync(dir, { recursive: true });
  if (platform !== "linux") return UNLOCKED;
  const name = lockName(dir);
  const server = createServer((socket) => socket.end(`${process.pid}\n`));
  try {
    await listen(server, name);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "EADDRINUSE") throw err;
    throw new DataDirInUseError(dir, await holderPid(name));
  }
  server.unref();
  return { release: () => new Promise((resolve) => server.close(() => resolve())) };
}

function listen(server: Server, name: string): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen({ path: name }, () => {
      server.off("error", reject);
      resolve();
    });
  });
}

/** The pid the lock's holder answers with; null when it does not answer within a second. */
function holderPid(name: string): Promise<number | null> {
  return new Promise((resolve) => {
    let text = "";
    const socket = connect({ path: name });
    const done = () => {
      socket.destroy();
      const pid = Number(text.trim());
      resolve(Number.isSafeInteger(pid) && pid > 0 ? pid : null);
    };
    socket.setTimeout(1000, done);
    socket.on("data", (d) => { text += d.toString(); });
    socket.once("end", done);
    socket.once("error", done);
  });
}
