// The k8s target's kubectl layer against a fake `kubectl` put first on PATH
// (no cluster can run on these machines): the commands it builds, its
// supervision of port-forwards, and clear errors when kubectl or the cluster
// is not there.
import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import test from "ava";
import { K8sTarget, BASE_KINDS, preflight, checkCerts } from "../../chaos/k8s/target.js";
import { Kubectl, KubectlError } from "../../chaos/k8s/kubectl.js";
import { logFollowArgs, PortForward, portForwardArgs } from "../../chaos/k8s/forward.js";
import { parseK8sArgs, runIdOf } from "../../chaos/k8s/cli.js";
import { RUN_LABEL, validateChaosObject } from "../../chaos/k8s/chaos-mesh.js";

const FAKE = String.raw`#!/usr/bin/env bash
# A fake kubectl: records its arguments (tab-separated, one call a line) and answers from $FAKE_DIR.
printf '%s\t' "$@" >>"$FAKE_DIR/calls"; echo >>"$FAKE_DIR/calls"
args=("$@")
while [[ @{args[0]} == --context || @{args[0]} == --namespace ]]; do args=("@{args[@]:2}"); done
if [[ -f $FAKE_DIR/unreachable ]]; then
  echo 'E1123 memcache.go:265] "Unhandled Error" err="couldn'"'"'t get current server API group list: dial tcp 127.0.0.1:8080: connect: connection refused"' >&2
  echo 'The connection to the server localhost:8080 was refused - did you specify the right host or port?' >&2
  exit 1
fi
case "@{args[0]} @{args[1]}" in
  "version --client") echo '{"clientVersion":{"gitVersion":"fake"}}' ;;
  "get namespace")
    if [[ -f $FAKE_DIR/no-namespace ]]; then echo "Error from server (NotFound): namespaces \"@{args[2]}\" not found" >&2; exit 1; fi
    echo "namespace/@{args[2]}" ;;
  "get pods") cat "$FAKE_DIR/pods.json" ;;
  "get pod")
    pod=@{args[2]}
    if [[ -f $FAKE_DIR/deleted-$pod ]]; then uid=new-$pod; else uid=old-$pod; fi
    printf '{"metadata":{"name":"%s","uid":"%s"},"status":{"phase":"Running"}}\n' "$pod" "$uid" ;;
  "get crd")
    if [[ -f $FAKE_DIR/no-crd ]]; then echo 'Error from server (NotFound): customresourcedefinitions.apiextensions.k8s.io "networkchaos.chaos-mesh.org" not found' >&2; exit 1; fi
    echo customresourcedefinition.apiextensions.k8s.io/networkchaos.chaos-mesh.org ;;
  "delete pod")
    if [[ -f $FAKE_DIR/forbid ]]; then echo 'Error from server (Forbidden): pods "'"@{args[2]}"'" is forbidden: User "dev" cannot delete resource "pods"' >&2; exit 1; fi
    touch "$FAKE_DIR/deleted-@{args[2]}" ;;
  "apply -f") cat >"$FAKE_DIR/applied-$(date +%s%N).json" ;;
  "delete networkchaos") echo 'networkchaos.chaos-mesh.org "x" deleted' ;;
  port-forward*)
    for a in "@{args[@]:2}"; do [[ $a == *:* ]] && echo "Forwarding from 127.0.0.1:@{a%%:*} -> @{a#*:}"; done
    # Ends like a port-forward to a deleted pod when the test creates pf-kill.
    while [[ ! -f $FAKE_DIR/pf-kill ]]; do sleep 0.05; done
    rm -f "$FAKE_DIR/pf-kill"; echo 'error: lost connection to pod' >&2; exit 1 ;;
  logs*) echo '{"msg":"leader changed","node":1,"term":2,"leader":1}'; [[ " @{args[*]} " == *" --follow "* ]] && exec sleep 600 ;;
  *) echo "fake kubectl: unexpected: $*" >&2; exit 3 ;;
esac
`.replaceAll("@{", "${"); // "@{" stands for the shell's "${" inside this template literal

const PODS = (phases: string[]) => JSON.stringify({ items: phases.map((phase, i) => ({ metadata: { name: `bkv-${i}`, uid: `old-bkv-${i}` }, status: { phase } })) });

interface Fake {
  dir: string;
  calls(): string[][];
  touch(name: string, text?: string): void;
}

/** A fresh fake kubectl directory, first on PATH (each ava test file runs in its own process). */
function fake(): Fake {
  const dir = mkdtempSync(join(tmpdir(), "bkv-fake-kubectl-"));
  writeFileSync(join(dir, "kubectl"), FAKE);
  chmodSync(join(dir, "kubectl"), 0o755);
  writeFileSync(join(dir, "pods.json"), PODS(["Running", "Running", "Running"]));
  return {
    dir,
    calls: () => (existsSync(join(dir, "calls")) ? readFileSync(join(dir, "calls"), "utf8").split("\n").filter(Boolean).map((l) => l.split("\t").filter((x) => x !== "")) : []),
    touch: (name, text = "") => writeFileSync(join(dir, name), text),
  };
}

const ORIGINAL_PATH = process.env.PATH;
let current: Fake;
test.beforeEach(() => {
  current = fake();
  process.env.PATH = `${current.dir}:${ORIGINAL_PATH}`;
  process.env.FAKE_DIR = current.dir;
});
test.afterEach.always(() => {
  process.env.PATH = ORIGINAL_PATH;
  rmSync(current.dir, { recursive: true, force: true });
});

const waitUntil = async (what: string, f: () => boolean, ms = 20_000): Promise<void> => {
  const end = Date.now() + ms;
  while (!f()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
};

test.serial("every command carries the context and the namespace first", async (t) => {
  const k = new Kubectl({ namespace: "bkv", context: "kind-bkv" });
  t.deepEqual(k.args(["get", "pods"]), ["--context", "kind-bkv", "--namespace", "bkv", "get", "pods"]);
  t.deepEqual(new Kubectl({ namespace: "x" }).args(["logs"]), ["--namespace", "x", "logs"]);
  await k.run(["version", "--client", "-o", "json"]);
  t.deepEqual(current.calls(), [["--context", "kind-bkv", "--namespace", "bkv", "version", "--client", "-o", "json"]]);
});

test.serial("port-forward and log arguments: 127.0.0.1 only, fixed local ports, resumed logs from a time", (t) => {
  t.deepEqual(portForwardArgs("bkv-1", [[17002, 7000], [40001, 7002]]), ["port-forward", "pod/bkv-1", "--address", "127.0.0.1", "17002:7000", "40001:7002"]);
  t.deepEqual(logFollowArgs("bkv-0", "bkv-node"), ["logs", "--follow", "pod/bkv-0", "-c", "bkv-node"]);
  t.deepEqual(logFollowArgs("bkv-0", "bkv-node", new Date("2026-11-23T21:00:00Z")), ["logs", "--follow", "pod/bkv-0", "-c", "bkv-node", "--since-time=2026-11-23T21:00:00.000Z"]);
});

test.serial("no kubectl on PATH is a clear error pointing to the doc", async (t) => {
  process.env.PATH = join(current.dir, "empty");
  const err = await t.throwsAsync(preflight(new Kubectl({ namespace: "bkv" }), { namespace: "bkv", chaosMesh: false }), { instanceOf: KubectlError });
  t.regex(err!.message, /kubectl not found .*install kubectl.*docs\/chaos-k8s\.md/);
});

test.serial("no cluster answering is a clear error saying how to create one", async (t) => {
  current.touch("unreachable");
  const err = await t.throwsAsync(preflight(new Kubectl({ namespace: "bkv", context: "kind-bkv" }), { namespace: "bkv", chaosMesh: false }));
  t.regex(err!.message, /no Kubernetes cluster answers \(context kind-bkv, namespace bkv\).*was refused.*kind create cluster --name bkv --config deploy\/k8s\/overlays\/kind\/kind-cluster\.yaml.*docs\/chaos-k8s\.md/);
});

test.serial("a missing namespace, missing pods, pods not running and a missing Chaos Mesh each say what to run", async (t) => {
  const k = new Kubectl({ namespace: "bkv" });
  const check = (chaosMesh = false) => preflight(k, { namespace: "bkv", chaosMesh });
  current.touch("no-namespace");
  t.regex((await t.throwsAsync(check()))!.message, /namespace bkv does not exist.*kubectl apply -k deploy\/k8s\/overlays\/kind/);
  rmSync(join(current.dir, "no-namespace"));
  current.touch("pods.json", PODS([]));
  t.regex((await t.throwsAsync(check()))!.message, /no bkv pods \(labels app\.kubernetes\.io\/name=bkv,app\.kubernetes\.io\/component=vault\) in namespace bkv/);
  current.touch("pods.json", PODS(["Running", "Pending", "Running"]));
  t.regex((await t.throwsAsync(check()))!.message, /not running: bkv-1 Pending.*rollout status statefulset\/bkv/);
  current.touch("pods.json", PODS(["Running", "Running", "Running"]));
  current.touch("no-crd");
  t.regex((await t.throwsAsync(check(true)))!.message, /Chaos Mesh is not installed.*helm.*or run without --chaos-mesh/);
  const pods = await check(false);
  t.deepEqual(pods.map((p) => p.metadata.name), ["bkv-0", "bkv-1", "bkv-2"]);
  t.true(current.calls().some((c) => c.join(" ") === "--namespace bkv get pods -l app.kubernetes.io/name=bkv,app.kubernetes.io/component=vault -o json"));
});

test.serial("missing certificates are named", (t) => {
  t.notThrows(() => checkCerts(mkCerts([1, 2, 3]), [1, 2, 3]));
  const err = t.throws(() => checkCerts(mkCerts([1, 3]), [1, 2, 3]));
  t.regex(err!.message, /missing node-2\.crt, node-2\.key .*make-secrets\.sh.*--certs DIR/);
});

function mkCerts(ids: number[]): string {
  const d = mkdtempSync(join(current.dir, "certs-"));
  writeFileSync(join(d, "ca.crt"), "-----BEGIN CERTIFICATE-----\n");
  for (const id of ids) for (const f of [`node-${id}.crt`, `node-${id}.key`]) writeFileSync(join(d, f), "x");
  return d;
}

function target(chaosMesh: boolean): K8sTarget {
  const k = new Kubectl({ namespace: "bkv", context: "kind-bkv" });
  const t = new K8sTarget(k, { namespace: "bkv", context: "kind-bkv", certsDir: mkCerts([1, 2, 3]), chaosMesh, logDir: join(current.dir, "logs"), runId: "k8s-seed1", podTimeoutMs: 20_000 });
  t.register([0, 1, 2].map((i) => ({ metadata: { name: `bkv-${i}` } })), (id) => [17000 + id, 27000 + id]);
  return t;
}

const strip = (c: string[]): string => c.slice(4).join(" "); // without --context C --namespace N

test.serial("a kill force-deletes the pod; the restart waits for the replacement and forwards to it again", async (t) => {
  const tg = target(false);
  try {
    await tg.faults.killNode(2);
    t.true(current.calls().map(strip).includes("delete pod bkv-1 --grace-period=0 --force --wait=false"));
    t.true(current.calls().every((c) => c[0] === "--context" && c[1] === "kind-bkv" && c[2] === "--namespace" && c[3] === "bkv"));
    await tg.faults.restartNode(2);
    t.true(current.calls().map(strip).includes("port-forward pod/bkv-1 --address 127.0.0.1 17002:7000 27002:7002"));
    t.is(tg.k.running, 1, "one port-forward running");
  } finally {
    await tg.close();
  }
  t.is(tg.k.running, 0, "close stops every kubectl child");
});

test.serial("a port-forward that ends while wanted (its pod was replaced) is started again", async (t) => {
  const k = new Kubectl({ namespace: "bkv" });
  const fwd = new PortForward(k, "bkv-0", [[17001, 7000]]);
  await fwd.start();
  current.touch("pf-kill");
  await waitUntil("a second port-forward", () => current.calls().filter((c) => c.includes("port-forward")).length === 2);
  await waitUntil("it listening", () => fwd.starts === 2 && k.running === 1);
  await fwd.stop();
  t.is(k.running, 0);
  t.is(current.calls().filter((c) => c.includes("port-forward")).length, 2, "not restarted after stop()");
});

test.serial("a kubectl failure during a kill is a KubectlError naming the command and kubectl's reason", async (t) => {
  const tg = target(false);
  current.touch("forbid");
  try {
    const err = await t.throwsAsync(tg.faults.killNode(1), { instanceOf: KubectlError });
    t.regex(err!.message, /`kubectl --context kind-bkv --namespace bkv delete pod bkv-0 --grace-period=0 --force --wait=false` failed: .*Forbidden.*cannot delete resource "pods"/);
  } finally {
    await tg.close();
  }
});

test.serial("without Chaos Mesh only kills are scheduled, and network faults are refused", async (t) => {
  const tg = target(false);
  try {
    t.deepEqual(tg.faultKinds, BASE_KINDS);
    await t.throwsAsync(tg.faults.partition({ kind: "isolate", node: 1 }), { message: /partition is not supported by the k8s target/ });
    await t.throwsAsync(tg.faults.pause(1), { message: /pause is not supported/ });
    await tg.faults.heal();
    t.false(current.calls().some((c) => c.includes("networkchaos") || c.includes("apply")));
  } finally {
    await tg.close();
  }
});

test.serial("with Chaos Mesh a partition is applied as validated NetworkChaos objects and healed by deleting this run's objects", async (t) => {
  const tg = target(true);
  try {
    t.true(tg.faultKinds.includes("partition") && tg.faultKinds.includes("latency"));
    await tg.faults.partition({ kind: "isolate", node: 2 });
    await tg.faults.heal();
    await tg.faults.setLatency(80);
    const applied = readdirSync(current.dir).filter((f) => f.startsWith("applied-")).sort().map((f) => JSON.parse(readFileSync(join(current.dir, f), "utf8")));
    t.is(applied.length, 2);
    t.is(applied[0].kind, "List");
    const partition = applied[0].items;
    t.is(partition.length, 3, "bkv-1 to the others, and each other to bkv-1");
    for (const o of [...partition, ...applied[1].items]) {
      t.deepEqual(validateChaosObject(o), []);
      t.is(o.metadata.labels[RUN_LABEL], "k8s-seed1");
    }
    t.is(applied[1].items[0].spec.delay.latency, "80ms");
    t.true(current.calls().map(strip).includes(`delete networkchaos -l ${RUN_LABEL}=k8s-seed1 --ignore-not-found --wait=true --timeout=60s`));
  } finally {
    await tg.close();
  }
});

test.serial("killAllSync kills every long-running kubectl child at once", async (t) => {
  const k = new Kubectl({ namespace: "bkv" });
  const children = [k.spawnLong(["logs", "--follow", "pod/bkv-0"]), k.spawnLong(["logs", "--follow", "pod/bkv-1"])];
  await waitUntil("both followers", () => current.calls().length === 2);
  const exits = children.map((c) => new Promise((r) => c.once("exit", (_code, sig) => r(sig))));
  t.is(k.killAllSync(), 2);
  t.deepEqual(await Promise.all(exits), ["SIGKILL", "SIGKILL"]);
  t.is(k.running, 0);
});

test.serial("k8s CLI arguments and the run id", (t) => {
  t.like(parseK8sArgs(["--namespace", "vault", "--duration", "30", "--seed", "s1", "--context", "kind-bkv", "--chaos-mesh"]), { namespace: "vault", durationS: 30, seed: "s1", context: "kind-bkv", chaosMesh: true, certsDir: "data/k8s-certs" });
  t.like(parseK8sArgs([]), { namespace: "bkv", chaosMesh: false });
  t.throws(() => parseK8sArgs(["--namespace", "Bad_NS"]), { message: /--namespace must be/ });
  t.throws(() => parseK8sArgs(["--context", "--chaos-mesh"]), { message: /--context needs a value/ });
  t.throws(() => parseK8sArgs(["--nodes", "3"]), { message: /unknown argument --nodes/ });
  t.is(runIdOf("Seed_1"), "k8s-seed-1");
  t.regex(runIdOf("x".repeat(64)), /^[a-z0-9]([a-z0-9.-]*[a-z0-9])?$/);
});
