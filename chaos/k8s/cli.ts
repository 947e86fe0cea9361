// npm run chaos:k8s -- --namespace NS --duration SECONDS --seed S [--context C] [--chaos-mesh] [--certs DIR]
//                      [--clients N] [--users N] [--guess-limit N]
// The chaos run against a bkv StatefulSet deployed from deploy/k8s (docs/chaos-k8s.md). Ends with
// `faults: F, violations: V`; exit 1 when V > 0, 2 on a usage or setup error (kubectl, cluster, namespace,
// pods, certificates, Chaos Mesh: the message says what to run) or when interrupted.
import { randomBytes } from "node:crypto";
import { join, resolve } from "node:path";
import { CHAOS_EXIT, seedArg, UsageError, walkArgs } from "../args.js";
import { onInterrupt, reportAbort } from "../cli.js";
import { ignoreBrokenPipes } from "../interrupt.js";
import { prepareOutDir, RunAborted, runAgainst } from "../runner.js";
import { DOC, Kubectl, KubectlError } from "./kubectl.js";
import { K8sTarget } from "./target.js";

export interface K8sRunOptions {
  namespace: string;
  context?: string;
  chaosMesh: boolean;
  certsDir: string;
  durationS: number;
  seed: string;
  clients?: number;
  users?: number;
  guessLimit?: number;
}

const ROOT = resolve(import.meta.dirname, "../..");
const USAGE = "usage: npm run chaos:k8s -- --namespace NS --duration SECONDS --seed S [--context C] [--chaos-mesh] [--certs DIR] [--clients N] [--users N] [--guess-limit N]";

export function parseK8sArgs(argv: readonly string[]): K8sRunOptions {
  const o: K8sRunOptions = { namespace: "bkv", chaosMesh: false, certsDir: "data/k8s-certs", durationS: 60, seed: randomBytes(4).toString("hex") };
  walkArgs(argv, (a, val, int) => {
    switch (a) {
      case "--namespace": o.namespace = val(); if (!/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/.test(o.namespace)) throw new UsageError("--namespace must be a Kubernetes namespace name"); break;
      case "--context": o.context = val(); break;
      case "--chaos-mesh": o.chaosMesh = true; break;
      case "--certs": o.certsDir = val(); break;
      case "--duration": o.durationS = int(5, 86_400); break;
      case "--seed": o.seed = seedArg(val()); break;
      case "--clients": o.clients = int(1, 32); break;
      case "--users": o.users = int(1, 100); break;
      case "--guess-limit": o.guessLimit = int(1, 255); break;
      default: throw new UsageError(`unknown argument ${a}`);
    }
  });
  return o;
}

/** The run id labelling this run's Chaos Mesh objects: the seed, made a valid label value. */
export function runIdOf(seed: string): string {
  return `k8s-${seed}`.toLowerCase().replace(/[^a-z0-9.-]/g, "-").slice(0, 50).replace(/[^a-z0-9]+$/, "");
}

async function main(): Promise<number> {
  let opts: K8sRunOptions;
  try {
    opts = parseK8sArgs(process.argv.slice(2));
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    process.stderr.write(`chaos:k8s: ${err.message}\n${USAGE}\n`);
    return CHAOS_EXIT.USAGE;
  }
  const ctx = opts.context ? ` --context ${opts.context}` : "";
  const replay = `npm run chaos:k8s -- --namespace ${opts.namespace}${ctx} --duration ${opts.durationS} --seed ${opts.seed}${opts.chaosMesh ? " --chaos-mesh" : ""}`;
  process.stderr.write(`chaos:k8s: seed ${opts.seed} (replay: ${replay})\n`);
  const outDir = join(ROOT, "chaos/out", `k8s-${opts.seed}`);
  const log = (l: string): void => void process.stderr.write(`${l}\n`);
  const kept = prepareOutDir(outDir);
  if (kept !== undefined) log(`the previous run in ${outDir} is kept as ${kept}`);
  const interrupt = onInterrupt("chaos:k8s");
  const kubectl = new Kubectl({ namespace: opts.namespace, context: opts.context });
  interrupt.setTarget(kubectl); // a forced exit kills every kubectl child, also while connecting
  let target: K8sTarget | undefined;
  try {
    target = await K8sTarget.connect({
      namespace: opts.namespace, context: opts.context, certsDir: resolve(opts.certsDir), chaosMesh: opts.chaosMesh,
      logDir: join(outDir, "cluster"), runId: runIdOf(opts.seed), log, kubectl,
    });
    const r = await runAgainst(target, { ...opts, outDir, log, replay, signal: interrupt.signal });
    process.stdout.write(`${r.summary}\n`);
    process.stderr.write(`report: ${r.outDir}/report.html\n`);
    return r.violations > 0 ? 1 : 0;
  } catch (err) {
    if (err instanceof RunAborted) return reportAbort(err, "chaos:k8s", `${interrupt.reason()}: workload stopped, port-forwards and log followers stopped, this run's NetworkChaos objects deleted`, interrupt.exitCode());
    if (err instanceof KubectlError) {
      process.stderr.write(`chaos:k8s: ${err.message}\nchaos:k8s: setup failed (no run); see ${DOC}\n`);
      return CHAOS_EXIT.NO_RUN;
    }
    throw err;
  } finally {
    await target?.close();
    interrupt.dispose();
  }
}

if (process.argv[1]?.endsWith("k8s/cli.ts")) {
  ignoreBrokenPipes();
  main().then((code) => process.exit(code), (err) => {
    process.stderr.write(`chaos:k8s: ${err instanceof Error ? err.stack ?? err.message : String(err)}\nchaos:k8s: run aborted (no verdict)\n`);
    process.exit(2);
  });
}
