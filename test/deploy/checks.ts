// Offline checks of the deploy/k8s manifests: Kubernetes schema validation
// (kubernetes-models v4) and the bkv invariants. Each check returns a list of
// problems (empty: passes), so tests can feed crafted broken objects and
// expect the right complaint. No cluster is needed: `kubectl kustomize` only
// renders.
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { parseAllDocuments } from "yaml";
import { ConfigMap } from "kubernetes-models/v1/ConfigMap";
import { Namespace } from "kubernetes-models/v1/Namespace";
import { Service } from "kubernetes-models/v1/Service";
import { ServiceAccount } from "kubernetes-models/v1/ServiceAccount";
import { StatefulSet } from "kubernetes-models/apps/v1/StatefulSet";
import { PodDisruptionBudget } from "kubernetes-models/policy/v1/PodDisruptionBudget";
import { NetworkPolicy } from "kubernetes-models/networking.k8s.io/v1/NetworkPolicy";
import { parser as promql } from "@prometheus-io/lezer-promql";
import { Histogram } from "prom-client";
import { Metrics } from "../../node/server/metrics.js";
import { CONFIG_ENV_VARIABLES } from "../../node/server/config.js";
import { DEFAULT_DOWNLOAD_LIMITS } from "../../node/server/snapshot-download.js";
import { DEFAULT_SEGMENT_BYTES } from "../../node/storage/wal.js";

/** A rendered Kubernetes object, loosely typed: checks must survive any shape. */
export type K8sObject = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

export const PEER_PORT = 7001;
export const ADMIN_PORT = 7002;
export const VAULT_CONTAINER = "bkv-node";
export const TOKEN_DIR = "/var/lib/bkv/hsm";
const SERVICE_MONITOR = "monitoring.coreos.com/v1:ServiceMonitor";
const PROMETHEUS_RULE = "monitoring.coreos.com/v1:PrometheusRule";

/** Renders deploy/k8s/overlays/NAME with kubectl's built-in kustomize. */
export function renderOverlay(name: string): K8sObject[] {
  let out: string;
  try {
    out = execFileSync("kubectl", ["kustomize", `deploy/k8s/overlays/${name}`], { encoding: "utf8", maxBuffer: 16 << 20, stdio: ["ignore", "pipe", "pipe"] });
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { stderr?: string };
    if (e.code === "ENOENT") throw new Error("kubectl not found: test/deploy needs kubectl on PATH (it only renders; no cluster is used)");
    throw new Error(`kubectl kustomize deploy/k8s/overlays/${name} failed: ${e.stderr ?? e.message}`);
  }
  return parseStream(out);
}

export function parseStream(text: string): K8sObject[] {
  return parseAllDocuments(text).map((doc, i) => {
    if (doc.errors.length > 0) throw new Error(`document ${i}: ${doc.errors[0]?.message}`);
    return doc.toJS() as K8sObject;
  }).filter((o) => o !== null);
}

type ModelClass = new (data: any) => { validate(): void }; // eslint-disable-line @typescript-eslint/no-explicit-any
const MODELS: ReadonlyMap<string, ModelClass> = new Map<string, ModelClass>([
  ["v1:ConfigMap", ConfigMap], ["v1:Namespace", Namespace], ["v1:Service", Service],
  ["v1:ServiceAccount", ServiceAccount], ["apps/v1:StatefulSet", StatefulSet],
  ["policy/v1:PodDisruptionBudget", PodDisruptionBudget], ["networking.k8s.io/v1:NetworkPolicy", NetworkPolicy],
]);

const ref = (o: K8sObject) => `${o.kind}/${o.metadata?.name}`;

/** Validates every object against its schema; an unknown kind is a problem. */
export function schemaProblems(objects: readonly K8sObject[]): string[] {
  const problems: string[] = [];
  for (const o of objects) {
    const key = `${o.apiVersion}:${o.kind}`;
    const Model = MODELS.get(key);
    if (Model !== undefined) {
      try {
        new Model(o).validate();
      } catch (err) {
        problems.push(`${ref(o)}: schema: ${(err as Error).message}`);
      }
    } else if (key === SERVICE_MONITOR) {
      problems.push(...serviceMonitorProblems(o));
    } else if (key === PROMETHEUS_RULE) {
      problems.push(...prometheusRuleProblems(o));
    } else {
      problems.push(`${ref(o)}: no schema known for ${key}`);
    }
  }
  return problems;
}

/** prometheus-operator CRDs are not in kubernetes-models: the fields bkv relies on. */
function serviceMonitorProblems(o: K8sObject): string[] {
  const eps = o.spec?.endpoints;
  if (typeof o.spec?.selector?.matchLabels !== "object" || !Array.isArray(eps) || eps.length === 0) {
    return [`${ref(o)}: schema: needs spec.selector.matchLabels and spec.endpoints`];
  }
  return eps.some((e: K8sObject) => e.port !== "metrics" || e.path !== "/metrics") ? [`${ref(o)}: endpoints must scrape port metrics at /metrics`] : [];
}

/**
 * The fields of a PrometheusRule that Prometheus needs, each rule's PromQL
 * parsed (the Prometheus project's own grammar, @prometheus-io/lezer-promql),
 * and every metric it names one that a bkv node exports (node/server/metrics.ts).
 */
export function prometheusRuleProblems(o: K8sObject): string[] {
  const groups = o.spec?.groups;
  if (!Array.isArray(groups) || groups.length === 0) return [`${ref(o)}: schema: needs spec.groups`];
  const problems: string[] = [];
  for (const g of groups as K8sObject[]) {
    if (typeof g.name !== "string" || !Array.isArray(g.rules) || g.rules.length === 0) problems.push(`${ref(o)}: schema: each group needs a name and rules`);
    for (const r of (g.rules ?? []) as K8sObject[]) problems.push(...ruleProblems(r).map((p) => `${ref(o)}: rule ${r.alert ?? "?"}: ${p}`));
  }
  return problems;
}

function ruleProblems(r: K8sObject): string[] {
  const problems: string[] = [];
  if (typeof r.alert !== "string" || !/^[A-Z][A-Za-z0-9]+$/.test(r.alert)) problems.push("alert must be a CamelCase name");
  if (r.for !== undefined && !/^\d+[smh]$/.test(String(r.for))) problems.push(`for must be a duration like 5m (got ${JSON.stringify(r.for)})`);
  if (!["critical", "warning"].includes(r.labels?.severity)) problems.push("labels.severity must be critical or warning");
  if (typeof r.annotations?.summary !== "string" || typeof r.annotations?.description !== "string") problems.push("needs annotations.summary and annotations.description");
  if (typeof r.expr !== "string") return [...problems, "expr must be a string"];
  const { error, metrics } = parsePromQL(r.expr);
  if (error !== null) problems.push(`expr does not parse at ${JSON.stringify(error)}`);
  for (const m of metrics) if (!exportedMetrics().has(m) && !PROMETHEUS_SERIES.has(m)) problems.push(`expr names ${m}, which no bkv node exports`);
  return problems;
}

/** The first unparsable part of `expr` (null: it parses) and the metric names it uses. */
export function parsePromQL(expr: string): { error: string | null; metrics: string[] } {
  let error: string | null = null;
  const metrics: string[] = [];
  promql.parse(expr).iterate({
    enter: (n) => {
      if (n.type.isError && error === null) error = expr.slice(Math.max(0, n.from - 10), n.to + 10) || expr;
      if (n.name === "Identifier") metrics.push(expr.slice(n.from, n.to));
    },
  });
  return { error, metrics };
}

/** Series Prometheus writes itself for every scrape target (`up`: 1 when the last scrape succeeded). */
const PROMETHEUS_SERIES: ReadonlySet<string> = new Set(["up"]);

let exported: Set<string> | undefined;

/** Names of the series a node's /metrics shows (histograms with their suffixes). */
function exportedMetrics(): Set<string> {
  if (exported !== undefined) return exported;
  const m = new Metrics(() => null, {});
  exported = new Set(m.registry.getMetricsAsArray().flatMap((x) => {
    const name = x.name;
    return x instanceof Histogram ? [`${name}_bucket`, `${name}_sum`, `${name}_count`] : [name];
  }));
  return exported;
}

/** Every bkv invariant over one rendered overlay. */
export function invariantProblems(objects: readonly K8sObject[]): string[] {
  const sets = objects.filter((o) => o.kind === "StatefulSet");
  if (sets.length !== 1) return [`expected exactly one StatefulSet, found ${sets.length}`];
  const sts = sets[0] as K8sObject;
  const config = nodeConfig(objects);
  return [
    ...replicaProblems(sts),
    ...(config === null ? ["no ConfigMap holds config.json"] : configProblems(config, sts, objects)),
    ...(config === null ? [] : authProblems(config, sts)),
    ...tokenVolumeProblems(sts),
    ...pinProblems(objects),
    ...securityProblems(sts),
    ...probeProblems(sts),
    ...pdbProblems(sts, objects),
    ...networkPolicyProblems(sts, objects),
    ...envProblems(sts),
    ...(config === null ? [] : dataVolumeProblems(sts, config)),
  ];
}

const INIT_SCRIPT = "deploy/k8s/base/init-node.sh";

/**
 * Every BKV_* variable the manifests set is one its reader reads: bkv-node's
 * config (node/server/config.ts) for the vault container, init-node.sh for the
 * init container. A misspelt name is silently ignored by both.
 */
function envProblems(sts: K8sObject): string[] {
  const script = readFileSync(INIT_SCRIPT, "utf8");
  const problems: string[] = [];
  for (const c of allContainers(sts)) {
    const isVault = c.name === VAULT_CONTAINER;
    for (const e of (c.env ?? []) as K8sObject[]) {
      const name = String(e.name);
      if (!name.startsWith("BKV_")) continue;
      const read = isVault ? CONFIG_ENV_VARIABLES.includes(name) : new RegExp(`\\$\\{${name}[:}]`).test(script);
      if (!read) problems.push(`${c.name}: env ${name} is read by nothing (${isVault ? "node/server/config.ts" : INIT_SCRIPT} knows no such variable)`);
    }
  }
  return problems;
}

/** Bytes of a Kubernetes quantity ("256Mi", "10Gi", "1G", "500M"); NaN when it is not one. */
export function quantityBytes(q: unknown): number {
  const m = /^(\d+(?:\.\d+)?)(Ki|Mi|Gi|Ti|k|M|G|T)?$/.exec(String(q));
  if (m === null) return NaN;
  const unit = { Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40, k: 1e3, M: 1e6, G: 1e9, T: 1e12 }[m[2] ?? ""] ?? 1;
  return Number(m[1]) * unit;
}

/**
 * The data volume must be able to take a snapshot download at all: a download
 * is ended while the file system has under snapshotDownload.diskReserveBytes
 * available (node/server/snapshot-download.ts), and the WAL's open segment
 * (up to DEFAULT_SEGMENT_BYTES) lies beside it. A volume no larger than both
 * ends every download at its first check (reason `disk`): a node that fell
 * behind the log's tail, or a new node, can never catch up.
 */
function dataVolumeProblems(sts: K8sObject, config: K8sObject): string[] {
  const data = ((sts.spec?.volumeClaimTemplates ?? []) as K8sObject[]).find((t) => t.metadata?.name === "data");
  if (data === undefined) return [];
  const size = quantityBytes(data.spec?.resources?.requests?.storage);
  const reserve = Number(config.snapshotDownload?.diskReserveBytes ?? DEFAULT_DOWNLOAD_LIMITS.diskReserveBytes);
  const floor = reserve + DEFAULT_SEGMENT_BYTES;
  if (!(size > floor)) {
    return [`data volume ${data.spec?.resources?.requests?.storage} is not above snapshotDownload.diskReserveBytes (${reserve / 2 ** 20} MiB) + a WAL segment (${DEFAULT_SEGMENT_BYTES / 2 ** 20} MiB): every snapshot download would be ended for disk space`];
  }
  return [];
}

/**
 * The pod's QoS class as the kubelet computes it (init containers included):
 * Guaranteed when every container has cpu and memory limits and its requests
 * (defaulting to the limits) equal them; BestEffort with no requests or limits.
 */
export function podQosClass(sts: K8sObject): "Guaranteed" | "Burstable" | "BestEffort" {
  const containers = allContainers(sts);
  const any = containers.some((c) => Object.keys(c.resources?.requests ?? {}).length + Object.keys(c.resources?.limits ?? {}).length > 0);
  if (!any) return "BestEffort";
  const guaranteed = containers.every((c) => ["cpu", "memory"].every((r) => {
    const limit = c.resources?.limits?.[r];
    const request = c.resources?.requests?.[r] ?? limit;
    const amount = (q: unknown) => (r === "cpu" && /^\d+m$/.test(String(q)) ? Number.parseInt(String(q), 10) / 1000 : quantityBytes(q));
    return limit !== undefined && amount(request) === amount(limit);
  }));
  return guaranteed ? "Guaranteed" : "Burstable";
}

export function nodeConfig(objects: readonly K8sObject[]): K8sObject | null {
  const cm = objects.find((o) => o.kind === "ConfigMap" && typeof o.data?.["config.json"] === "string");
  return cm === undefined ? null : (JSON.parse(cm.data["config.json"] as string) as K8sObject);
}

function replicaProblems(sts: K8sObject): string[] {
  const n = sts.spec?.replicas;
  const problems: string[] = [];
  if (!Number.isSafeInteger(n) || n < 3 || n % 2 === 0) problems.push(`replicas must be odd and at least 3 (got ${n})`);
  if (sts.spec?.podManagementPolicy !== "Parallel") {
    problems.push("podManagementPolicy must be Parallel (readiness needs a leader, so OrderedReady never starts pod 1)");
  }
  return problems;
}

/**
 * The config must list exactly the pods' node ids (ordinal + 1) at their
 * stable peer names, and the threshold t must be a majority that survives
 * the PDB's voluntary disruptions: floor(n/2) + 1 <= t <= n - maxUnavailable.
 */
function configProblems(config: K8sObject, sts: K8sObject, objects: readonly K8sObject[]): string[] {
  const n = sts.spec?.replicas as number;
  const problems: string[] = [];
  const nodes = Array.isArray(config.nodes) ? (config.nodes as K8sObject[]) : [];
  const ordinalOf = new Map(podIds(sts, n).map((id, ordinal) => [id, ordinal]));
  const ids = nodes.map((x) => x.id).sort((a, b) => a - b);
  const want = [...ordinalOf.keys()].sort((a, b) => a - b);
  if (ids.join(",") !== want.join(",")) problems.push(`config nodes must be ids [${want.join(",")}] (one per replica), got [${ids.join(",")}]`);
  const service = sts.spec?.serviceName;
  for (const x of nodes) {
    const pod = `${sts.metadata?.name}-${ordinalOf.get(x.id)}`;
    if (typeof x.peerAddress !== "string" || !x.peerAddress.startsWith(`${pod}.${service}`)) {
      problems.push(`node ${x.id}: peerAddress ${x.peerAddress} is not the stable name of pod ${pod}`);
    }
    if (typeof x.adminAddress !== "string" || !x.adminAddress.startsWith(`${pod}.${service}`) || !x.adminAddress.endsWith(`:${ADMIN_PORT}`)) {
      problems.push(`node ${x.id}: adminAddress ${x.adminAddress} is not pod ${pod}'s admin port (a node added later joins through it)`);
    }
  }
  const voters = Number(initEnv(sts, "BKV_BOOTSTRAP_VOTERS"));
  if (!Number.isSafeInteger(voters) || voters < 1 || voters > n) problems.push(`init env BKV_BOOTSTRAP_VOTERS must be 1..${n} (got ${initEnv(sts, "BKV_BOOTSTRAP_VOTERS")})`);
  if (config.join !== undefined) problems.push("the shared config must not set join (derived per node)");
  const t = config.threshold;
  const f = maxUnavailable(objects);
  if (!Number.isSafeInteger(t) || t < Math.floor(n / 2) + 1) problems.push(`threshold ${t} is not a majority of ${n}`);
  else if (t > n - f) problems.push(`threshold ${t} > ${n} - ${f}: a PDB disruption could block recoveries`);
  if (config.nodeId !== undefined) problems.push("the shared config must not fix nodeId (derived from the pod ordinal)");
  return problems;
}

/**
 * Client authentication cannot be turned off by these manifests: the config
 * names at least one issuer whose JWKS file lies in a ConfigMap or Secret
 * volume the vault container mounts whole (a subPath mount would never see a
 * key rotation), and nothing sets auth.disabled.
 */
function authProblems(config: K8sObject, sts: K8sObject): string[] {
  const auth = config.auth as K8sObject | undefined;
  if (auth === undefined) return ["config must set auth (client authentication) with issuers and their JWKS files"];
  if (auth.disabled !== undefined) return ["config must not set auth.disabled: client authentication is always on in these manifests"];
  const issuers = Array.isArray(auth.issuers) ? (auth.issuers as K8sObject[]) : [];
  if (issuers.length === 0) return ["config auth.issuers must name at least one issuer and its jwksFile"];
  const volumes = new Map(((podSpec(sts).volumes ?? []) as K8sObject[]).map((v) => [v.name as string, v]));
  const mounts = ((vaultContainer(sts)?.volumeMounts ?? []) as K8sObject[]).filter((m) => {
    const v = volumes.get(m.name);
    return v?.configMap !== undefined || v?.secret !== undefined;
  });
  const problems: string[] = [];
  for (const i of issuers) {
    const file = String(i.jwksFile);
    const m = mounts.find((x) => file === x.mountPath || file.startsWith(`${String(x.mountPath).replace(/\/$/, "")}/`));
    if (m === undefined) problems.push(`issuer ${i.issuer}: jwksFile ${file} is not in a ConfigMap or Secret volume of the ${VAULT_CONTAINER} container`);
    else if (m.subPath !== undefined) problems.push(`issuer ${i.issuer}: the volume of ${file} is mounted with subPath: key rotations would never reach the node`);
  }
  return problems;
}

function initEnv(sts: K8sObject, name: string): string | undefined {
  const init = (podSpec(sts).initContainers ?? []) as K8sObject[];
  return init.flatMap((c) => (c.env ?? []) as K8sObject[]).find((e) => e.name === name)?.value;
}

/** The node id of each ordinal 0..n-1, as init-node.sh derives it (ordinal + 1 unless BKV_NODE_IDS maps it). */
export function podIds(sts: K8sObject, n: number): number[] {
  const map = new Map<number, number>();
  for (const pair of (initEnv(sts, "BKV_NODE_IDS") ?? "").split(",").filter((p) => p !== "")) {
    const [ordinal, id] = pair.split("=").map(Number) as [number, number];
    map.set(ordinal, id);
  }
  return Array.from({ length: Math.max(0, n) }, (_, ordinal) => map.get(ordinal) ?? ordinal + 1);
}

function maxUnavailable(objects: readonly K8sObject[]): number {
  const pdb = objects.find((o) => o.kind === "PodDisruptionBudget");
  const v = pdb?.spec?.maxUnavailable;
  return typeof v === "number" ? v : 1;
}

const podSpec = (sts: K8sObject): K8sObject => sts.spec?.template?.spec ?? {};
const allContainers = (sts: K8sObject): K8sObject[] => [...(podSpec(sts).initContainers ?? []), ...(podSpec(sts).containers ?? [])];
const vaultContainer = (sts: K8sObject): K8sObject | undefined => (podSpec(sts).containers ?? []).find((c: K8sObject) => c.name === VAULT_CONTAINER);

/** Data and SoftHSM token directory come from the pod's own PVCs (volumeClaimTemplates), in every container that mounts them. */
function tokenVolumeProblems(sts: K8sObject): string[] {
  const templates = new Set((sts.spec?.volumeClaimTemplates ?? []).map((t: K8sObject) => t.metadata?.name));
  const problems: string[] = [];
  const vault = vaultContainer(sts);
  if (vault === undefined) return [`no container named ${VAULT_CONTAINER}`];
  for (const [path, what] of [[TOKEN_DIR, "HSM token directory"], ["/var/lib/bkv/data", "data directory"]] as const) {
    for (const c of allContainers(sts)) {
      const m = (c.volumeMounts ?? []).find((v: K8sObject) => v.mountPath === path);
      if (m === undefined && c !== vault) continue;
      if (m === undefined || !templates.has(m.name)) problems.push(`${c.name}: ${what} ${path} must be mounted from a volumeClaimTemplate (one per pod)`);
    }
  }
  return problems;
}

const PIN_KEY = /pin/i;
const PIN_FIELD = /"(so[_-]?)?pin"\s*:/i;
const PIN_ARG = /(^|-)(so-)?pin(=|$)/i;
const PIN_VALUE = /\b[0-9a-f]{32}\b/i;

/** A PIN lives only in the bkv-hsm Secret: never in a ConfigMap, args, command or a literal env value. */
export function pinProblems(objects: readonly K8sObject[]): string[] {
  const problems: string[] = [];
  for (const o of objects.filter((x) => x.kind === "ConfigMap")) {
    for (const [key, value] of Object.entries((o.data ?? {}) as Record<string, unknown>)) {
      if (PIN_KEY.test(key)) problems.push(`${ref(o)}: key ${key} looks like a PIN`);
      if (typeof value === "string" && (PIN_FIELD.test(value) || PIN_VALUE.test(value))) problems.push(`${ref(o)}: ${key} holds a PIN value`);
    }
  }
  for (const o of objects.filter((x) => x.kind === "StatefulSet")) {
    const secretVolumes = new Set(((podSpec(o).volumes ?? []) as K8sObject[]).filter((v) => v.secret !== undefined || v.projected !== undefined).map((v) => v.name));
    for (const m of (vaultContainer(o)?.volumeMounts ?? []) as K8sObject[]) {
      if (secretVolumes.has(m.name)) problems.push(`${VAULT_CONTAINER}: mounts Secret volume ${m.name} (every node's PINs/keys): only the init container may`);
    }
    for (const c of allContainers(o)) {
      for (const arg of [...(c.command ?? []), ...(c.args ?? [])] as string[]) {
        if (PIN_ARG.test(String(arg)) || PIN_VALUE.test(String(arg))) problems.push(`${c.name}: a PIN on the command line (${JSON.stringify(arg)})`);
      }
      for (const e of (c.env ?? []) as K8sObject[]) {
        if (/PIN/i.test(String(e.name)) && e.value !== undefined && e.name !== "BKV_HSM_PIN_FILE") problems.push(`${c.name}: env ${e.name} carries a literal PIN`);
      }
    }
  }
  return problems;
}

function securityProblems(sts: K8sObject): string[] {
  const pod = podSpec(sts).securityContext ?? {};
  const problems: string[] = [];
  if (pod.runAsNonRoot !== true) problems.push("pod securityContext.runAsNonRoot must be true");
  if (pod.runAsUser === 0) problems.push("pod must not run as uid 0");
  if (podSpec(sts).automountServiceAccountToken !== false) problems.push("pod must not mount a service account token");
  for (const c of allContainers(sts)) {
    const s = c.securityContext ?? {};
    if (s.runAsUser === 0 || s.runAsNonRoot === false) problems.push(`${c.name}: runs as root`);
    if (s.allowPrivilegeEscalation !== false) problems.push(`${c.name}: allowPrivilegeEscalation must be false`);
    if (s.readOnlyRootFilesystem !== true) problems.push(`${c.name}: readOnlyRootFilesystem must be true`);
    if (s.privileged === true) problems.push(`${c.name}: privileged`);
    if (!(s.capabilities?.drop ?? []).includes("ALL") || (s.capabilities?.add ?? []).length > 0) problems.push(`${c.name}: must drop ALL capabilities and add none`);
    if (c.resources?.requests === undefined || c.resources?.limits?.memory === undefined) problems.push(`${c.name}: needs resource requests and a memory limit`);
  }
  return problems;
}

function probeProblems(sts: K8sObject): string[] {
  const c = vaultContainer(sts);
  if (c === undefined) return [];
  const problems: string[] = [];
  for (const [probe, path] of [["readinessProbe", "/readyz"], ["livenessProbe", "/healthz"]] as const) {
    const get = c[probe]?.httpGet;
    if (get?.path !== path || get?.port !== "metrics") problems.push(`${c.name}: ${probe} must GET ${path} on the metrics port`);
  }
  return problems;
}

function pdbProblems(sts: K8sObject, objects: readonly K8sObject[]): string[] {
  const pdbs = objects.filter((o) => o.kind === "PodDisruptionBudget" && selects(o.spec?.selector?.matchLabels, podLabels(sts)));
  if (pdbs.length === 0) return ["no PodDisruptionBudget selects the vault pods"];
  return pdbs.some((p) => p.spec?.maxUnavailable === 1) ? [] : ["the PodDisruptionBudget must have maxUnavailable: 1"];
}

const podLabels = (sts: K8sObject): Record<string, string> => sts.spec?.template?.metadata?.labels ?? {};

/** True when every label of SELECTOR (matchLabels; {} selects all) is on LABELS. */
function selects(selector: Record<string, string> | undefined, labels: Record<string, string>): boolean {
  if (selector === undefined) return false;
  return Object.entries(selector).every(([k, v]) => labels[k] === v);
}

/**
 * Some policy selecting the vault pods restricts Ingress, and every ingress
 * rule that opens the peer port (explicitly or by listing no ports) admits
 * only vault pods of the same namespace (podSelector selecting them, no
 * namespaceSelector, no ipBlock).
 */
function networkPolicyProblems(sts: K8sObject, objects: readonly K8sObject[]): string[] {
  const labels = podLabels(sts);
  const policies = objects.filter((o) => o.kind === "NetworkPolicy" && selects(o.spec?.podSelector?.matchLabels ?? {}, labels)
    && (o.spec?.policyTypes ?? ["Ingress"]).includes("Ingress"));
  if (policies.length === 0) return ["no NetworkPolicy restricts ingress to the vault pods"];
  const problems: string[] = [];
  for (const p of policies) {
    for (const [i, rule] of ((p.spec?.ingress ?? []) as K8sObject[]).entries()) {
      const ports = (rule.ports ?? []) as K8sObject[];
      const opensPeer = ports.length === 0 || ports.some((x) => x.port === PEER_PORT || x.port === "peer" || x.port === undefined);
      if (!opensPeer) continue;
      const from = (rule.from ?? []) as K8sObject[];
      const onlyVault = from.length > 0 && from.every((f) => f.namespaceSelector === undefined && f.ipBlock === undefined
        && f.podSelector !== undefined && Object.keys(f.podSelector.matchLabels ?? {}).length > 0 && selects(f.podSelector.matchLabels, labels));
      if (!onlyVault) problems.push(`${ref(p)}: ingress rule ${i} opens the peer port ${PEER_PORT} to more than the vault pods`);
    }
  }
  if (!policies.some((p) => admitsVaultTo(p, ADMIN_PORT, labels))) {
    problems.push(`no NetworkPolicy admits the vault pods to the admin port ${ADMIN_PORT} (a node added later joins through it)`);
  }
  return problems;
}

/** Whether some ingress rule of `policy` opens `port` to pods with the vault pods' labels. */
function admitsVaultTo(policy: K8sObject, port: number, labels: Record<string, string>): boolean {
  return ((policy.spec?.ingress ?? []) as K8sObject[]).some((rule) => {
    const ports = (rule.ports ?? []) as K8sObject[];
    const opens = ports.length === 0 || ports.some((x) => x.port === port);
    const from = (rule.from ?? []) as K8sObject[];
    return opens && (from.length === 0 || from.some((f) => f.podSelector !== undefined && f.namespaceSelector === undefined
      && selects(f.podSelector.matchLabels ?? {}, labels)));
  });
}
