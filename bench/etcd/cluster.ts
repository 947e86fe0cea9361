// A throw-away 3-member etcd cluster on 127.0.0.1 for bench/vs-etcd.ts:
// Debian's etcd-server (installed with apt-get when missing and running as
// root), free ports, TLS on the client and peer ports with certificates from
// deploy/certs/make-certs.sh (as bkv has), data and logs in a temp dir, real
// fsync. Clients speak grpc-js with bench/etcd/rpc.proto.
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import * as grpc from "@grpc/grpc-js";
import { loadSync } from "@grpc/proto-loader";
import { freePort } from "../../chaos/net.js";
import { waitFor } from "../../testkit/cluster.js";
import { stopChild } from "../drive.js";

const ROOT = resolve(import.meta.dirname, "../..");
const INSTALL = "apt-get install -y etcd-server";

type Unary = (req: object, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res: never) => void) => void;
interface StatusResponse { header: { memberId: string }; leader: string }

const pkg = grpc.loadPackageDefinition(loadSync(join(import.meta.dirname, "rpc.proto"), { longs: String }));
const etcdserverpb = pkg.etcdserverpb as Record<string, grpc.ServiceClientConstructor>;

/** The etcd binary, installing Debian's etcd-server first when it is missing and we are root; else says what to run. */
export function etcdBinary(): string {
  const found = () => ["/usr/bin/etcd", "/usr/local/bin/etcd"].find((p) => existsSync(p));
  if (found() !== undefined) return found()!;
  if (process.getuid?.() !== 0) {
    throw new Error(`etcd is not installed: run \`sudo apt-get update && sudo ${INSTALL}\` (Debian's etcd-server), then again`);
  }
  console.error(`etcd is missing: ${INSTALL}`);
  const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
  try {
    execFileSync("bash", ["-c", INSTALL], { stdio: ["ignore", "ignore", "inherit"], env });
  } catch {
    execFileSync("bash", ["-c", `apt-get update && ${INSTALL}`], { stdio: ["ignore", "ignore", "inherit"], env });
  }
  const path = found();
  if (path === undefined) throw new Error(`${INSTALL} did not install /usr/bin/etcd`);
  return path;
}

interface Member { readonly name: string; readonly client: string; readonly peer: string; proc: ChildProcess | null }

export class EtcdCluster {
  readonly dir = mkdtempSync(join(tmpdir(), "bkv-bench-etcd-"));
  readonly members: Member[] = [];
  private readonly channels: grpc.Client[] = [];

  private constructor() {}

  /** Starts `size` members and waits for a leader known to all. */
  static async start(size = 3): Promise<EtcdCluster> {
    const bin = etcdBinary();
    const c = new EtcdCluster();
    try {
      const names = Array.from({ length: size }, (_, i) => `etcd-${i + 1}`);
      execFileSync("bash", [join(ROOT, "deploy/certs/make-certs.sh"), join(c.dir, "certs"), ...names.map((_, i) => String(i + 1))], { stdio: "ignore" });
      for (const name of names) c.members.push({ name, client: `127.0.0.1:${await freePort()}`, peer: `127.0.0.1:${await freePort()}`, proc: null });
      c.members.forEach((m, i) => c.spawn(bin, m, i + 1));
      await c.leaderIndex(60_000);
      return c;
    } catch (err) {
      const tails = c.logTails();
      await c.close();
      throw new Error(`${(err as Error).message}\n${tails}`);
    }
  }

  private spawn(bin: string, m: Member, id: number): void {
    const certs = join(this.dir, "certs");
    const tls = (prefix: string) => [`--${prefix}cert-file=${certs}/node-${id}.crt`, `--${prefix}key-file=${certs}/node-${id}.key`];
    const fd = openSync(join(this.dir, `${m.name}.log`), "a");
    m.proc = spawn(bin, [
      `--name=${m.name}`, `--data-dir=${join(this.dir, m.name)}`,
      `--listen-client-urls=https://${m.client}`, `--advertise-client-urls=https://${m.client}`,
      `--listen-peer-urls=https://${m.peer}`, `--initial-advertise-peer-urls=https://${m.peer}`,
      `--initial-cluster=${this.members.map((x) => `${x.name}=https://${x.peer}`).join(",")}`,
      "--initial-cluster-state=new", `--initial-cluster-token=bench-${process.pid}`,
      // Server TLS for clients (as bkv's client port); mutual TLS between peers (as bkv's peer port).
      ...tls(""), ...tls("peer-"), `--peer-trusted-ca-file=${certs}/ca.crt`, "--peer-client-cert-auth",
    ], { stdio: ["ignore", fd, fd] });
    closeSync(fd);
  }

  get pids(): Array<number | undefined> {
    return this.members.map((m) => m.proc?.pid);
  }

  private client(i: number, service: "KV" | "Maintenance"): grpc.Client {
    const creds = grpc.credentials.createSsl(readFileSync(join(this.dir, "certs/ca.crt")));
    const ch = new etcdserverpb[service]!(this.members[i]!.client, creds);
    this.channels.push(ch);
    return ch;
  }

  /** Index (in `members`) of the leader all members agree on. */
  async leaderIndex(timeoutMs = 30_000): Promise<number> {
    const status = this.members.map((_, i) => this.client(i, "Maintenance"));
    return waitFor(async () => {
      const sts = await Promise.all(status.map((s) => call<StatusResponse>(s, "Status", {})));
      const leaders = new Set(sts.map((s) => s.leader));
      const idx = sts.findIndex((s) => s.header.memberId === s.leader);
      return leaders.size === 1 && idx >= 0 ? idx : undefined;
    }, "an etcd leader", timeoutMs);
  }

  /** A put function on member `i`: key, 256-byte value, 10 s deadline. */
  putter(i: number): (key: string, value: Uint8Array) => Promise<unknown> {
    const kv = this.client(i, "KV");
    return (key, value) => call(kv, "Put", { key: Buffer.from(key), value });
  }

  /** The last lines of each member's log (for a failed start). */
  logTails(): string {
    return this.members.map((m) => {
      const log = existsSync(join(this.dir, `${m.name}.log`)) ? readFileSync(join(this.dir, `${m.name}.log`), "utf8") : "";
      return `${m.name}: ${log.trim().split("\n").slice(-3).join("\n  ")}`;
    }).join("\n");
  }

  /** Stops every member (SIGTERM, waited for), then removes the temp dir. */
  async close(): Promise<void> {
    for (const ch of this.channels) ch.close();
    await Promise.all(this.members.map((m) => (m.proc === null ? undefined : stopChild(m.proc))));
    rmSync(this.dir, { recursive: true, force: true });
  }

  /** Synchronous last resort (process 'exit'): SIGKILL the members, remove the dir. */
  killNow(): void {
    for (const m of this.members) m.proc?.kill("SIGKILL");
    rmSync(this.dir, { recursive: true, force: true });
  }
}

function call<T>(client: grpc.Client, method: string, req: object): Promise<T> {
  const fn = (client as unknown as Record<string, Unary>)[method]!.bind(client);
  return new Promise((res, rej) => fn(req, { deadline: new Date(Date.now() + 10_000) }, (err, v) => (err ? rej(err) : res(v))));
}
