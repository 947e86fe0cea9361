// Offline validation of the Chaos Mesh manifests (chaos/k8s/chaos-mesh/) and of
// the NetworkChaos objects the k8s target generates: rendered with
// `kubectl kustomize` (no cluster), checked against the structural schema of
// chaos/k8s/chaos-mesh.ts, and their selectors evaluated against the pods the
// kind overlay's StatefulSet creates.
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join as join, resolve } from "node:path";
import test from "ava";
import { parseAllDocuments } from "yaml";
import { cutPairs, linkKey, type PartitionSpec } from "../../chaos/partitions.js";
import {
  CHAOS_MESH_API, isGoDuration, latencyManifest, partitionManifests, POD_LABELS, POD_NAME_LABEL, RUN_LABEL, validateChaosObject, type ManifestContext,
} from "../../chaos/k8s/chaos-mesh.js";

const ROOT = resolve(import.meta.dirname, "../..");
type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

function render(dir: string): Obj[] {
  const out = execFileSync("kubectl", ["kustomize", resolve(ROOT, dir)], { encoding: "utf8" });
  return parseAllDocuments(out).map((d) => d.toJS() as Obj).filter((o) => o !== null);
}

const chaos = render("chaos/k8s/chaos-mesh");
const kind = render("deploy/k8s/overlays/kind");
const sts = kind.find((o) => o.kind === "StatefulSet")!;

/** The pods the StatefulSet creates: its template labels plus the pod-name label the controller adds. */
const pods = Array.from({ length: sts.spec.replicas as number }, (_, i) => {
  const name = `${sts.metadata.name}-${i}`;
  const labels: Record<string, string> = { ...(sts.spec.template.metadata.labels as Record<string, string>), [POD_NAME_LABEL]: name };
  return { name, namespace: sts.metadata.namespace as string, labels };
});

/** Chaos Mesh's selection (the parts used here): namespaces, labelSelectors, expressionSelectors, all ANDed. */
function selects(sel: Obj, pod: (typeof pods)[number]): boolean {
  if (sel.namespaces && !sel.namespaces.includes(pod.namespace)) return false;
  for (const [k, v] of Object.entries(sel.labelSelectors ?? {})) if (pod.labels[k] !== v) return false;
  for (const e of sel.expressionSelectors ?? []) {
    const has = e.key in pod.labels;
    const v = pod.labels[e.key];
    const ok = e.operator === "In" ? e.values.includes(v) : e.operator === "NotIn" ? !e.values.includes(v) : e.operator === "Exists" ? has : !has;
    if (!ok) return false;
  }
  return true;
}
const selected = (sel: Obj): string[] => pods.filter((p) => selects(sel, p)).map((p) => p.name);

function goDurationMs(s: string): number {
  const unit: Record<string, number> = { ns: 1e-6, us: 1e-3, µs: 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
  return [...s.matchAll(/(\d+(?:\.\d*)?)(ns|us|µs|ms|s|m|h)/g)].reduce((n, m) => n + Number(m[1]) * unit[m[2]!]!, 0);
}

test("the pod labels the harness selects are the StatefulSet's selector in the kind overlay", (t) => {
  t.deepEqual(sts.spec.selector.matchLabels, POD_LABELS);
  t.like(sts.spec.template.metadata.labels, POD_LABELS);
  t.is(pods.length, 3);
});

test("kubectl kustomize renders the Chaos Mesh examples: PodChaos and NetworkChaos of chaos-mesh.org/v1alpha1, schema-valid", (t) => {
  t.deepEqual(chaos.map((o) => o.kind).sort(), ["NetworkChaos", "NetworkChaos", "PodChaos", "PodChaos"]);
  for (const o of chaos) {
    t.is(o.apiVersion, CHAOS_MESH_API);
    t.deepEqual(validateChaosObject(o), [], `${o.kind} ${o.metadata.name}`);
  }
});

test("every example targets bkv pods of the kind overlay's namespace, and every selector selects some", (t) => {
  const ns = sts.metadata.namespace;
  t.is(ns, "bkv");
  for (const o of chaos) {
    t.is(o.metadata.namespace, ns, o.metadata.name);
    const sels = [o.spec.selector, o.spec.target?.selector].filter(Boolean);
    for (const sel of sels) {
      t.deepEqual(sel.namespaces, [ns], o.metadata.name);
      t.like(sel.labelSelectors, POD_LABELS, `${o.metadata.name} selects by the vault pod labels`);
      t.true(selected(sel).length > 0, `${o.metadata.name} selects a pod`);
    }
  }
  const isolate = chaos.find((o) => o.spec.action === "partition")!;
  t.deepEqual(selected(isolate.spec.selector), ["bkv-0"]);
  t.deepEqual(selected(isolate.spec.target.selector), ["bkv-1", "bkv-2"]);
});

test("every duration and latency in the examples parses as a Go duration and is positive", (t) => {
  const found: string[] = [];
  for (const o of chaos) {
    for (const d of [o.spec.duration, o.spec.delay?.latency, o.spec.delay?.jitter].filter((x) => x !== undefined)) {
      found.push(d);
      t.true(isGoDuration(d), d);
      t.true(goDurationMs(d) > 0, d);
    }
  }
  t.true(found.length >= 4);
  t.false(isGoDuration("30 seconds"));
  t.false(isGoDuration("30"));
  t.true(isGoDuration("1h2m3.5s"));
});

test("the schema rejects what Chaos Mesh would refuse or misread", (t) => {
  const partition = chaos.find((o) => o.spec.action === "partition")!;
  const podFailure = chaos.find((o) => o.spec.action === "pod-failure")!;
  const broken: [string, (o: Obj) => void, RegExp, Obj][] = [
    ["apiVersion", (o) => (o.apiVersion = "pingcap.com/v1alpha1"), /apiVersion/, partition],
    ["mode", (o) => (o.spec.mode = "every"), /spec\.mode/, partition],
    ["fixed mode without value", (o) => (o.spec.mode = "fixed"), /spec\.value/, partition],
    ["partition without target", (o) => delete o.spec.target, /spec\.target: required/, partition],
    ["duration", (o) => (o.spec.duration = "30 seconds"), /spec\.duration/, partition],
    ["misspelt field", (o) => (o.spec.dirction = "to"), /spec\.dirction: unknown field/, partition],
    ["direction", (o) => (o.spec.direction = "sideways"), /spec\.direction/, partition],
    ["In without values", (o) => (o.spec.selector.expressionSelectors[0].values = []), /values: non-empty/, partition],
    ["pod-failure without duration", (o) => delete o.spec.duration, /required for pod-failure/, podFailure],
    ["name", (o) => (o.metadata.name = "Bad_Name"), /metadata\.name/, podFailure],
  ];
  for (const [what, breakIt, expected, base] of broken) {
    const o = structuredClone(base);
    breakIt(o);
    const errors = validateChaosObject(o);
    t.true(errors.some((e) => expected.test(e)), `${what}: ${errors.join("; ")}`);
  }
});

const ctx = (nodes: number): ManifestContext => ({ namespace: "bkv", runId: "k8s-test", podOf: (id) => `bkv-${id - 1}`, seq: nodes });

const SPECS: [readonly number[], PartitionSpec][] = [
  [[1, 2, 3], { kind: "isolate", node: 2 }],
  [[1, 2, 3], { kind: "full", groups: [[1], [2, 3]] }],
  [[1, 2, 3], { kind: "one-way", from: [3], to: [1, 2] }],
  [[1, 2, 3], { kind: "bridge", bridge: 1, left: [2], right: [3] }],
  [[1, 2, 3, 4, 5], { kind: "full", groups: [[4, 1], [2, 3, 5]] }],
  [[1, 2, 3, 4, 5], { kind: "bridge", bridge: 5, left: [1, 2], right: [3, 4] }],
];

test("generated partitions have the examples' shape, are schema-valid, and cut exactly the spec's pairs", (t) => {
  const example = chaos.find((o) => o.spec.action === "partition")!;
  for (const [nodes, spec] of SPECS) {
    const objs = partitionManifests(ctx(nodes.length), nodes, spec, 3000) as unknown as Obj[];
    t.true(objs.length > 0);
    const cut = new Set<string>();
    for (const o of objs) {
      t.deepEqual(validateChaosObject(o), [], JSON.stringify(spec));
      t.is(o.apiVersion, example.apiVersion);
      t.is(o.kind, example.kind);
      t.deepEqual(Object.keys(o.spec).sort(), Object.keys(example.spec).sort(), "same spec fields as the example");
      t.deepEqual(Object.keys(o.spec.selector).sort(), Object.keys(example.spec.selector).sort());
      t.is(o.metadata.labels[RUN_LABEL], "k8s-test");
      t.is(o.spec.direction, "to");
      t.true(goDurationMs(o.spec.duration) >= 3000);
      if (nodes.length === 3) {
        // Evaluated against the kind overlay's pods: one sender pod, the cut receivers.
        const [from] = selected(o.spec.selector);
        t.is(selected(o.spec.selector).length, 1);
        for (const to of selected(o.spec.target.selector)) cut.add(`${Number(from!.split("-")[1]) + 1}->${Number(to.split("-")[1]) + 1}`);
      } else {
        const from = o.spec.selector.expressionSelectors[0].values as string[];
        for (const to of o.spec.target.selector.expressionSelectors[0].values as string[]) cut.add(`${Number(from[0]!.split("-")[1]) + 1}->${Number(to.split("-")[1]) + 1}`);
      }
    }
    t.deepEqual([...cut].sort(), [...cutPairs(nodes, spec)].sort(), JSON.stringify(spec));
    t.false([...cut].includes(linkKey(1, 1)));
  }
});

test("a generated latency has the delay example's shape and selects every vault pod both as source and target", (t) => {
  const example = chaos.find((o) => o.spec.action === "delay")!;
  const o = latencyManifest(ctx(3), [1, 2, 3], 120, 3000) as unknown as Obj;
  t.deepEqual(validateChaosObject(o), []);
  t.deepEqual(Object.keys(o.spec).sort(), Object.keys(example.spec).sort());
  t.is((o.spec.delay as Obj).latency, "120ms");
  t.deepEqual(selected(o.spec.selector as Obj), ["bkv-0", "bkv-1", "bkv-2"]);
  t.deepEqual(selected((o.spec.target as Obj).selector), ["bkv-0", "bkv-1", "bkv-2"]);
});

test("generated objects are accepted by kubectl kustomize as resources, unchanged", (t) => {
  // What the runner applies is JSON; kustomize (kubectl's own manifest reader, no cluster) must read it back as is.
  const objs = [...partitionManifests(ctx(3), [1, 2, 3], { kind: "isolate", node: 1 }, 3000), latencyManifest(ctx(3), [1, 2, 3], 50, 3000)];
  const dir = mkdtempSync(join(tmpdir(), "bkv-chaos-mesh-"));
  try {
    objs.forEach((o, i) => writeFileSync(join(dir, `o${i}.json`), JSON.stringify(o)));
    writeFileSync(join(dir, "kustomization.yaml"), `resources:\n${objs.map((_, i) => `  - o${i}.json\n`).join("")}`);
    const back = parseAllDocuments(execFileSync("kubectl", ["kustomize", dir], { encoding: "utf8" })).map((d) => d.toJS() as Obj);
    const byName = new Map(back.map((o) => [o.metadata.name as string, o]));
    for (const o of objs) t.deepEqual(byName.get(o.metadata.name), o as unknown as Obj);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
