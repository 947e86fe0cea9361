// A local cluster of real bkv-node processes for the chaos runner: each node
// has its own SoftHSM token, data dir and log file, and reaches every peer
// through a LinkProxy (one per directed link), so the nemesis can cut,
// delay and reset links without root. Node a's config names node b's peer
// address as the port of proxy a→b; certificates are checked by name
// (node-<id>), not by address, so TLS passes through the proxy untouched.
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { closeSync, mkdirSync, openSync, readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { type ClusterDescriptor, type TokenProvider, descriptorFromProto } from "../client/sdk/index.js";
import { DEV_ISSUER, createDevIssuer, devTokenProvider, loadDevIssuer } from "../client/cli/dev-issuer.js";
import { LinkProxy } from "./proxy.js";
import { applyPartition, healAll, linkKey, type LinkKey } from "./partitions.js";
import { FAULT_KINDS, type FaultKind } from "./nemesis.js";
import { NODE_V8_FLAGS, UNREACHED_LIMITS, nodeEnv } from "./node-env.js";
import { adminChannel, freePort, nodeStatus, readRecordVia, sleep, vaultChannel, waitFor } from "./net.js";
import type { ChaosTarget, NodeRecord, NodeStatus, TargetFaults } from "./target.js";
import type { UnexpectedExit } from "./checkers/types.js";

const ROOT = resolve(import.meta.dirname, "..");

export interface ChaosNode {
  readonly id: number;
  readonly client: string;
  readonly peer: string;
  readonly admin: string;
  readonly configFile: string;
  readonly logFile: string;
  proc: ChildProcess | null;
  paused: boolean;
}

/** The cluster did not come up: a node process ended, or no leader was elected in time. The message says which and where the logs are. */
export class ClusterStartError extends Error {
  override readonly name = "ClusterStartError";
}

/** Whether the node's current process runs (started and not ended). */
function isRunning(n: ChaosNode): boolean {
  return n.proc !== null && n.proc.exitCode === null && n.proc.signalCode === null;
}

/** The last `n` lines of `text`, indented. */
function tail(text: string, n: number): string {
  return text.trimEnd().split("\n").slice(-n).map((l) => `  ${l}`).join("\n");
}

/**
 * How long a new cluster may take to elect a leader known to every node by
 * default: the 90 s that testkit's LocalCluster gives e2e clusters. 60 s was
 * too short on a loaded machine: under tsx a node's imports alone took 24 s on
 * a CI run, and a chaos test's cluster, started beside the chaos CLI tests'
 * clusters, still refused connections on one port after 60 s.
 */
export const START_TIMEOUT_MS = 90_000;

export interface ChaosClusterOptions {
  size: number;
  dir: string;
  /** How long the first election may take (default START_TIMEOUT_MS). */
  startTimeoutMs?: number | undefined;
  /** Ends the wait for the first election early (start then fails). */
  signal?: AbortSignal | undefined;
  snapshotInterval?: number;
  clusterId?: string;
}

export class ChaosCluster {
  readonly nodes: ChaosNode[] = [];
  readonly proxies = new Map<LinkKey, LinkProxy>();
  readonly clusterId: string;
  private readonly channels: Array<{ close(): void }> = [];
  /** Node processes that ended without the harness stopping them (a crash, the OOM killer, another process's signal). */
  readonly unexpectedExits: UnexpectedExit[] = [];
  private closed = false;
  /** Tokens of the cluster's development issuer (client authentication is on), one per call for its user. */
  token!: TokenProvider;

  private constructor(readonly opts: ChaosClusterOptions) {
    this.clusterId = opts.clusterId ?? "chaos-cluster";
  }

  get ids(): number[] {
    return this.nodes.map((n) => n.id);
  }

  /**
   * Starts the cluster and waits for a leader. `onCreated` gets the cluster before any process starts (a
   * forced exit must be able to kill them). On failure everything started is stopped before the error
   * (a ClusterStartError when a node exited or no leader came) is thrown.
   */
  static async start(opts: ChaosClusterOptions, onCreated?: (c: ChaosCluster) => void): Promise<ChaosCluster> {
    const c = new ChaosCluster(opts);
    onCreated?.(c);
    try {
      await c.launch();
      return c;
    } catch (err) {
      await c.close();
      throw err;
    }
  }

  /** Certificates, the issuer, ports, proxies, configs and tokens; then the node processes, until a leader is known. */
  private async launch(): Promise<void> {
    const opts = this.opts;
    mkdirSync(opts.dir, { recursive: true });
    const ids = Array.from({ length: opts.size }, (_, i) => i + 1);
    execFileSync("bash", [join(ROOT, "deploy/certs/make-certs.sh"), join(opts.dir, "certs"), ...ids.map(String)], { stdio: "ignore" });
    this.token = devTokenProvider(await loadDevIssuer((await createDevIssuer(opts.dir, this.clusterId)).keyFile));
    for (const id of ids) {
      const [cp, pp, ap] = await Promise.all([freePort(), freePort(), freePort()]);
      this.nodes.push({ id, client: `127.0.0.1:${cp}`, peer: `127.0.0.1:${pp}`, admin: `127.0.0.1:${ap}`, configFile: join(opts.dir, `node-${id}.json`), logFile: join(opts.dir, `node-${id}.log`), proc: null, paused: false });
    }
    await this.startProxies();
    for (const n of this.nodes) this.writeConfig(n);
    for (const n of this.nodes) this.spawn(n);
    await this.waitStarted(opts.startTimeoutMs ?? START_TIMEOUT_MS);
  }

  /** waitReady for a fresh cluster, failing at once when a node process ends and with each node's view when no leader comes. */
  private async waitStarted(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let last: unknown;
    while (Date.now() < deadline) {
      if (this.opts.signal?.aborted) throw new ClusterStartError("aborted while the cluster started");
      this.throwIfANodeExited();
      try {
        if ((await this.readyOnce()) !== undefined) return;
      } catch (err) {
        last = err;
      }
      await sleep(200);
    }
    this.throwIfANodeExited();
    throw new ClusterStartError(`no leader known to all ${this.nodes.length} nodes within ${timeoutMs / 1000} s${last === undefined ? "" : ` (last answer: ${String(last)})`}; the nodes' logs: ${join(this.opts.dir, "node-N.log")}`);
  }

  private throwIfANodeExited(): void {
    for (const n of this.nodes) {
      const p = n.proc;
      if (p === null || (p.exitCode === null && p.signalCode === null)) continue;
      const how = p.exitCode !== null ? `with code ${p.exitCode}` : `on ${p.signalCode}`;
      throw new ClusterStartError(`node ${n.id} exited ${how} while the cluster started; the end of ${n.logFile}:\n${tail(this.logOf(n.id), 8)}`);
    }
  }

  private async startProxies(): Promise<void> {
    for (const a of this.nodes)
      for (const b of this.nodes) {
        if (a.id === b.id) continue;
        const [host, port] = b.peer.split(":") as [string, string];
        const p = new LinkProxy({ targetHost: host, targetPort: Number(port), name: linkKey(a.id, b.id) });
        await p.start();
        this.proxies.set(linkKey(a.id, b.id), p);
      }
  }

  private peerAddressFor(from: number, to: ChaosNode): string {
    if (from === to.id) return to.peer;
    return `127.0.0.1:${this.proxies.get(linkKey(from, to.id))!.port}`;
  }

  private writeConfig(n: ChaosNode): void {
    const hsmDir = join(this.opts.dir, `hsm-${n.id}`);
    execFileSync("bash", [join(ROOT, "deploy/softhsm/init-token.sh"), hsmDir, `bkv-chaos-${n.id}`], { stdio: "ignore" });
    const config = {
      nodeId: n.id, clusterId: this.clusterId, dataDir: join(this.opts.dir, `data-${n.id}`),
      clientListen: n.client, peerListen: n.peer, adminListen: n.admin, logLevel: "info",
      snapshotInterval: this.opts.snapshotInterval ?? 20, tickMs: 50, electionTick: 10, heartbeatTick: 1,
      // The counters model (chaos/model) does not model throttling: its workload spends guesses quickly.
      throttle: "none",
      hsm: { tokenLabel: `bkv-chaos-${n.id}`, pinFile: join(hsmDir, "pin"), softhsmConf: join(hsmDir, "softhsm2.conf") },
      tls: { ca: join(this.opts.dir, "certs/ca.crt"), cert: join(this.opts.dir, `certs/node-${n.id}.crt`), key: join(this.opts.dir, `certs/node-${n.id}.key`) },
      nodes: this.nodes.map((m) => ({ id: m.id, clientAddress: m.client, peerAddress: this.peerAddressFor(n.id, m) })),
      join: false,
      auth: { issuers: [{ issuer: DEV_ISSUER, jwksFile: join(this.opts.dir, "dev-issuer.jwks.json") }] },
      limits: UNREACHED_LIMITS, // out of the workload's way
    };
    writeFileSync(n.configFile, JSON.stringify(config, null, 2));
  }

  private spawn(n: ChaosNode): void {
    if (this.closed) return; // a nemesis step still running after close() must not start a node again
    const fd = openSync(n.logFile, "a");
    const proc = spawn(process.execPath, [...NODE_V8_FLAGS, "--import", "tsx", join(ROOT, "node/server/main.ts"), "--config", n.configFile], { cwd: ROOT, stdio: ["ignore", fd, fd], env: nodeEnv(n.id) });
    n.proc = proc;
    n.paused = false;
    closeSync(fd);
    // The harness forgets a process (n.proc = null) before it stops it: an exit of a process still current is not the harness's doing.
    proc.once("exit", (code, sig) => {
      if (n.proc === proc && !this.closed) this.unexpectedExits.push({ node: n.id, how: code !== null ? `exited with code ${code}` : `ended on ${sig}`, at: new Date().toISOString(), log: n.logFile });
    });
  }

  node(id: number): ChaosNode {
    const n = this.nodes.find((x) => x.id === id);
    if (n === undefined) throw new Error(`no node ${id}`);
    return n;
  }

  logOf(id: number): string {
    try {
      return readFileSync(this.node(id).logFile, "utf8");
    } catch {
      return "";
    }
  }

  vault(id: number) {
    const v = vaultChannel(this.node(id).client, readFileSync(join(this.opts.dir, "certs/ca.crt")), undefined, this.token);
    this.channels.push(v);
    return v;
  }

  admin(id: number) {
    return adminChannel(this.node(id).admin, join(this.opts.dir, "certs"), id);
  }

  async status(id: number, timeoutMs = 1500, withDigest = false) {
    const a = this.admin(id);
    try {
      return await a.client.getClusterStatus({ includeStateDigest: withDigest }, { deadline: new Date(Date.now() + timeoutMs) });
    } finally {
      a.close();
    }
  }

  /** The node that reports itself leader, if any running node does. */
  async leader(): Promise<number | undefined> {
    const sts = await Promise.all(this.nodes.filter((n) => isRunning(n) && !n.paused).map((n) => this.status(n.id).catch(() => undefined)));
    const self = sts.find((s) => s !== undefined && s.leaderId === s.nodeId);
    return self === undefined ? undefined : Number(self.nodeId);
  }

  /** Waits for one leader known by every running node and every node announced in the descriptor. */
  async waitReady(timeoutMs: number): Promise<number> {
    return waitFor(() => this.readyOnce(), "a leader and all nodes announced", timeoutMs);
  }

  /** The leader when every running node knows it and it announces every node; undefined (or a thrown error) otherwise. */
  private async readyOnce(): Promise<number | undefined> {
    const running = this.nodes.filter(isRunning);
    const sts = await Promise.all(running.map((n) => this.status(n.id)));
    const leaders = new Set(sts.map((s) => Number(s.leaderId)));
    const [lead] = leaders;
    if (leaders.size !== 1 || lead === undefined || lead === 0) return undefined;
    const v = this.vault(lead);
    try {
      const d = await v.client.getClusterDescriptor({}, { deadline: new Date(Date.now() + 2000) });
      return d.descriptor?.nodes.length === this.nodes.length ? lead : undefined;
    } finally {
      v.close();
    }
  }

  async descriptor(): Promise<ClusterDescriptor> {
    const lead = await this.waitReady(30_000);
    const v = this.vault(lead);
    try {
      const res = await v.client.getClusterDescriptor({}, { deadline: new Date(Date.now() + 3000) });
      if (res.descriptor === undefined) throw new Error("no descriptor");
      return descriptorFromProto(res.descriptor, readFileSync(join(this.opts.dir, "certs/ca.crt"), "utf8"));
    } finally {
      v.close();
    }
  }

  async kill(id: number): Promise<void> {
    await this.signal(id, "SIGKILL");
  }

  /** Starts the node again unless its process runs (one that ended by itself is started again too). */
  restart(id: number): void {
    const n = this.node(id);
    if (isRunning(n)) return;
    this.spawn(n);
  }

  pause(id: number): void {
    const n = this.node(id);
    if (n.proc === null || n.paused) return;
    n.proc.kill("SIGSTOP");
    n.paused = true;
  }

  resume(id: number): void {
    const n = this.node(id);
    if (n.proc === null || !n.paused) return;
    n.proc.kill("SIGCONT");
    n.paused = false;
  }

  private async signal(id: number, sig: NodeJS.Signals): Promise<void> {
    const n = this.node(id);
    const proc = n.proc;
    if (proc === null) return;
    n.proc = null;
    if (proc.exitCode !== null || proc.signalCode !== null) return;
    const exited = new Promise((r) => proc.once("exit", r));
    if (n.paused) proc.kill("SIGCONT");
    n.paused = false;
    proc.kill(sig);
    await exited;
  }

  /** SIGKILLs every node process at once, synchronously (a forced exit). Returns how many were signalled. */
  killAllSync(): number {
    let n = 0;
    for (const node of this.nodes) {
      const proc = node.proc;
      if (proc === null || proc.exitCode !== null || proc.signalCode !== null) continue;
      proc.kill("SIGKILL");
      n++;
    }
    return n;
  }

  /** Stops everything this cluster started: nodes (SIGTERM, then SIGKILL), proxies, channels. */
  async close(): Promise<void> {
    this.closed = true;
    for (const c of this.channels) c.close();
    await Promise.all(this.nodes.map(async (n) => {
      const proc = n.proc;
      if (proc === null || proc.exitCode !== null) return;
      if (n.paused) proc.kill("SIGCONT");
      const exited = new Promise((r) => proc.once("exit", r));
      proc.kill("SIGTERM");
      const t = setTimeout(() => proc.kill("SIGKILL"), 5000);
      await exited;
      clearTimeout(t);
      n.proc = null;
    }));
    for (const p of this.proxies.values()) await p.close();
  }
}

/** The local process cluster as a chaos target: every fault kind, through signals and the link proxies. */
export class LocalTarget implements ChaosTarget {
  readonly faultKinds: readonly FaultKind[] = FAULT_KINDS;
  readonly faults: TargetFaults;

  constructor(readonly cluster: ChaosCluster) {
    const c = cluster;
    this.faults = {
      killNode: (id) => c.kill(id),
      restartNode: async (id) => c.restart(id),
      pause: async (id) => c.pause(id),
      resume: async (id) => c.resume(id),
      partition: async (spec) => applyPartition(c.proxies, c.ids, spec),
      setLatency: async (ms) => {
        for (const p of c.proxies.values()) p.setLatency(ms);
      },
      resetLinks: async () => {
        for (const p of c.proxies.values()) p.resetAll();
      },
      heal: async () => healAll(c.proxies),
    };
  }

  get name(): string {
    return `${this.cluster.ids.length} local node processes`;
  }

  get ids(): number[] {
    return this.cluster.ids;
  }

  descriptor(): Promise<ClusterDescriptor> {
    return this.cluster.descriptor();
  }

  get token(): TokenProvider {
    return this.cluster.token;
  }

  async readRecord(node: number, user: string): Promise<NodeRecord | null> {
    return readRecordVia(this.cluster.vault(node), user);
  }

  async status(node: number, timeoutMs?: number, withDigest?: boolean): Promise<NodeStatus> {
    return nodeStatus(await this.cluster.status(node, timeoutMs, withDigest));
  }

  leader(): Promise<number | undefined> {
    return this.cluster.leader();
  }

  waitReady(timeoutMs: number): Promise<number> {
    return this.cluster.waitReady(timeoutMs);
  }

  async restoreAll(): Promise<void> {
    for (const id of this.cluster.ids) {
      this.cluster.resume(id);
      this.cluster.restart(id);
    }
    healAll(this.cluster.proxies);
  }

  async logs(): Promise<Map<number, string>> {
    return new Map(this.cluster.ids.map((id) => [id, this.cluster.logOf(id)]));
  }

  progressNote(): string {
    const accepted = [...this.cluster.proxies.values()].reduce((n, p) => n + p.accepted, 0);
    return `peer connections through the proxies so far: ${accepted}`;
  }

  close(): Promise<void> {
    return this.cluster.close();
  }

  killAllSync(): number {
    return this.cluster.killAllSync();
  }

  unexpectedExits(): UnexpectedExit[] {
    return [...this.cluster.unexpectedExits];
  }
}

