// Supervised kubectl children of the k8s target: a port-forward per pod (fixed
// local ports, restarted when kubectl exits while it is wanted: a deleted pod
// ends its port-forward) and a log follower per pod (`kubectl logs -f`,
// appended to a local file, resumed for every new container of the pod).
import { appendFileSync } from "node:fs";
import type { ChildProcess } from "node:child_process";
import { sleep } from "../net.js";
import { type Kubectl, KubectlError } from "./kubectl.js";

/** The arguments of a port-forward of `pod` on 127.0.0.1 (local:remote pairs). */
export function portForwardArgs(pod: string, ports: readonly (readonly [number, number])[]): string[] {
  return ["port-forward", `pod/${pod}`, "--address", "127.0.0.1", ...ports.map(([l, r]) => `${l}:${r}`)];
}

/** `kubectl port-forward` of one pod to fixed local ports; restarted while wanted. */
export class PortForward {
  private child: ChildProcess | null = null;
  private wanted = false;
  private restarting: Promise<void> | null = null;
  /** How many times kubectl was (re)started, for logs and tests. */
  starts = 0;

  constructor(private readonly k: Kubectl, readonly pod: string, readonly ports: readonly (readonly [number, number])[], private readonly log: (l: string) => void = () => {}) {}

  /** Starts the forward; resolves when kubectl listens on every local port. Rejects with kubectl's error. */
  async start(timeoutMs = 30_000): Promise<void> {
    this.wanted = true;
    try {
      await this.spawnOnce(timeoutMs);
    } catch (err) {
      await this.stop(); // a failed start is not restarted in the background: the caller decides
      throw err;
    }
  }

  /** Stops the forward and does not restart it. */
  async stop(): Promise<void> {
    this.wanted = false;
    const c = this.child;
    this.child = null;
    if (c !== null) await this.k.stop(c);
  }

  private spawnOnce(timeoutMs: number): Promise<void> {
    const child = this.k.spawnLong(portForwardArgs(this.pod, this.ports));
    this.child = child;
    this.starts++;
    return new Promise((resolve, reject) => {
      let out = "";
      let err = "";
      let settled = false;
      let listening = false;
      const settle = (e?: Error): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        listening = e === undefined;
        if (e === undefined) resolve();
        else reject(e);
      };
      const timer = setTimeout(() => {
        settle(new KubectlError(`port-forward to pod ${this.pod} did not listen within ${timeoutMs / 1000} s: ${err.trim().slice(-300) || "no message"}`));
        void this.k.stop(child);
      }, timeoutMs);
      child.stdout!.on("data", (b: Buffer) => {
        out += b.toString();
        const seen = new Set([...out.matchAll(/Forwarding from 127\.0\.0\.1:(\d+)/g)].map((m) => Number(m[1])));
        if (this.ports.every(([l]) => seen.has(l))) settle();
      });
      child.stderr!.on("data", (b: Buffer) => {
        err = (err + b.toString()).slice(-4000);
      });
      child.once("error", (e) => settle(this.k.explain(e)));
      child.once("exit", (code) => {
        settle(new KubectlError(`port-forward to pod ${this.pod} exited (${code ?? "signal"}): ${err.trim().slice(-300) || "no message"}`));
        // Only a forward that listened is restarted here; a failed start is its starter's business.
        if (listening && this.wanted && this.child === child) this.restartSoon(err);
      });
    });
  }

  /** kubectl exited while the forward is wanted (pod deleted, connection lost): start it again until it listens. */
  private restartSoon(why: string): void {
    if (this.restarting !== null) return;
    this.log(`port-forward to ${this.pod} ended (${why.trim().split("\n").at(-1) ?? ""}); restarting it`);
    this.restarting = (async () => {
      for (let delay = 500; this.wanted; delay = Math.min(delay * 2, 5000)) {
        await sleep(delay);
        if (!this.wanted) break;
        try {
          await this.spawnOnce(30_000);
          break;
        } catch {
          // that attempt never listened, so its exit handler does not restart: loop
        }
      }
    })().finally(() => {
      this.restarting = null;
    });
  }
}

/** Where a pod is: its uid and phase, or undefined when it does not exist. */
export type PodState = { uid: string; phase: string } | undefined;

/** The arguments of a log follow of `pod`'s container, from `sinceTime` when resuming the same container. */
export function logFollowArgs(pod: string, container: string, sinceTime?: Date): string[] {
  return ["logs", "--follow", `pod/${pod}`, "-c", container, ...(sinceTime ? [`--since-time=${sinceTime.toISOString()}`] : [])];
}

/**
 * Follows a pod's container log into `file` across pod replacements: a new pod (new uid) is read from its
 * start; a follow of the same pod that ended (container restarted) resumes 2 s before it ended. Lines may
 * repeat; the leaders checker counts a claim once per (term, node).
 */
export class LogFollower {
  private child: ChildProcess | null = null;
  private stopped = false;
  private loop: Promise<void> | null = null;
  private endsWithNewline = true;

  constructor(private readonly k: Kubectl, readonly pod: string, readonly container: string, readonly file: string, private readonly podState: (pod: string) => Promise<PodState>) {}

  start(): void {
    this.loop ??= this.run();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.child !== null) await this.k.stop(this.child);
    await this.loop;
  }

  private async run(): Promise<void> {
    let lastUid: string | undefined;
    let lastEnd: Date | undefined;
    while (!this.stopped) {
      const st = await this.podState(this.pod).catch(() => undefined);
      if (st === undefined || st.phase !== "Running") {
        await sleep(1000);
        continue;
      }
      const since = st.uid === lastUid && lastEnd !== undefined ? new Date(lastEnd.getTime() - 2000) : undefined;
      try {
        await this.followOnce(since);
      } catch {
        await sleep(1000); // kubectl could not start (or is closed): try again unless stopped
      }
      lastUid = st.uid;
      lastEnd = new Date();
      if (!this.stopped) await sleep(500);
    }
  }

  private followOnce(since: Date | undefined): Promise<void> {
    if (!this.endsWithNewline) this.write("\n");
    const child = this.k.spawnLong(logFollowArgs(this.pod, this.container, since));
    this.child = child;
    return new Promise((resolve) => {
      child.stdout!.on("data", (b: Buffer) => this.write(b.toString()));
      child.once("error", () => resolve());
      child.once("close", () => {
        if (this.child === child) this.child = null;
        resolve();
      });
    });
  }

  private write(text: string): void {
    if (text === "") return;
    appendFileSync(this.file, text);
    this.endsWithNewline = text.endsWith("\n");
  }
}
