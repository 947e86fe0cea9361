// Full recoveries of real users at a steady rate beside a benchmark's own
// work (bench:scale, bench/catch-up): PROBES users registered up front with
// the right password "right password", recovered in turn.
import { VaultClient } from "../client/sdk/index.js";
import type { LocalCluster } from "../testkit/cluster.js";
import { CHEAP_SCRYPT } from "./bkv.js";
import { quantile } from "./sample.js";

const PROBES = 8;

/** Recoveries of PROBES users at a steady rate; latencies by phase label (`phase` at each call's start). */
export class ProbeRecoveries {
  readonly latencies = new Map<string, number[]>();
  phase = "start";
  failures = 0;
  private timer: NodeJS.Timeout | null = null;
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
    this.timer = setInterval(() => void this.one(i++ % PROBES), 1000 / rate);
  }

  stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }

  /** "p99 ms (n recoveries)" of the phase, or "-" when none finished in it. */
  p99(phase: string): string {
    const xs = [...(this.latencies.get(phase) ?? [])].sort((a, b) => a - b);
    return xs.length === 0 ? "-" : `${quantile(xs, 0.99).toFixed(0)} ms (${xs.length} recoveries)`;
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
      this.failures++;
    }
  }
}
