// deploy/k8s rendered offline (kubectl kustomize) and checked against the
// Kubernetes schemas and the bkv invariants; each invariant check is also
// fed a crafted broken manifest and must complain.
import { readFileSync } from "node:fs";
import test from "ava";
import { invariantProblems, nodeConfig, parsePromQL, parseStream, pinProblems, podQosClass, quantityBytes, renderOverlay, schemaProblems, type K8sObject } from "./checks.js";

const OVERLAYS = ["kind", "production"] as const;
const rendered = new Map(OVERLAYS.map((name) => [name, renderOverlay(name)]));

/** A deep copy of the kind overlay, changed by EDIT. */
function broken(edit: (objects: K8sObject[]) => void): K8sObject[] {
  const objects = structuredClone(rendered.get("kind") as K8sObject[]);
  edit(objects);
  return objects;
}
const find = (objects: K8sObject[], kind: string) => objects.find((o) => o.kind === kind) as K8sObject;
const sts = (objects: K8sObject[]) => find(objects, "StatefulSet");
const vault = (objects: K8sObject[]) => (sts(objects).spec.template.spec.containers as K8sObject[]).find((c) => c.name === "bkv-node") as K8sObject;
function editConfig(objects: K8sObject[], edit: (c: K8sObject) => void): void {
  const cm = objects.find((o) => o.kind === "ConfigMap" && o.data?.["config.json"] !== undefined) as K8sObject;
  const c = JSON.parse(cm.data["config.json"] as string) as K8sObject;
  edit(c);
  cm.data["config.json"] = JSON.stringify(c);
}
function assertComplains(t: import("ava").ExecutionContext, objects: K8sObject[], pattern: RegExp): void {
  const problems = invariantProblems(objects);
  t.true(problems.some((p) => pattern.test(p)), `expected a problem matching ${pattern}, got ${JSON.stringify(problems)}`);
}

for (const name of OVERLAYS) {
  test(`overlay ${name}: every object is valid against its Kubernetes schema`, (t) => {
    const objects = rendered.get(name) as K8sObject[];
    const kinds = new Set(objects.map((o) => o.kind));
    for (const k of ["StatefulSet", "Service", "ConfigMap", "PodDisruptionBudget", "NetworkPolicy", "ServiceAccount", "Namespace"]) t.true(kinds.has(k), k);
    t.deepEqual(schemaProblems(objects), []);
  });

  test(`overlay ${name}: holds every bkv invariant`, (t) => {
    t.deepEqual(invariantProblems(rendered.get(name) as K8sObject[]), []);
  });
}

test("overlays: kind runs 3 nodes with threshold 2, production 5 with threshold 3 and a real PKCS#11 module", (t) => {
  const kind = rendered.get("kind") as K8sObject[];
  const prod = rendered.get("production") as K8sObject[];
  t.is(sts(kind).spec.replicas, 3);
  t.is(nodeConfig(kind)?.threshold, 2);
  t.is(sts(prod).spec.replicas, 5);
  t.is(nodeConfig(prod)?.threshold, 3);
  const env = vault(prod).env as K8sObject[];
  t.regex(String(env.find((e) => e.name === "BKV_HSM_MODULE")?.value), /^\/.+\.so$/);
  t.true(prod.some((o) => o.kind === "ServiceMonitor"));
  t.false(kind.some((o) => o.kind === "ServiceMonitor"));
});

test("schema: a wrongly typed field or an unknown kind is reported", (t) => {
  const objects = broken((o) => { sts(o).spec.replicas = "3"; });
  t.true(schemaProblems(objects).some((p) => /StatefulSet\/bkv: schema: .*replicas/.test(p)));
  t.deepEqual(schemaProblems([{ apiVersion: "example.com/v1", kind: "Widget", metadata: { name: "w" } }]), ["Widget/w: no schema known for example.com/v1:Widget"]);
  t.true(schemaProblems([{ apiVersion: "monitoring.coreos.com/v1", kind: "ServiceMonitor", metadata: { name: "m" }, spec: {} }]).length > 0);
});

test("invariant: replicas must be odd and at least 3, with Parallel pod management", (t) => {
  assertComplains(t, broken((o) => { sts(o).spec.replicas = 4; }), /replicas must be odd/);
  assertComplains(t, broken((o) => { sts(o).spec.replicas = 1; }), /replicas must be odd/);
  assertComplains(t, broken((o) => { delete sts(o).spec.podManagementPolicy; }), /podManagementPolicy must be Parallel/);
});

test("invariant: the config lists one node per replica at its stable peer and admin names", (t) => {
  assertComplains(t, broken((o) => { sts(o).spec.replicas = 5; }), /config nodes must be ids \[1,2,3,4,5\]/);
  // Node 2 replaced by node 4 at ordinal 1: the config must follow the map.
  const setIds = (o: K8sObject[], v: string) => { (sts(o).spec.template.spec.initContainers[0].env as K8sObject[]).find((e) => e.name === "BKV_NODE_IDS")!.value = v; };
  assertComplains(t, broken((o) => setIds(o, "1=4")), /config nodes must be ids \[1,3,4\]/);
  t.deepEqual(invariantProblems(broken((o) => {
    setIds(o, "1=4");
    editConfig(o, (c) => { c.nodes[1].id = 4; });
  })), []);
  assertComplains(t, broken((o) => editConfig(o, (c) => { c.join = true; })), /must not set join/);
  assertComplains(t, broken((o) => { sts(o).spec.template.spec.initContainers[0].env = []; }), /BKV_BOOTSTRAP_VOTERS must be 1\.\.3/);
  assertComplains(t, broken((o) => editConfig(o, (c) => { c.nodes[1].peerAddress = "10.0.0.7:7001"; })), /node 2: peerAddress/);
  assertComplains(t, broken((o) => editConfig(o, (c) => { c.nodeId = 1; })), /must not fix nodeId/);
  assertComplains(t, broken((o) => editConfig(o, (c) => { delete c.nodes[2].adminAddress; })), /node 3: adminAddress undefined is not pod bkv-2's admin port/);
  assertComplains(t, broken((o) => editConfig(o, (c) => { c.nodes[0].adminAddress = "bkv-0.bkv-peer:7000"; })), /node 1: adminAddress/);
});

test("invariant: the threshold is a majority that survives one voluntary disruption", (t) => {
  assertComplains(t, broken((o) => editConfig(o, (c) => { c.threshold = 1; })), /threshold 1 is not a majority of 3/);
  assertComplains(t, broken((o) => editConfig(o, (c) => { c.threshold = 3; })), /threshold 3 > 3 - 1/);
  assertComplains(t, broken((o) => editConfig(o, (c) => { delete c.threshold; })), /not a majority/);
});

test("invariant: every pod has its own token volume and data volume", (t) => {
  assertComplains(t, broken((o) => {
    const s = sts(o);
    s.spec.volumeClaimTemplates = s.spec.volumeClaimTemplates.filter((v: K8sObject) => v.metadata.name !== "hsm-token");
    s.spec.template.spec.volumes.push({ name: "hsm-token", emptyDir: {} });
  }), /bkv-node: HSM token directory \/var\/lib\/bkv\/hsm must be mounted from a volumeClaimTemplate/);
  assertComplains(t, broken((o) => {
    vault(o).volumeMounts = vault(o).volumeMounts.filter((m: K8sObject) => m.name !== "data");
  }), /data directory/);
});

test("invariant: no PIN in a ConfigMap, in args or in a literal env value", (t) => {
  assertComplains(t, broken((o) => { find(o, "ConfigMap").data["hsm-pin"] = "0123"; }), /key hsm-pin looks like a PIN/);
  assertComplains(t, broken((o) => editConfig(o, (c) => { c.hsm.pin = "s3cret"; })), /config\.json holds a PIN value/);
  assertComplains(t, broken((o) => { vault(o).args.push("--pin", "s3cret"); }), /a PIN on the command line/);
  assertComplains(t, broken((o) => { vault(o).env.push({ name: "BKV_HSM_PIN", value: "s3cret" }); }), /env BKV_HSM_PIN carries a literal PIN/);
  assertComplains(t, broken((o) => { find(o, "ConfigMap").data.notes = "pin is 00112233445566778899aabbccddeeff"; }), /notes holds a PIN value/);
  assertComplains(t, broken((o) => { vault(o).volumeMounts.push({ name: "hsm-secret", mountPath: "/etc/bkv-secrets/hsm", readOnly: true }); }), /bkv-node: mounts Secret volume hsm-secret/);
  // A PIN taken from a Secret through the environment is allowed.
  const fromSecret = broken((o) => { vault(o).env.push({ name: "BKV_HSM_PIN", valueFrom: { secretKeyRef: { name: "bkv-hsm", key: "pin-1" } } }); });
  t.deepEqual(pinProblems(fromSecret), []);
});

test("invariant: containers run non-root, read-only, without capabilities", (t) => {
  assertComplains(t, broken((o) => { sts(o).spec.template.spec.securityContext.runAsNonRoot = false; }), /runAsNonRoot must be true/);
  assertComplains(t, broken((o) => { vault(o).securityContext = { ...vault(o).securityContext, runAsUser: 0 }; }), /bkv-node: runs as root/);
  assertComplains(t, broken((o) => { sts(o).spec.template.spec.initContainers[0].securityContext = { readOnlyRootFilesystem: true }; }), /init-node: allowPrivilegeEscalation/);
  assertComplains(t, broken((o) => { vault(o).securityContext = { ...vault(o).securityContext, capabilities: { drop: ["ALL"], add: ["NET_ADMIN"] } }; }), /drop ALL capabilities and add none/);
  assertComplains(t, broken((o) => { vault(o).securityContext = { ...vault(o).securityContext, readOnlyRootFilesystem: false }; }), /readOnlyRootFilesystem/);
  assertComplains(t, broken((o) => { delete vault(o).resources; }), /needs resource requests/);
});

test("invariant: the manifests cannot turn client authentication off; the JWKS comes from a whole-volume ConfigMap mount", (t) => {
  assertComplains(t, broken((o) => editConfig(o, (c) => { delete c.auth; })), /config must set auth/);
  assertComplains(t, broken((o) => editConfig(o, (c) => { c.auth = { disabled: true }; })), /must not set auth\.disabled/);
  assertComplains(t, broken((o) => editConfig(o, (c) => { c.auth.disabled = false; })), /must not set auth\.disabled/);
  assertComplains(t, broken((o) => editConfig(o, (c) => { c.auth.issuers = []; })), /auth\.issuers must name at least one issuer/);
  assertComplains(t, broken((o) => editConfig(o, (c) => { c.auth.issuers[0].jwksFile = "/var/lib/bkv/data/jwks.json"; })), /is not in a ConfigMap or Secret volume/);
  assertComplains(t, broken((o) => {
    const m = (vault(o).volumeMounts as K8sObject[]).find((x) => x.name === "issuer-jwks") as K8sObject;
    m.mountPath = "/etc/bkv-issuer/jwks.json";
    m.subPath = "jwks.json";
  }), /mounted with subPath/);
  for (const name of OVERLAYS) {
    const auth = nodeConfig(rendered.get(name) as K8sObject[])?.auth;
    t.true(Array.isArray(auth?.issuers) && auth.issuers.length > 0 && auth.disabled === undefined, name);
  }
});

test("invariant: readiness and liveness probes on /readyz and /healthz", (t) => {
  assertComplains(t, broken((o) => { delete vault(o).readinessProbe; }), /readinessProbe must GET \/readyz/);
  assertComplains(t, broken((o) => { vault(o).livenessProbe.httpGet.path = "/readyz"; }), /livenessProbe must GET \/healthz/);
});

test("invariant: a PodDisruptionBudget with maxUnavailable 1 covers the vault pods", (t) => {
  assertComplains(t, broken((o) => { o.splice(o.indexOf(find(o, "PodDisruptionBudget")), 1); }), /no PodDisruptionBudget/);
  assertComplains(t, broken((o) => { find(o, "PodDisruptionBudget").spec.selector.matchLabels = { app: "other" }; }), /no PodDisruptionBudget/);
  assertComplains(t, broken((o) => { find(o, "PodDisruptionBudget").spec.maxUnavailable = 2; }), /maxUnavailable: 1/);
});

test("invariant: the NetworkPolicy admits only vault pods to the peer port, and vault pods to the admin port", (t) => {
  const np = (o: K8sObject[]) => find(o, "NetworkPolicy");
  assertComplains(t, broken((o) => { o.splice(o.indexOf(np(o)), 1); }), /no NetworkPolicy/);
  assertComplains(t, broken((o) => { delete np(o).spec.ingress[0].from; }), /opens the peer port 7001/);
  assertComplains(t, broken((o) => { np(o).spec.ingress[0].from = [{ podSelector: {} }]; }), /opens the peer port/);
  assertComplains(t, broken((o) => { np(o).spec.ingress[1].ports.push({ protocol: "TCP", port: 7001 }); }), /ingress rule 1 opens the peer port/);
  assertComplains(t, broken((o) => { np(o).spec.ingress.push({ from: [{ ipBlock: { cidr: "0.0.0.0/0" } }] }); }), /opens the peer port/);
  assertComplains(t, broken((o) => { np(o).spec.policyTypes = ["Egress"]; }), /no NetworkPolicy restricts ingress/);
  // A node added later asks the leader's admin port to add it (join.ts).
  assertComplains(t, broken((o) => { np(o).spec.ingress[2].from.splice(0, 1); }), /no NetworkPolicy admits the vault pods to the admin port 7002/);
});

test("production: every container's requests equal its limits, so the vault pods are Guaranteed QoS (evicted and OOM-killed last)", (t) => {
  t.is(podQosClass(sts(rendered.get("production") as K8sObject[])), "Guaranteed");
  // The kubelet counts init containers too: one with requests under its limits makes the pod Burstable.
  const prod = structuredClone(rendered.get("production") as K8sObject[]);
  sts(prod).spec.template.spec.initContainers[0].resources.requests.memory = "64Mi";
  t.is(podQosClass(sts(prod)), "Burstable");
  t.is(podQosClass(sts(rendered.get("kind") as K8sObject[])), "Burstable");
  t.is(podQosClass({ spec: { template: { spec: { containers: [{ name: "x" }] } } } }), "BestEffort");
});

test("base and production: the vault container's memory request covers its measured resident memory at 1M records", (t) => {
  // docs/benchmarks.md: anonymous RSS 290–366 MiB per node at 1M records under the image's 256 MiB heap limit. A
  // pod using more than it requested is among the first the kubelet evicts under node memory pressure.
  const measured = 366 * 2 ** 20;
  for (const [name, objects] of [["base", renderOverlay("../base")], ["production", rendered.get("production") as K8sObject[]]] as const) {
    const request = quantityBytes(vault(objects).resources?.requests?.memory);
    t.true(request >= measured, `${name}: memory request ${vault(objects).resources?.requests?.memory} < 366 MiB`);
    t.true(quantityBytes(vault(objects).resources?.limits?.memory) >= request, name);
  }
});

test("invariant: the data volume has room for a snapshot download above snapshotDownload.diskReserveBytes", (t) => {
  const setData = (o: K8sObject[], size: string) => {
    const data = (sts(o).spec.volumeClaimTemplates as K8sObject[]).find((v) => v.metadata.name === "data") as K8sObject;
    data.spec.resources.requests.storage = size;
  };
  assertComplains(t, broken((o) => setData(o, "256Mi")), /data volume 256Mi is not above snapshotDownload\.diskReserveBytes \(256 MiB\)/);
  assertComplains(t, broken((o) => { setData(o, "2Gi"); editConfig(o, (c) => { c.snapshotDownload = { diskReserveBytes: 2 * 1024 ** 3 }; }); }), /data volume 2Gi/);
  t.false(invariantProblems(broken((o) => setData(o, "1Gi"))).some((p) => /data volume/.test(p)));
  t.is(quantityBytes("256Mi"), 256 * 2 ** 20);
  t.is(quantityBytes("50Gi"), 50 * 2 ** 30);
  t.is(quantityBytes("1G"), 1e9);
  t.true(Number.isNaN(quantityBytes("lots")));
});

test("invariant: every BKV_* variable the manifests set is one its container's reader knows", (t) => {
  assertComplains(t, broken((o) => { vault(o).env.push({ name: "BKV_LOGLEVEL", value: "debug" }); }), /bkv-node: env BKV_LOGLEVEL is read by nothing/);
  assertComplains(t, broken((o) => { sts(o).spec.template.spec.initContainers[0].env.push({ name: "BKV_BOOTSTRAP_VOTER", value: "3" }); }), /init-node: env BKV_BOOTSTRAP_VOTER is read by nothing/);
  // A variable of the other container is not read by this one.
  assertComplains(t, broken((o) => { vault(o).env.push({ name: "BKV_BOOTSTRAP_VOTERS", value: "3" }); }), /bkv-node: env BKV_BOOTSTRAP_VOTERS/);
  t.deepEqual(invariantProblems(broken((o) => { vault(o).env.push({ name: "BKV_SNAPSHOT_DOWNLOAD_DISK_RESERVE_BYTES", value: "1" }); })), []);
});

test("parseStream: a malformed YAML stream is an error, not an empty list", (t) => {
  t.throws(() => parseStream("kind: [unclosed\n"), { message: /document 0/ });
  t.is(parseStream("---\nkind: A\n---\nkind: B\n").length, 2);
});

test("renderOverlay: an unknown overlay is a clear error", (t) => {
  t.throws(() => renderOverlay("no-such-overlay"), { message: /kubectl kustomize deploy\/k8s\/overlays\/no-such-overlay failed/ });
});

test("alerting rules: production ships the PrometheusRule (no leader, two leaders, apply lag, HSM, snapshots); kind does not", (t) => {
  const prod = rendered.get("production") as K8sObject[];
  const rule = find(prod, "PrometheusRule");
  const alerts = (rule.spec.groups as K8sObject[]).flatMap((g) => (g.rules as K8sObject[]).map((r) => r.alert as string));
  for (const a of ["BkvNoLeader", "BkvTwoLeaders", "BkvApplyLag", "BkvHsmFailing", "BkvSnapshotFailures"]) t.true(alerts.includes(a), a);
  t.false((rendered.get("kind") as K8sObject[]).some((o) => o.kind === "PrometheusRule"));
});

test("alerting rules: an outage where no node is scraped (all down, crash-looping, stuck in init) still alerts", (t) => {
  const rules = (find(rendered.get("production") as K8sObject[], "PrometheusRule").spec.groups as K8sObject[]).flatMap((g) => g.rules as K8sObject[]);
  const rule = (name: string) => rules.find((r) => r.alert === name) as K8sObject | undefined;
  // A sum over no series is no series: `sum(bkv_raft_is_leader) < 1` alone is silent exactly when every node is gone.
  t.regex(String(rule("BkvNoLeader")?.expr), /\babsent\(bkv_raft_is_leader\)/);
  // One node down is no alert of the bkv metrics at all: its series just stop.
  t.regex(String(rule("BkvNodeDown")?.expr), /\bup\{[^}]*service="bkv-peer"[^}]*\} == 0/);
});

test("alerting rules: docs/operations.md lists exactly the alerts the PrometheusRule defines", (t) => {
  const rules = (find(rendered.get("production") as K8sObject[], "PrometheusRule").spec.groups as K8sObject[]).flatMap((g) => (g.rules as K8sObject[]).map((r) => r.alert as string));
  const doc = readFileSync("docs/operations.md", "utf8");
  const para = /Alerting rules for these are in `deploy\/k8s\/components\/prometheusrule`[\s\S]*?\n\n/.exec(doc)?.[0] ?? "";
  const listed = [...para.matchAll(/`(Bkv[A-Za-z]+)`/g)].map((m) => m[1] as string);
  t.deepEqual([...listed].sort(), [...rules].sort());
});

test("alerting rules: a rule that does not parse, names a metric no node exports, or lacks its severity is reported", (t) => {
  const rule = () => structuredClone(find(rendered.get("production") as K8sObject[], "PrometheusRule"));
  const first = (r: K8sObject) => r.spec.groups[0].rules[0] as K8sObject;
  const problems = (edit: (r: K8sObject) => void) => {
    const r = rule();
    edit(first(r));
    return schemaProblems([r]).join("\n");
  };
  t.deepEqual(schemaProblems([rule()]), []);
  t.regex(problems((r) => { r.expr = "sum(bkv_raft_is_leader"; }), /rule BkvNoLeader: expr does not parse/);
  t.regex(problems((r) => { r.expr = "bkv_raft_is_leaderr == 0"; }), /expr names bkv_raft_is_leaderr, which no bkv node exports/);
  t.regex(problems((r) => { delete r.labels.severity; }), /labels.severity must be critical or warning/);
  t.regex(problems((r) => { r.for = "soon"; }), /for must be a duration/);
  t.deepEqual(parsePromQL("histogram_quantile(0.99, sum by (le) (rate(bkv_admin_request_seconds_bucket[5m])))"), { error: null, metrics: ["bkv_admin_request_seconds_bucket"] });
});
