// The k8s chaos target: the bkv StatefulSet of deploy/k8s, driven with kubectl.
//
// - Nodes: the pods labelled POD_LABELS in the namespace; node id = ordinal + 1
//   (docs/kubernetes.md "Node ids"), checked against each node's admin status.
// - Reaching them: one `kubectl port-forward` per pod for the client (7000) and
//   admin (7002) ports, on fixed local ports so that the SDK's descriptor stays
//   valid across pod restarts. A node announcing a loopback address
//   (`localhost:1700N` in the kind overlay) gets that very port when it is free,
//   so that the leader hints the nodes send reach the forward.
// - The SDK's descriptor: fetched from the leader and verified (every entry's
//   identity signature covers its announced address), then its addresses are
//   rewritten to the forwarded 127.0.0.1 ports. The SDK checks the server
//   certificate against the address's host, and make-certs.sh puts IP:127.0.0.1
//   in every node certificate, so TLS stays verified. The rewritten descriptor
//   is for this process only (its signatures no longer match its addresses).
// - Faults: kill = `kubectl delete pod --grace-period=0 --force` (the
//   StatefulSet recreates the pod; restart = wait for the new pod, forward
//   again); with Chaos Mesh, partitions and latency are NetworkChaos objects
//   (chaos-mesh.ts) applied with kubectl and deleted to heal.
// - Logs: `kubectl logs -f` per pod into OUT/cluster/node-N.log (forward.ts).
import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { type ClusterDescriptor, type TokenProvider, descriptorFromProto } from "../../client/sdk/index.js";
import { DEV_KEY_FILE, devTokenProvider, loadDevIssuer } from "../../client/cli/dev-issuer.js";
import { adminChannel, freePort, nodeStatus, readRecordVia, sleep, vaultChannel, waitFor } from "../net.js";
import type { FaultKind } from "../nemesis.js";
import type { PartitionSpec } from "../partitions.js";
import type { ChaosTarget, NodeRecord, NodeStatus, TargetFaults } from "../target.js";
import { latencyManifest, partitionManifests, POD_LABELS, RUN_LABEL, validateChaosObject, type ChaosObject, type ManifestContext } from "./chaos-mesh.js";
import { LogFollower, PortForward, type PodState } from "./forward.js";
import { DOC, Kubectl, KubectlError } from "./kubectl.js";

export const CLIENT_PORT = 7000;
export const ADMIN_PORT = 7002;
const CONTAINER = "bkv-node";
/** The longest fault window of the nemesis (randomFault's downMs); bounds a NetworkChaos's own duration. */
const MAX_FAULT_MS = 3000;

export const BASE_KINDS: readonly FaultKind[] = ["kill", "kill-minority", "recovery-kill"];
export const CHAOS_MESH_KINDS: readonly FaultKind[] = [...BASE_KINDS, "partition", "latency"];

export interface K8sTargetOptions {
  namespace: string;
  context?: string | undefined;
  /** CA and node certificates (deploy/k8s/make-secrets.sh's CERT_DIR, default data/k8s-certs). */
  certsDir: string;
  chaosMesh: boolean;
  /** Node logs go to `<logDir>/node-N.log`. */
  logDir: string;
  /** Labels the NetworkChaos objects of this run (RUN_LABEL). */
  runId: string;
  log?: (line: string) => void;
  /** Injected by tests (a fake kubectl on PATH); default: kubectl with namespace and context. */
  kubectl?: Kubectl;
  /** How long a replaced pod may take to be Running again (default 180 s). */
  podTimeoutMs?: number;
}

interface PodNode {
  id: number;
  pod: string;
  clientPort: number;
  adminPort: number;
  forward: PortForward;
  logs: LogFollower;
  /** The uid of the pod deleted by the last kill, while its replacement is not forwarded yet. */
  killedUid: string | undefined;
}

interface PodJson {
  metadata: { name: string; uid: string; labels?: Record<string, string> };
  status?: { phase?: string };
}

const labelSelector = (): string => Object.entries(POD_LABELS).map(([k, v]) => `${k}=${v}`).join(",");

/** Whether kubectl failed because the object it was asked about does not exist. */
function isNotFound(err: unknown): err is KubectlError {
  return err instanceof KubectlError && /NotFound|not found/i.test(err.stderr);
}

/** The ordinal of a StatefulSet pod name (`bkv-2` → 2), or undefined. */
export function podOrdinal(name: string): number | undefined {
  const m = /-(\d+)$/.exec(name);
  return m === null ? undefined : Number(m[1]);
}

/** The first checks, each failing with what to run (kubectl, cluster, namespace, pods, Chaos Mesh). Returns the pods. */
export async function preflight(k: Kubectl, o: { namespace: string; chaosMesh: boolean }): Promise<PodJson[]> {
  await k.run(["version", "--client", "-o", "json"]);
  try {
    await k.run(["get", "namespace", o.namespace, "-o", "name"]);
  } catch (err) {
    if (isNotFound(err))
      throw new KubectlError(`namespace ${o.namespace} does not exist (${k.where()}): deploy bkv with \`kubectl apply -k deploy/k8s/overlays/kind\` as in ${DOC}, or pass --namespace`);
    throw err;
  }
  const list = JSON.parse(await k.run(["get", "pods", "-l", labelSelector(), "-o", "json"])) as { items?: PodJson[] };
  const pods = (list.items ?? []).filter((p) => podOrdinal(p.metadata.name) !== undefined);
  if (pods.length === 0)
    throw new KubectlError(`no bkv pods (labels ${labelSelector()}) in namespace ${o.namespace} (${k.where()}): deploy with \`kubectl apply -k deploy/k8s/overlays/kind\` (${DOC})`);
  if (pods.length < 3) throw new KubectlError(`the nemesis needs at least 3 bkv pods, found ${pods.length} in namespace ${o.namespace}`);
  const notRunning = pods.filter((p) => p.status?.phase !== "Running");
  if (notRunning.length > 0)
    throw new KubectlError(`bkv pods not running: ${notRunning.map((p) => `${p.metadata.name} ${p.status?.phase ?? "?"}`).join(", ")}; wait with \`kubectl -n ${o.namespace} rollout status statefulset/bkv\` (${DOC})`);
  if (o.chaosMesh) {
    try {
      await k.run(["get", "crd", "networkchaos.chaos-mesh.org", "-o", "name"]);
    } catch (err) {
      if (isNotFound(err))
        throw new KubectlError(`Chaos Mesh is not installed (no CRD networkchaos.chaos-mesh.org): install it with helm as in ${DOC} "Chaos Mesh", or run without --chaos-mesh`);
      throw err;
    }
  }
  return pods.sort((a, b) => podOrdinal(a.metadata.name)! - podOrdinal(b.metadata.name)!);
}

/** Checks that the CA and each node's certificate and key are in `dir`. */
export function checkCerts(dir: string, ids: readonly number[]): void {
  const missing = ["ca.crt", ...ids.flatMap((id) => [`node-${id}.crt`, `node-${id}.key`])].filter((f) => !existsSync(join(dir, f)));
  if (missing.length > 0)
    throw new KubectlError(`missing ${missing.join(", ")} in ${dir}: the harness needs the CA and node certificates that deploy/k8s/make-secrets.sh made for this cluster (pass --certs DIR; ${DOC})`);
}

/** Whether 127.0.0.1:port can be listened on now. */
async function portFree(port: number): Promise<boolean> {
  const { createServer } = await import("node:net");
  return new Promise((res) => {
    const s = createServer();
    s.once("error", () => res(false));
    s.listen(port, "127.0.0.1", () => s.close(() => res(true)));
  });
}

export class K8sTarget implements ChaosTarget {
  readonly faultKinds: readonly FaultKind[];
  readonly faults: TargetFaults;
  private readonly nodes: PodNode[] = [];
  private readonly ca: Buffer;
  private seq = 0;
  private sdkDescriptor: ClusterDescriptor | undefined;
  /** Tokens minted with the development issuer key make-secrets.sh left in the certificates directory, when there is one. */
  token: TokenProvider | undefined;
  private readonly log: (line: string) => void;

  /** connect() is the way in; a target made here knows no pods until register() (tests use it with a fake kubectl). */
  constructor(readonly k: Kubectl, readonly o: K8sTargetOptions) {
    this.faultKinds = o.chaosMesh ? CHAOS_MESH_KINDS : BASE_KINDS;
    this.ca = readFileSync(join(o.certsDir, "ca.crt"));
    this.log = o.log ?? (() => {});
    this.faults = {
      killNode: (id) => this.kill(id),
      restartNode: (id) => this.restart(id),
      pause: async () => this.unsupported("pause"),
      resume: async () => {}, // nothing is ever paused here
      partition: (spec) => this.partition(spec),
      setLatency: (ms) => this.setLatency(ms),
      resetLinks: async () => this.unsupported("reset-links"),
      heal: () => this.heal(),
    };
  }

  /** Checks the cluster, forwards every pod and waits for a leader. Throws KubectlError with what to do. */
  static async connect(o: K8sTargetOptions): Promise<K8sTarget> {
    const k = o.kubectl ?? new Kubectl({ namespace: o.namespace, context: o.context });
    const pods = await preflight(k, o);
    checkCerts(o.certsDir, pods.map((p) => podOrdinal(p.metadata.name)! + 1));
    const t = new K8sTarget(k, o);
    const devKey = join(o.certsDir, DEV_KEY_FILE);
    if (existsSync(devKey)) t.token = devTokenProvider(await loadDevIssuer(devKey));
    try {
      t.register(pods);
      await t.attach();
      return t;
    } catch (err) {
      await t.close();
      throw err;
    }
  }

  get name(): string {
    return `k8s namespace ${this.o.namespace} (${this.nodes.length} pods${this.o.chaosMesh ? ", Chaos Mesh" : ""})`;
  }

  get ids(): number[] {
    return this.nodes.map((n) => n.id);
  }

  private node(id: number): PodNode {
    const n = this.nodes.find((x) => x.id === id);
    if (n === undefined) throw new Error(`no node ${id}`);
    return n;
  }

  /** Makes a node of each pod (id = ordinal + 1) with its local ports; starts nothing. */
  register(pods: readonly { metadata: { name: string } }[], ports: (id: number) => [number, number] = () => [0, 0]): void {
    mkdirSync(this.o.logDir, { recursive: true });
    for (const p of pods) {
      const pod = p.metadata.name;
      const ordinal = podOrdinal(pod);
      if (ordinal === undefined) throw new Error(`pod ${pod} has no ordinal`);
      const id = ordinal + 1;
      const [clientPort, adminPort] = ports(id);
      const logs = new LogFollower(this.k, pod, CONTAINER, join(this.o.logDir, `node-${id}.log`), (name) => this.podState(name));
      this.nodes.push({ id, pod, clientPort, adminPort, forward: this.forwardOf(pod, clientPort, adminPort), logs, killedUid: undefined });
    }
  }

  /** A (not started) port-forward of `pod`'s client and admin ports to the given local ports. */
  private forwardOf(pod: string, clientPort: number, adminPort: number): PortForward {
    return new PortForward(this.k, pod, [[clientPort, CLIENT_PORT], [adminPort, ADMIN_PORT]], this.log);
  }

  /** Picks free local ports, forwards every pod, checks the ids, waits for a leader, fetches the descriptor. */
  private async attach(): Promise<void> {
    for (const n of this.nodes) {
      [n.clientPort, n.adminPort] = [await freePort(), await freePort()];
      n.forward = this.forwardOf(n.pod, n.clientPort, n.adminPort);
    }
    for (const n of this.nodes) {
      await n.forward.start();
      n.logs.start();
    }
    for (const n of this.nodes) {
      const st = await waitFor(() => this.status(n.id), `node ${n.id} (pod ${n.pod}) to answer on its admin port`, 60_000).catch((err: Error) => {
        throw new KubectlError(`pod ${n.pod} does not answer as node ${n.id} (node id = ordinal + 1; certificates from ${this.o.certsDir}): ${err.message}`);
      });
      if (st.nodeId !== n.id) throw new KubectlError(`pod ${n.pod} is node ${st.nodeId}, expected ${n.id}: the harness needs id = ordinal + 1 (no BKV_NODE_IDS)`);
    }
    const lead = await this.waitReady(120_000);
    const announced = await this.fetchDescriptor(lead);
    await this.adoptAnnouncedPorts(announced);
    this.sdkDescriptor = this.rewrite(announced);
  }

  /** The leader's descriptor, with every entry's signature verified (over the announced addresses). */
  private async fetchDescriptor(lead: number): Promise<ClusterDescriptor> {
    const v = vaultChannel(`127.0.0.1:${this.node(lead).clientPort}`, this.ca, `node-${lead}`, this.token);
    try {
      const res = await v.client.getClusterDescriptor({}, { deadline: new Date(Date.now() + 5000) });
      if (res.descriptor === undefined) throw new Error(`node ${lead} answered no descriptor`);
      return descriptorFromProto(res.descriptor, this.ca.toString("utf8"));
    } finally {
      v.close();
    }
  }

  /** Moves a node's client forward to the loopback port its descriptor entry announces, when that port is free. */
  private async adoptAnnouncedPorts(d: ClusterDescriptor): Promise<void> {
    for (const entry of d.nodes) {
      const n = this.nodes.find((x) => x.id === entry.nodeId);
      if (n === undefined) throw new KubectlError(`the descriptor names node ${entry.nodeId}, which is no pod of namespace ${this.o.namespace}`);
      const m = /^(localhost|127\.0\.0\.1):(\d+)$/.exec(entry.address);
      const port = m === null ? undefined : Number(m[2]);
      if (port === undefined || port === n.clientPort) continue;
      if (!(await portFree(port))) {
        this.log(`node ${n.id} announces ${entry.address} but that port is taken here (another port-forward?): using ${n.clientPort}; leader hints to ${entry.address} will miss`);
        continue;
      }
      await n.forward.stop();
      n.clientPort = port;
      n.forward = this.forwardOf(n.pod, n.clientPort, n.adminPort);
      await n.forward.start();
    }
  }

  private rewrite(d: ClusterDescriptor): ClusterDescriptor {
    return { ...d, nodes: d.nodes.map((e) => ({ ...e, address: `127.0.0.1:${this.node(e.nodeId).clientPort}` })) };
  }

  async descriptor(): Promise<ClusterDescriptor> {
    if (this.sdkDescriptor === undefined) throw new Error("not attached");
    return this.sdkDescriptor;
  }

  readRecord(node: number, user: string): Promise<NodeRecord | null> {
    const n = this.node(node);
    return readRecordVia(vaultChannel(`127.0.0.1:${n.clientPort}`, this.ca, `node-${n.id}`, this.token), user);
  }

  async status(node: number, timeoutMs = 3000, withDigest = false): Promise<NodeStatus> {
    const n = this.node(node);
    const a = adminChannel(`127.0.0.1:${n.adminPort}`, this.o.certsDir, n.id);
    try {
      return nodeStatus(await a.client.getClusterStatus({ includeStateDigest: withDigest }, { deadline: new Date(Date.now() + timeoutMs) }));
    } finally {
      a.close();
    }
  }

  /** The nodes whose pod was not killed (or was forwarded again since). */
  private up(): PodNode[] {
    return this.nodes.filter((n) => n.killedUid === undefined);
  }

  async leader(): Promise<number | undefined> {
    const sts = await Promise.all(this.up().map((n) => this.status(n.id).catch(() => undefined)));
    const self = sts.find((s) => s !== undefined && s.leaderId === s.nodeId);
    return self?.nodeId;
  }

  waitReady(timeoutMs: number): Promise<number> {
    return waitFor(async () => {
      const sts = await Promise.all(this.up().map((n) => this.status(n.id)));
      const leaders = new Set(sts.map((s) => s.leaderId));
      const [lead] = leaders;
      return leaders.size === 1 && lead !== undefined && lead !== 0 ? lead : undefined;
    }, "a leader known by every running pod", timeoutMs);
  }

  /** The pod's uid and phase (undefined when it does not exist). */
  async podState(pod: string): Promise<PodState> {
    try {
      const p = JSON.parse(await this.k.run(["get", "pod", pod, "-o", "json"], { timeoutMs: 15_000 })) as PodJson;
      return { uid: p.metadata.uid, phase: p.status?.phase ?? "Unknown" };
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  /** Force-deletes the node's pod (no grace period: like SIGKILL); the StatefulSet creates a new one. */
  private async kill(id: number): Promise<void> {
    const n = this.node(id);
    if (n.killedUid !== undefined) return;
    const st = await this.podState(n.pod);
    await n.forward.stop();
    n.killedUid = st?.uid ?? "";
    await this.k.run(["delete", "pod", n.pod, "--grace-period=0", "--force", "--wait=false"]);
  }

  /** Waits for the replacement pod to run, then forwards to it again. */
  private async restart(id: number): Promise<void> {
    const n = this.node(id);
    if (n.killedUid === undefined) return;
    const old = n.killedUid;
    await waitFor(async () => {
      const st = await this.podState(n.pod);
      return st !== undefined && st.uid !== old && st.phase === "Running" ? true : undefined;
    }, `pod ${n.pod} to be replaced and running`, this.o.podTimeoutMs ?? 180_000);
    await waitFor(async () => {
      await n.forward.start();
      return true;
    }, `a port-forward to the new pod ${n.pod}`, 60_000);
    n.killedUid = undefined;
  }

  private unsupported(kind: FaultKind): never {
    throw new Error(`fault ${kind} is not supported by the k8s target (${DOC})`);
  }

  private context(): ManifestContext {
    return { namespace: this.o.namespace, runId: this.o.runId, podOf: (id) => this.node(id).pod, seq: ++this.seq };
  }

  private async partition(spec: PartitionSpec): Promise<void> {
    if (!this.o.chaosMesh) this.unsupported("partition");
    await this.apply(partitionManifests(this.context(), this.ids, spec, MAX_FAULT_MS));
  }

  private async setLatency(ms: number): Promise<void> {
    if (!this.o.chaosMesh) this.unsupported("latency");
    await this.apply([latencyManifest(this.context(), this.ids, ms, MAX_FAULT_MS)]);
  }

  /** kubectl apply of validated objects (one List on stdin). */
  private async apply(objects: readonly ChaosObject[]): Promise<void> {
    for (const o of objects) {
      const errors = validateChaosObject(o);
      if (errors.length > 0) throw new Error(`invalid ${o.kind} ${o.metadata.name}: ${errors.join("; ")}`);
    }
    if (objects.length === 0) return;
    await this.k.run(["apply", "-f", "-"], { input: JSON.stringify({ apiVersion: "v1", kind: "List", items: objects }) });
  }

  /** Deletes this run's NetworkChaos objects (Chaos Mesh then removes the injected rules). */
  private async heal(): Promise<void> {
    if (!this.o.chaosMesh) return;
    await this.k.run(["delete", "networkchaos", "-l", `${RUN_LABEL}=${this.o.runId}`, "--ignore-not-found", "--wait=true", "--timeout=60s"], { timeoutMs: 90_000 });
  }

  async restoreAll(): Promise<void> {
    await this.heal();
    for (const n of this.nodes) await this.restart(n.id);
  }

  async logs(): Promise<Map<number, string>> {
    await sleep(1000); // let the followers write what kubectl already sent
    const out = new Map<number, string>();
    for (const n of this.nodes) {
      // A container restarted in place (liveness) leaves its previous log; lines may repeat the follower's.
      const previous = await this.k.run(["logs", `pod/${n.pod}`, "-c", CONTAINER, "--previous"], { timeoutMs: 30_000 }).catch(() => "");
      out.set(n.id, `${readText(n.logs.file)}\n${previous}`);
    }
    return out;
  }

  progressNote(): string {
    return `port-forwards started: ${this.nodes.reduce((s, n) => s + n.forward.starts, 0)}`;
  }

  /** Deletes this run's chaos objects and stops every kubectl child. */
  async close(): Promise<void> {
    await this.heal().catch((err: Error) => this.log(`could not delete this run's NetworkChaos objects (they end by themselves within ${MAX_FAULT_MS / 1000 + 60} s): ${err.message}`));
    await Promise.all(this.nodes.map(async (n) => {
      await n.forward.stop();
      await n.logs.stop();
    }));
    await this.k.close();
  }

  killAllSync(): number {
    return this.k.killAllSync();
  }
}

function readText(file: string): string {
  try {
    return readFileSync(file, "utf8");
  } catch {
    return "";
  }
}
