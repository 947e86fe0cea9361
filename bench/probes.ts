// Full recoveries of real users at a steady rate beside a benchmark's own
// work (bench:scale, bench/catch-up): PROBES users registered up front with
// the right password "right password", recovered in turn.
import { VaultClient } from "../client/sdk/index.js";
import type { LocalCluster } from "../testkit/cluster.js";
import { CHEAP_SCRYPT } from "./bkv.js";
import { quantile } from "./sample.js";

const PROBES = 8;

/** Recoveries of PROBES users at a steady rate; latencies and failures by phase label (`phase` at each call's start). */
export class ProbeRecoveries {
  readonly latencies = new Map<string, number[]>();
  readonly failed = new Map<string, number>();
  phase = "start";
  private timer: NodeJS.Timeout | null = null;
  private readonly inFlight = new Set<Promise<void>>();
  private constructor(private readonly client: VaultClient) {}

  /** Registers the probe users on `cluster` (guess limit 10: a recovery with the right password never spends one). */
  static async register(cluster: LocalCluster): Promise<ProbeRecoveries> {
    const client = new VaultClient(await cluster.descriptor(), { token: cluster.token, scrypt: CHEAP_SCRYPT });
    for (let p = 0; p < PROBES; p++) await client.register(`probe-${p}`, "right password", { guessLimit: 10 });
    return new ProbeRecoveries(client);
  }

  /** Starts `rate` recoveries per second (none when rate ≤ 0); a running rate is replaced. */
  start(rate: number): void {
    this.stop();
    if (rate <= 0) return;
    let i = 0;
    this.timer = setInterval(() => this.track(this.one(i++ % PROBES)), 1000 / rate);
  }

  /** Starts no more recoveries; those in flight go on (drain() waits for them). */
  stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }

  /** Resolves once every recovery started so far has ended (counted in its phase). */
  async drain(): Promise<void> {
    await Promise.all([...this.inFlight]);
  }

  /** Recoveries that failed, in all phases. */
  get failures(): number {
    return [...this.failed.values()].reduce((a, b) => a + b, 0);
  }

  /** "p99 ms (n recoveries[, k failed])" of the phase, or "-" when none ended in it. */
  p99(phase: string): string {
    const xs = [...(this.latencies.get(phase) ?? [])].sort((a, b) => a - b);
    const failed = this.failed.get(phase) ?? 0;
    const failures = failed === 0 ? "" : `, ${failed} failed`;
    if (xs.length === 0) return failed === 0 ? "-" : `- (0 recoveries${failures})`;
    return `${quantile(xs, 0.99).toFixed(0)} ms (${xs.length} recoveries${failures})`;
  }

  private track(p: Promise<void>): void {
    this.inFlight.add(p);
    void p.finally(() => this.inFlight.delete(p));
  }

  private async one(probe: number): Promise<void> {
    const phase = this.phase;
    const t0 = performance.now();
    try {
      await this.client.recover(`probe-${probe}`, "right password");
      const list = this.latencies.get(phase) ?? [];
      list.push(performance.now() - t0);
      this.latencies.set(phase, list);
    } catch {
      this.failed.set(phase, (this.failed.get(phase) ?? 0) + 1);
    }
  }
}
