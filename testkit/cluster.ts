// Test helper: a local cluster of real bkv-node processes (the sources under
// tsx, or a compiled entry: builtNodeEntry for benchmarks), each with
// its own SoftHSM token, certificates from deploy/certs/make-certs.sh, real
// gRPC on 127.0.0.1 with free ports, and its own data dir under a temp dir.
// Client authentication is on: the cluster has its own development issuer
// (client/cli/dev-issuer.ts), and `vault(id)` clients and `token` carry
// real tokens minted with it for each call's user.
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import * as grpc from "@grpc/grpc-js";
import { AdminService } from "../proto/gen/bkv/v1/admin_pb.js";
import { VaultService } from "../proto/gen/bkv/v1/vault_pb.js";
import { errorDetailOf, unaryClient } from "../proto/rpc.js";
import { ErrorReason } from "../proto/gen/bkv/v1/status_pb.js";
import { freePort } from "../chaos/net.js";
import { NODE_V8_FLAGS, UNREACHED_LIMITS, nodeEnv } from "../chaos/node-env.js";
import type { TestFn } from "ava";
import { type ClusterDescriptor, type TokenProvider, VaultClient, type VaultClientOptions, bearerInterceptor, descriptorFromProto } from "../client/sdk/index.js";
import { DEV_ISSUER, type DevIssuer, createDevIssuer, devTokenProvider, loadDevIssuer } from "../client/cli/dev-issuer.js";
import { clusterClosing, clusterOpened, reportLogsOnFailure } from "./failure-logs.js";

export { reportLogsOnFailure } from "./failure-logs.js";

const ROOT = resolve(import.meta.dirname, "..");

export interface ClusterOptions {
  readonly size?: number;
  readonly snapshotInterval?: number;
  readonly clusterId?: string;
  /** The throttling schedule of the new cluster (node config `throttle`); default "none", so tests can spend guesses quickly. */
  readonly throttle?: "default" | "none";
  /**
   * A bkv-node entry to run instead of this tree's sources: a compiled one
   * (an installed package's dist/node/server/main.js), or another tree's
   * node/server/main.ts (run under tsx: an earlier release).
   */
  readonly nodeEntry?: string;
  /** Extra fields of every node's config file (e.g. promoteMaxLag). */
  readonly nodeConfig?: Readonly<Record<string, unknown>>;
  /** Nodes with client authentication off (auth.disabled: they warn, and say so in /readyz); default on. */
  readonly authDisabled?: boolean;
  /** The nodes' `limits` config; default: limits far above what any test or benchmark sends. */
  readonly limits?: Record<string, number>;
}

export { UNREACHED_LIMITS };

interface NodeInfo {
  readonly id: number;
  readonly client: string;
  readonly peer: string;
  readonly admin: string;
  readonly metrics: string;
  readonly configFile: string;
  proc: ChildProcess | null;
}

export { freePort } from "../chaos/net.js";

export async function waitFor<T>(f: () => Promise<T | undefined> | T | undefined, what: string, timeoutMs = 20_000, intervalMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await f();
      if (v !== undefined && v !== false) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ""}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/**
 * Builds the package now (`npm run build`, as deploy/Dockerfile does) and
 * returns its node entry, dist/node/server/main.js: benchmarks run the
 * compiled build that ships, not the sources under tsx (which transpiles
 * every module at each start, a second or more of a restart).
 */
export function builtNodeEntry(): string {
  execFileSync("npm", ["run", "-s", "build"], { cwd: ROOT, stdio: "inherit" });
  return join(ROOT, "dist/node/server/main.js");
}

/**
 * Cached channels reconnect within a quarter of a second after a node restarts (grpc-js backs off up to 120 s
 * by default): a restart's measured time (bench:scale) is the node's, not a channel's backoff.
 */
const RECONNECT_FAST = { "grpc.initial_reconnect_backoff_ms": 100, "grpc.max_reconnect_backoff_ms": 250 } as const;

/**
 * `f()`, called again while it is refused with one of `reasons` (an election
 * under way: NOT_LEADER, NO_LEADER), `pauseMs` apart, until `timeoutMs`
 * passed; any other answer or refusal is f's.
 */
export async function whileElecting<T>(f: () => Promise<T>, reasons: readonly ErrorReason[], timeoutMs: number, pauseMs = 0): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await f();
    } catch (err) {
      const reason = errorDetailOf(err as grpc.ServiceError)?.reason;
      if (Date.now() > end || reason === undefined || !reasons.includes(reason)) throw err;
      if (pauseMs > 0) await new Promise((r) => setTimeout(r, pauseMs));
    }
  }
}

export class LocalCluster {
  readonly dir: string;
  readonly clusterId: string;
  readonly nodes: NodeInfo[] = [];
  private readonly clients = new Map<string, { client: unknown; channel: grpc.Client }>();
  private readonly providers = new Map<TokenProvider, number>();
  /** The entry of nodes spawned from now on (useEntry), over opts.nodeEntry. */
  private entry: string | undefined;
  /** The cluster's development token issuer (set by start). */
  issuer!: DevIssuer;
  /** A token provider for SDK clients: the call's user's dev token, reused until half its lifetime is left (devTokenProvider). */
  token!: TokenProvider;

  /**
   * The cluster's threshold t, in every node's config, nodes added later
   * included (a node's default would follow the nodes its config lists; the
   * attested snapshot install asks t other nodes to vouch).
   */
  readonly threshold: number;

  private constructor(readonly opts: ClusterOptions) {
    this.dir = mkdtempSync(join(tmpdir(), "bkv-e2e-"));
    this.clusterId = opts.clusterId ?? "e2e-cluster";
    this.threshold = Math.floor((opts.size ?? 3) / 2) + 1;
  }

  /**
   * Creates tokens, certificates and configs, and starts every node. A port
   * that freePort found free can be taken by another process (test files run
   * in parallel) before the node binds it: such a start is retried with new
   * ports (at most three times in all).
   */
  static async start(opts: ClusterOptions = {}): Promise<LocalCluster> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await LocalCluster.startOnce(opts);
      } catch (err) {
        if (attempt >= 3 || !/EADDRINUSE/.test((err as Error).message)) throw err;
      }
    }
  }

  private static async startOnce(opts: ClusterOptions): Promise<LocalCluster> {
    const c = new LocalCluster(opts);
    const ids = Array.from({ length: opts.size ?? 3 }, (_, i) => i + 1);
    execFileSync("bash", [join(ROOT, "deploy/certs/make-certs.sh"), join(c.dir, "certs"), ...ids.map(String), "operator"], { stdio: "ignore" });
    c.issuer = await loadDevIssuer((await createDevIssuer(c.dir, c.clusterId)).keyFile);
    c.token = devTokenProvider(c.issuer);
    const ports = await Promise.all(ids.flatMap(() => [freePort(), freePort(), freePort(), freePort()]));
    for (const id of ids) {
      const [cp, pp, ap, mp] = ports.slice((id - 1) * 4, id * 4) as [number, number, number, number];
      c.nodes.push({
        id, client: `127.0.0.1:${cp}`, peer: `127.0.0.1:${pp}`, admin: `127.0.0.1:${ap}`, metrics: `127.0.0.1:${mp}`,
        configFile: join(c.dir, `node-${id}.json`), proc: null,
      });
    }
    for (const n of c.nodes) c.writeConfig(n);
    clusterOpened(c);
    for (const n of c.nodes) c.spawn(n);
    try {
      await c.waitReady(90_000);
    } catch (err) {
      const tails = c.nodes.map((n) => `node ${n.id}: ${c.logOf(n.id).trim().split("\n").slice(-3).join("\n  ")}`).join("\n");
      await c.close();
      throw new Error(`${(err as Error).message}\n${tails}`);
    }
    return c;
  }

  /**
   * Starts a new node `id` that joins the running cluster (its config has
   * join: true). By default the caller adds it with AddLearner; with
   * `autoJoin` its config names the other nodes' admin addresses, and it asks
   * the leader to add and promote it by itself.
   */
  async addNode(id: number, { autoJoin = false } = {}): Promise<NodeInfo> {
    const n = await this.prepareNode(id, { autoJoin });
    this.spawn(n);
    return n;
  }

  /** addNode without the start: the node's certificate, HSM token and config (an operator's provisioning); start it with restart(id). */
  async prepareNode(id: number, { autoJoin = false } = {}): Promise<NodeInfo> {
    execFileSync("bash", [join(ROOT, "deploy/certs/make-certs.sh"), join(this.dir, "certs"), String(id)], { stdio: "ignore" });
    const [cp, pp, ap, mp] = await Promise.all([freePort(), freePort(), freePort(), freePort()]);
    const n: NodeInfo = {
      id, client: `127.0.0.1:${cp}`, peer: `127.0.0.1:${pp}`, admin: `127.0.0.1:${ap}`, metrics: `127.0.0.1:${mp}`,
      configFile: join(this.dir, `node-${id}.json`), proc: null,
    };
    this.nodes.push(n);
    this.writeConfig(n, true, autoJoin);
    return n;
  }

  private writeConfig(n: NodeInfo, join_ = false, adminAddresses = !join_): void {
    const hsmDir = join(this.dir, `hsm-${n.id}`);
    execFileSync("bash", [join(ROOT, "deploy/softhsm/init-token.sh"), hsmDir, `bkv-e2e-${n.id}`], { stdio: "ignore" });
    const config = {
      nodeId: n.id, clusterId: this.clusterId, dataDir: join(this.dir, `data-${n.id}`),
      clientListen: n.client, peerListen: n.peer, adminListen: n.admin, metricsListen: n.metrics, logLevel: process.env.BKV_E2E_LOG_LEVEL ?? "info",
      snapshotInterval: this.opts.snapshotInterval ?? 10_000, tickMs: 50, electionTick: 10, heartbeatTick: 1,
      throttle: this.opts.throttle ?? "none", threshold: this.threshold,
      hsm: { tokenLabel: `bkv-e2e-${n.id}`, pinFile: join(hsmDir, "pin"), softhsmConf: join(hsmDir, "softhsm2.conf") },
      tls: { ca: join(this.dir, "certs/ca.crt"), cert: join(this.dir, `certs/node-${n.id}.crt`), key: join(this.dir, `certs/node-${n.id}.key`) },
      auth: this.opts.authDisabled === true ? { disabled: true } : { issuers: [{ issuer: DEV_ISSUER, jwksFile: this.jwksFile }] },
      limits: this.opts.limits ?? UNREACHED_LIMITS,
      nodes: this.nodes.map((m) => ({ id: m.id, clientAddress: m.client, peerAddress: m.peer, ...(adminAddresses ? { adminAddress: m.admin } : {}) })),
      join: join_,
      ...this.opts.nodeConfig,
    };
    writeFileSync(n.configFile, JSON.stringify(config, null, 2));
  }

  /** Starts node `n`; `nodeArgs`: node flags for this process alone, after BKV_E2E_NODE_ARGS's. */
  private spawn(n: NodeInfo, nodeArgs: readonly string[] = [], env: Readonly<Record<string, string>> = {}): void {
    // The child writes straight to its log file: no pipe through this process to block on.
    const fd = openSync(join(this.dir, `node-${n.id}.log`), "a");
    // BKV_E2E_NODE_ARGS: extra node flags for the children, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof".
    const extra = [...(process.env.BKV_E2E_NODE_ARGS ?? "").split(" ").filter((a) => a !== ""), ...nodeArgs];
    const nodeEntry = this.entry ?? this.opts.nodeEntry;
    const entry = nodeEntry === undefined ? ["--import", "tsx", join(ROOT, "node/server/main.ts")]
      : nodeEntry.endsWith(".ts") ? ["--import", "tsx", nodeEntry] : [nodeEntry];
    const proc = spawn(process.execPath, [...NODE_V8_FLAGS, ...extra, ...entry, "--config", n.configFile], {
      cwd: ROOT, stdio: ["ignore", fd, fd], env: { ...nodeEnv(n.id), ...env },
    });
    closeSync(fd);
    n.proc = proc;
  }

  node(id: number): NodeInfo {
    const n = this.nodes.find((x) => x.id === id);
    if (n === undefined) throw new Error(`no node ${id}`);
    return n;
  }

  /** The node's token PIN (to check that it never leaks). */
  pin(id: number): string {
    return readFileSync(join(this.dir, `hsm-${id}`, "pin"), "utf8").trim();
  }

  /** The node's Prometheus exposition (/metrics). */
  async metricsOf(id: number): Promise<string> {
    const res = await fetch(`http://${this.node(id).metrics}/metrics`);
    return res.text();
  }

  /** The node's log (JSON lines). */
  logOf(id: number): string {
    return readFileSync(join(this.dir, `node-${id}.log`), "utf8");
  }

  /** The operator certificate and key (CN=operator) and the CA, for `bkv admin --certs`. */
  get certsDir(): string {
    return join(this.dir, "certs");
  }

  private creds(): grpc.ChannelCredentials {
    return grpc.credentials.createSsl(readFileSync(join(this.dir, "certs/ca.crt")));
  }

  /** mTLS with the operator's certificate, for the admin ports (a node's own may call only what joining needs: node/server/admin-auth.ts). */
  operatorCreds(): grpc.ChannelCredentials {
    const d = this.certsDir;
    return grpc.credentials.createSsl(readFileSync(join(d, "ca.crt")), readFileSync(join(d, "operator.key")), readFileSync(join(d, "operator.crt")));
  }

  /** The JWKS file the nodes trust (the dev issuer's; tests may rewrite it to rotate keys). */
  get jwksFile(): string {
    return join(this.dir, "dev-issuer.jwks.json");
  }

  /** The node's audit log (JSON lines). */
  auditOf(id: number): string {
    return readFileSync(join(this.dir, `data-${id}`, "audit.log"), "utf8");
  }

  /** The path of the node's audit log. */
  auditFile(id: number): string {
    return join(this.dir, `data-${id}`, "audit.log");
  }

  /** A typed VaultService client for node `id`; `token` (default: the `token` provider: its user's dev token, none when null). */
  vault(id: number, token: TokenProvider | null = this.token) {
    const key = `v${id}-${token === null ? "none" : this.providerId(token)}`;
    return this.cached(key, () => {
      const options = token === null ? RECONNECT_FAST : { ...RECONNECT_FAST, interceptors: [bearerInterceptor(token)] };
      return unaryClient(VaultService, this.node(id).client, this.creds(), options);
    });
  }

  /** A typed AdminService client for node `id` (mTLS with the operator's certificate; node `id`'s is checked as the server's). */
  admin(id: number) {
    return this.cached(`a${id}`, () => unaryClient(AdminService, this.node(id).admin, this.operatorCreds(), { ...RECONNECT_FAST, "grpc.ssl_target_name_override": `node-${id}` }));
  }

  /**
   * One client (one channel, one connection) per node and kind, made on
   * first use and closed by close(): a channel per call would open a TLS
   * connection per call and keep every one open.
   */
  private cached<C>(key: string, make: () => { client: C; channel: grpc.Client }): C {
    const hit = this.clients.get(key);
    if (hit !== undefined) return hit.client as C;
    const made = make();
    this.clients.set(key, made);
    return made.client;
  }

  private providerId(token: TokenProvider): number {
    let n = this.providers.get(token);
    if (n === undefined) this.providers.set(token, (n = this.providers.size + 1));
    return n;
  }

  private deadline(ms = 3000) {
    return { deadline: new Date(Date.now() + ms) };
  }

  /** Waits for one leader known by every running node and every node announced. */
  async waitReady(timeoutMs = 30_000): Promise<number> {
    const running = this.nodes.filter((n) => n.proc !== null);
    return waitFor(async () => {
      const sts = await Promise.all(running.map((n) => this.admin(n.id).getClusterStatus({}, this.deadline())));
      const leaders = new Set(sts.map((s) => Number(s.leaderId)));
      const [lead] = leaders;
      if (leaders.size !== 1 || lead === undefined || lead === 0) return undefined;
      const d = await this.vault(lead).getClusterDescriptor({}, this.deadline());
      return d.descriptor?.nodes.length === this.nodes.length ? lead : undefined;
    }, "a leader and all nodes announced", timeoutMs);
  }

  async leaderId(timeoutMs = 30_000): Promise<number> {
    const running = this.nodes.filter((n) => n.proc !== null);
    return waitFor(async () => {
      for (const n of running) {
        const s = await this.admin(n.id).getClusterStatus({}, this.deadline()).catch(() => undefined);
        if (s !== undefined && Number(s.leaderId) === n.id) return n.id;
      }
      return undefined;
    }, "a leader", timeoutMs);
  }

  /**
   * `call` on the admin port of the node leading now; a NOT_LEADER or
   * NO_LEADER (an election under load meanwhile) sends it to the next
   * leader, until `timeoutMs`.
   */
  onLeader<T>(call: (admin: ReturnType<LocalCluster["admin"]>) => Promise<T>, timeoutMs = 30_000): Promise<T> {
    return whileElecting(async () => call(this.admin(await this.leaderId(timeoutMs))), [ErrorReason.NOT_LEADER, ErrorReason.NO_LEADER], timeoutMs);
  }

  async status(id: number) {
    return this.admin(id).getClusterStatus({}, this.deadline());
  }

  /** Waits until node `id` applied `index`. */
  async waitApplied(id: number, index: number, timeoutMs = 20_000): Promise<void> {
    await waitFor(async () => Number((await this.status(id)).appliedIndex) >= index || undefined, `node ${id} to apply ${index}`, timeoutMs);
  }

  /** The client descriptor, from GetClusterDescriptor, with the CA. */
  async descriptor(): Promise<ClusterDescriptor> {
    const lead = await this.leaderId();
    const res = await this.vault(lead).getClusterDescriptor({}, this.deadline());
    if (res.descriptor === undefined) throw new Error("no descriptor");
    return descriptorFromProto(res.descriptor, readFileSync(join(this.dir, "certs/ca.crt"), "utf8"));
  }

  /** SIGKILL: no graceful shutdown. */
  async kill(id: number): Promise<void> {
    await this.signal(id, "SIGKILL");
  }

  /** SIGTERM: graceful shutdown. */
  async stop(id: number): Promise<void> {
    await this.signal(id, "SIGTERM");
  }

  private async signal(id: number, sig: NodeJS.Signals): Promise<void> {
    const n = this.node(id);
    const proc = n.proc;
    if (proc === null) return;
    n.proc = null;
    if (ended(proc)) return;
    const exited = new Promise((r) => proc.once("exit", r));
    proc.kill(sig);
    await exited;
  }

  /** SIGSTOP: the process freezes (no ticks, no answers) with its state intact, until resume(). */
  pause(id: number): void {
    this.node(id).proc?.kill("SIGSTOP");
  }

  resume(id: number): void {
    this.node(id).proc?.kill("SIGCONT");
  }

  /** Runs nodes (re)started from now on from `entry` (see ClusterOptions.nodeEntry; undefined: this tree). An upgrade. */
  useEntry(entry: string | undefined): void {
    this.entry = entry ?? join(ROOT, "node/server/main.ts");
  }

  /**
   * Starts stopped (or exited) node `id` again; `nodeArgs`: node flags for
   * this start alone (e.g. a profile of one node); `env`: extra environment
   * for it (e.g. libfaketime's).
   */
  restart(id: number, nodeArgs: readonly string[] = [], env: Readonly<Record<string, string>> = {}): void {
    const n = this.node(id);
    if (n.proc !== null && !this.exited(id)) throw new Error(`node ${id} is running`);
    this.spawn(n, nodeArgs, env);
  }

  /** Whether node `id`'s process ended by itself (a fatal error), without stop() or kill(). */
  exited(id: number): boolean {
    const p = this.node(id).proc;
    return p !== null && ended(p);
  }

  async close(): Promise<void> {
    for (const c of this.clients.values()) c.channel.close();
    this.clients.clear();
    await Promise.all(this.nodes.map((n) => this.signal(n.id, "SIGTERM")));
    clusterClosing(this);
    if (process.env.BKV_E2E_KEEP === undefined) rmSync(this.dir, { recursive: true, force: true });
  }
}

/** SDK options of the e2e tests: cheap scrypt, a generous retry deadline (the machine is shared). */
/** Whether `p` has exited, by itself or by a signal. */
function ended(p: ChildProcess): boolean {
  return p.exitCode !== null || p.signalCode !== null;
}

export const E2E_CLIENT_OPTIONS: VaultClientOptions = { scrypt: { N: 1024, r: 8, p: 1 }, retry: { deadlineMs: 20_000 } };

export interface FileCluster {
  cluster: LocalCluster;
  client: VaultClient;
}

/** One cluster and one SDK client for a whole test file: started before its first test, closed (paused nodes resumed) after its last. */
export function clusterForFile(test: TestFn, options: VaultClientOptions = E2E_CLIENT_OPTIONS): FileCluster {
  const f = {} as FileCluster;
  reportLogsOnFailure(test);
  test.before(async () => {
    f.cluster = await LocalCluster.start();
    f.client = new VaultClient(await f.cluster.descriptor(), { ...options, token: f.cluster.token });
  });
  test.after.always(async () => {
    for (const n of f.cluster?.nodes ?? []) f.cluster.resume(n.id);
    f.client?.close();
    await f.cluster?.close();
  });
  return f;
}
