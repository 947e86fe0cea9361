// Chaos Mesh objects for the k8s target: network partitions and latency as
// NetworkChaos (applied with kubectl, deleted to heal), and a small structural
// schema of the fields used here, shared by the runner (it validates what it
// applies) and the offline tests (which validate chaos/k8s/chaos-mesh/*.yaml).
//
// Field names and enums follow Chaos Mesh's API types (chaos-mesh/chaos-mesh
// api/v1alpha1: networkchaos_types.go, podchaos_types.go, selector.go) and
// its docs: https://chaos-mesh.org/docs/simulate-network-chaos-on-kubernetes/,
// https://chaos-mesh.org/docs/simulate-pod-chaos-on-kubernetes/,
// https://chaos-mesh.org/docs/define-chaos-experiment-scope/ (version 2.8).
import { cutPairs, linkKey, type PartitionSpec } from "../partitions.js";

export const CHAOS_MESH_API = "chaos-mesh.org/v1alpha1";

/** The labels of the bkv vault pods (deploy/k8s/base/statefulset.yaml selector.matchLabels). */
export const POD_LABELS: Readonly<Record<string, string>> = { "app.kubernetes.io/name": "bkv", "app.kubernetes.io/component": "vault" };

/** Set by the StatefulSet controller on every pod: the pod's own name (selects single pods by label). */
export const POD_NAME_LABEL = "statefulset.kubernetes.io/pod-name";

/** Label of every object the harness applies: the run id, so that heal deletes exactly them. */
export const RUN_LABEL = "bkv.io/chaos-run";

/** How long after its planned end a harness-made NetworkChaos ends by itself (the harness died before deleting it). */
export const SAFETY_MARGIN_S = 60;

type Obj = Record<string, unknown>;

export interface ChaosObject {
  apiVersion: typeof CHAOS_MESH_API;
  kind: "NetworkChaos" | "PodChaos";
  metadata: { name: string; namespace: string; labels: Record<string, string> };
  spec: Obj;
}

/** A selector of the bkv pods named `pods` in `namespace`. */
export function podSelector(namespace: string, pods: readonly string[]): Obj {
  return {
    namespaces: [namespace],
    labelSelectors: { ...POD_LABELS },
    expressionSelectors: [{ key: POD_NAME_LABEL, operator: "In", values: [...pods] }],
  };
}

export interface ManifestContext {
  namespace: string;
  runId: string;
  /** The pod of a node id. */
  podOf: (id: number) => string;
  /** Distinguishes the objects of successive faults (a counter). */
  seq: number;
}

function chaosObject(c: ManifestContext, name: string, spec: Obj): ChaosObject {
  return { apiVersion: CHAOS_MESH_API, kind: "NetworkChaos", metadata: { name: `bkv-${c.runId}-${c.seq}-${name}`.toLowerCase(), namespace: c.namespace, labels: { [RUN_LABEL]: c.runId } }, spec };
}

const safetyDuration = (downMs: number): string => `${Math.ceil(downMs / 1000) + SAFETY_MARGIN_S}s`;

/**
 * One NetworkChaos per sender: packets from node a's pod to the pods of every b with (a → b) cut are dropped
 * (action partition, direction to). At the packet level a one-way cut also stalls TCP connections in the
 * other direction (their ACKs are lost), unlike the local proxies that cut one byte stream.
 */
export function partitionManifests(c: ManifestContext, nodes: readonly number[], spec: PartitionSpec, downMs: number): ChaosObject[] {
  const cut = cutPairs(nodes, spec);
  const out: ChaosObject[] = [];
  for (const a of nodes) {
    const targets = nodes.filter((b) => b !== a && cut.has(linkKey(a, b)));
    if (targets.length === 0) continue;
    out.push(chaosObject(c, `partition-from-${a}`, {
      action: "partition",
      mode: "all",
      selector: podSelector(c.namespace, [c.podOf(a)]),
      direction: "to",
      target: { mode: "all", selector: podSelector(c.namespace, targets.map(c.podOf)) },
      duration: safetyDuration(downMs),
    }));
  }
  return out;
}

/** `ms` of delay on every packet between bkv pods (action delay, direction to, every pod to every pod). */
export function latencyManifest(c: ManifestContext, nodes: readonly number[], ms: number, downMs: number): ChaosObject {
  const all = nodes.map(c.podOf);
  return chaosObject(c, "latency", {
    action: "delay",
    mode: "all",
    selector: podSelector(c.namespace, all),
    direction: "to",
    target: { mode: "all", selector: podSelector(c.namespace, all) },
    delay: { latency: `${ms}ms` },
    duration: safetyDuration(downMs),
  });
}

// ---- the structural schema ----

/** Go's time.ParseDuration syntax ("300ms", "1.5h", "2h45m"), which Chaos Mesh uses for durations and latencies. */
export function isGoDuration(s: unknown): boolean {
  return typeof s === "string" && /^[-+]?(\d+(\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)((\d+(\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h))*$/.test(s) || s === "0";
}

const MODES = ["one", "all", "fixed", "fixed-percent", "random-max-percent"];
const NETWORK_ACTIONS = ["netem", "delay", "loss", "duplicate", "corrupt", "partition", "bandwidth"];
const POD_ACTIONS = ["pod-kill", "pod-failure", "container-kill"];
const DIRECTIONS = ["to", "from", "both"];
const SELECTOR_KEYS = ["namespaces", "labelSelectors", "expressionSelectors", "pods", "annotationSelectors", "fieldSelectors", "nodes", "nodeSelectors", "podPhaseSelectors"];
const DNS_1123 = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

const isObj = (v: unknown): v is Obj => typeof v === "object" && v !== null && !Array.isArray(v);
const isStringMap = (v: unknown): boolean => isObj(v) && Object.values(v).every((x) => typeof x === "string");
const isStringList = (v: unknown): boolean => Array.isArray(v) && v.every((x) => typeof x === "string");

function unknownKeys(o: Obj, allowed: readonly string[], at: string, errors: string[]): void {
  for (const k of Object.keys(o)) if (!allowed.includes(k)) errors.push(`${at}.${k}: unknown field`);
}

function checkSelector(sel: unknown, at: string, errors: string[]): void {
  if (!isObj(sel)) return void errors.push(`${at}: required object`);
  unknownKeys(sel, SELECTOR_KEYS, at, errors);
  if (sel.namespaces !== undefined && !isStringList(sel.namespaces)) errors.push(`${at}.namespaces: list of strings`);
  if (sel.labelSelectors !== undefined && !isStringMap(sel.labelSelectors)) errors.push(`${at}.labelSelectors: map of strings`);
  if (sel.pods !== undefined && !(isObj(sel.pods) && Object.values(sel.pods).every(isStringList))) errors.push(`${at}.pods: map of namespace to pod names`);
  if (sel.expressionSelectors !== undefined) {
    if (!Array.isArray(sel.expressionSelectors)) errors.push(`${at}.expressionSelectors: list`);
    else
      sel.expressionSelectors.forEach((e: unknown, i) => {
        const p = `${at}.expressionSelectors[${i}]`;
        if (!isObj(e)) return void errors.push(`${p}: object`);
        unknownKeys(e, ["key", "operator", "values"], p, errors);
        if (typeof e.key !== "string" || e.key === "") errors.push(`${p}.key: required string`);
        if (!["In", "NotIn", "Exists", "DoesNotExist"].includes(e.operator as string)) errors.push(`${p}.operator: one of In, NotIn, Exists, DoesNotExist`);
        if ((e.operator === "In" || e.operator === "NotIn") && !(isStringList(e.values) && (e.values as string[]).length > 0)) errors.push(`${p}.values: non-empty list for ${String(e.operator)}`);
      });
  }
}

function checkModeValue(o: Obj, at: string, errors: string[]): void {
  if (!MODES.includes(o.mode as string)) errors.push(`${at}.mode: one of ${MODES.join(", ")}`);
  if (typeof o.mode === "string" && o.mode !== "one" && o.mode !== "all" && typeof o.value !== "string") errors.push(`${at}.value: required for mode ${o.mode}`);
}

function checkNetworkSpec(spec: Obj, errors: string[]): void {
  unknownKeys(spec, ["action", "mode", "value", "selector", "direction", "target", "duration", "delay"], "spec", errors);
  if (!NETWORK_ACTIONS.includes(spec.action as string)) errors.push(`spec.action: one of ${NETWORK_ACTIONS.join(", ")}`);
  if (spec.direction !== undefined && !DIRECTIONS.includes(spec.direction as string)) errors.push(`spec.direction: one of ${DIRECTIONS.join(", ")}`);
  if (spec.target !== undefined) {
    if (!isObj(spec.target)) errors.push("spec.target: object");
    else {
      unknownKeys(spec.target, ["mode", "value", "selector"], "spec.target", errors);
      checkModeValue(spec.target, "spec.target", errors);
      checkSelector(spec.target.selector, "spec.target.selector", errors);
    }
  }
  if (spec.action === "partition" && spec.target === undefined) errors.push("spec.target: required for a partition (otherwise every packet of the pod is cut)");
  if (spec.action === "delay") {
    if (!isObj(spec.delay)) errors.push("spec.delay: required for action delay");
    else {
      unknownKeys(spec.delay, ["latency", "jitter", "correlation"], "spec.delay", errors);
      if (!isGoDuration(spec.delay.latency)) errors.push("spec.delay.latency: a duration such as 100ms");
      if (spec.delay.jitter !== undefined && !isGoDuration(spec.delay.jitter)) errors.push("spec.delay.jitter: a duration");
    }
  } else if (spec.delay !== undefined) errors.push("spec.delay: only for action delay");
}

function checkPodSpec(spec: Obj, errors: string[]): void {
  unknownKeys(spec, ["action", "mode", "value", "selector", "duration", "gracePeriod", "containerNames"], "spec", errors);
  if (!POD_ACTIONS.includes(spec.action as string)) errors.push(`spec.action: one of ${POD_ACTIONS.join(", ")}`);
  if (spec.action === "pod-failure" && spec.duration === undefined) errors.push("spec.duration: required for pod-failure");
  if (spec.gracePeriod !== undefined && !(Number.isInteger(spec.gracePeriod) && (spec.gracePeriod as number) >= 0)) errors.push("spec.gracePeriod: integer >= 0");
  if (spec.action === "container-kill" && !(isStringList(spec.containerNames) && (spec.containerNames as string[]).length > 0)) errors.push("spec.containerNames: required for container-kill");
}

/** Structural errors of one Chaos Mesh object (empty when valid) for the fields bkv uses. */
export function validateChaosObject(o: unknown): string[] {
  const errors: string[] = [];
  if (!isObj(o)) return ["not an object"];
  if (o.apiVersion !== CHAOS_MESH_API) errors.push(`apiVersion: must be ${CHAOS_MESH_API}`);
  if (o.kind !== "NetworkChaos" && o.kind !== "PodChaos") errors.push("kind: NetworkChaos or PodChaos");
  const md = o.metadata;
  if (!isObj(md)) errors.push("metadata: required");
  else {
    if (typeof md.name !== "string" || md.name.length > 253 || !DNS_1123.test(md.name)) errors.push("metadata.name: a DNS-1123 name");
    if (typeof md.namespace !== "string" || md.namespace === "") errors.push("metadata.namespace: required");
    if (md.labels !== undefined && !isStringMap(md.labels)) errors.push("metadata.labels: map of strings");
  }
  const spec = o.spec;
  if (!isObj(spec)) return [...errors, "spec: required"];
  checkModeValue(spec, "spec", errors);
  checkSelector(spec.selector, "spec.selector", errors);
  if (spec.duration !== undefined && !isGoDuration(spec.duration)) errors.push("spec.duration: a duration such as 30s");
  if (o.kind === "NetworkChaos") checkNetworkSpec(spec, errors);
  if (o.kind === "PodChaos") checkPodSpec(spec, errors);
  return errors;
}
