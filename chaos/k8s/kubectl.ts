// kubectl as a child process: one-shot commands with clear errors, and
// long-running ones (port-forward, logs -f) that are tracked so that every one
// of them is stopped when the harness ends (close(), or killAllSync() on a
// forced exit). Every command carries the same --context and --namespace.
import { type ChildProcess, spawn } from "node:child_process";

export const DOC = "docs/chaos-k8s.md";

export interface KubectlOptions {
  namespace: string;
  /** kubeconfig context; the current context when undefined. */
  context?: string | undefined;
  /** The kubectl executable (default: `kubectl` from PATH). */
  bin?: string;
  /** Default time limit of one-shot commands (default 60 s). */
  timeoutMs?: number;
}

/** A kubectl failure, with a message that says what to do. */
export class KubectlError extends Error {
  constructor(message: string, readonly stderr = "") {
    super(message);
    this.name = "KubectlError";
  }
}

/** Patterns of kubectl's stderr when no cluster answers, and what to do. */
const UNREACHABLE = /Unable to connect to the server|connection refused|no such host|couldn't get current server API group list|the server could not find the requested resource \(get namespaces\)|current-context is not set|no configuration has been provided|context "[^"]*" does not exist|i\/o timeout/i;

export class Kubectl {
  private readonly children = new Set<ChildProcess>();
  /** After close(): nothing new is started (a nemesis step still running after an abort). */
  private closed = false;

  constructor(readonly o: KubectlOptions) {}

  get bin(): string {
    return this.o.bin ?? "kubectl";
  }

  /** The arguments of one command: context and namespace first, then `args`. */
  args(args: readonly string[]): string[] {
    return [...(this.o.context ? ["--context", this.o.context] : []), "--namespace", this.o.namespace, ...args];
  }

  /** Where the commands go, for messages ("context kind-bkv, namespace bkv"). */
  where(): string {
    return `${this.o.context ? `context ${this.o.context}` : "the current kubectl context"}, namespace ${this.o.namespace}`;
  }

  /** Runs one command to completion; resolves with stdout, rejects with a KubectlError naming the command. */
  run(args: readonly string[], opts: { input?: string; timeoutMs?: number } = {}): Promise<string> {
    const full = this.args(args);
    if (this.closed) return Promise.reject(new KubectlError(`kubectl is closed: \`${this.show(args)}\` not run`));
    return new Promise((resolve, reject) => {
      let child: ChildProcess;
      try {
        child = spawn(this.bin, full, { stdio: ["pipe", "pipe", "pipe"] });
      } catch (err) {
        reject(this.explain(err));
        return;
      }
      this.children.add(child);
      let out = "";
      let errText = "";
      child.stdout!.on("data", (b: Buffer) => (out += b.toString()));
      child.stderr!.on("data", (b: Buffer) => (errText += b.toString()));
      const limit = opts.timeoutMs ?? this.o.timeoutMs ?? 60_000;
      const timer = setTimeout(() => child.kill("SIGKILL"), limit);
      child.once("error", (err) => {
        clearTimeout(timer);
        this.children.delete(child);
        reject(this.explain(err));
      });
      child.once("close", (code, signal) => {
        clearTimeout(timer);
        this.children.delete(child);
        if (code === 0) resolve(out);
        else if (signal !== null) reject(new KubectlError(`\`${this.show(args)}\` did not finish within ${limit / 1000} s (${this.where()})`, errText));
        else reject(this.commandError(args, errText));
      });
      child.stdin!.on("error", () => {}); // a command that does not read stdin
      child.stdin!.end(opts.input ?? "");
    });
  }

  /** Starts a long-running command (port-forward, logs -f); stopped by stop(), close() or killAllSync(). */
  spawnLong(args: readonly string[]): ChildProcess {
    if (this.closed) throw new KubectlError(`kubectl is closed: \`${this.show(args)}\` not started`);
    const child = spawn(this.bin, this.args(args), { stdio: ["ignore", "pipe", "pipe"] });
    this.children.add(child);
    child.once("exit", () => this.children.delete(child));
    child.once("error", () => this.children.delete(child));
    return child;
  }

  /** SIGTERM to one long-running child; resolves when it exited (SIGKILL after 3 s). */
  async stop(child: ChildProcess): Promise<void> {
    if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) {
      this.children.delete(child);
      return;
    }
    const exited = new Promise((r) => child.once("exit", r));
    child.kill("SIGTERM");
    const t = setTimeout(() => child.kill("SIGKILL"), 3000);
    await exited;
    clearTimeout(t);
    this.children.delete(child);
  }

  /** Stops every child this instance started. */
  async close(): Promise<void> {
    this.closed = true;
    await Promise.all([...this.children].map((c) => this.stop(c)));
  }

  /** SIGKILLs every child at once (forced exit). Returns how many were signalled. */
  killAllSync(): number {
    let n = 0;
    for (const c of this.children) {
      if (c.exitCode === null && c.signalCode === null && c.pid !== undefined) {
        c.kill("SIGKILL");
        n++;
      }
    }
    this.children.clear();
    return n;
  }

  /** How many children are running (tests). */
  get running(): number {
    return this.children.size;
  }

  private show(args: readonly string[]): string {
    return ["kubectl", ...this.args(args)].join(" ");
  }

  /** A spawn failure as a KubectlError (ENOENT: kubectl is not installed). */
  explain(err: unknown): KubectlError {
    if ((err as NodeJS.ErrnoException).code === "ENOENT")
      return new KubectlError(`kubectl not found (looked for ${JSON.stringify(this.bin)} on PATH): install kubectl (https://kubernetes.io/docs/tasks/tools/) and see ${DOC} "Prerequisites"`);
    return new KubectlError(`cannot run kubectl: ${err instanceof Error ? err.message : String(err)}`);
  }

  private commandError(args: readonly string[], stderr: string): KubectlError {
    const first = (stderr.trim().split("\n").at(-1) ?? "").slice(0, 400);
    if (UNREACHABLE.test(stderr))
      return new KubectlError(
        `no Kubernetes cluster answers (${this.where()}): ${first}. Create one with ` +
          "`kind create cluster --name bkv --config deploy/k8s/overlays/kind/kind-cluster.yaml` and deploy bkv as in " +
          `${DOC} (pass --context kind-bkv if it is not the current context)`,
        stderr,
      );
    return new KubectlError(`\`${this.show(args)}\` failed: ${first || "no message"}`, stderr);
  }
}
