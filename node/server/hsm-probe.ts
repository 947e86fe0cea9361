// A periodic HSM probe: one signature with the identity key (cheap: one
// ECDSA operation on the token, no state). A probe that fails or takes
// longer than its timeout marks the HSM failing until a probe succeeds;
// health (health.ts) turns NOT_SERVING meanwhile. Counted in metrics.
export interface HsmProbeState {
  readonly ok: boolean;
  /** Why the last probe failed; empty when ok. Never a secret (HSM errors name codes, not data). */
  readonly error: string;
}

export interface HsmProbeOptions {
  readonly intervalMs: number;
  /** One probe: resolves when the HSM answered. */
  probe(): Promise<unknown>;
  onResult(ok: boolean): void;
}

export class HsmProbe {
  private current: HsmProbeState = { ok: true, error: "" };
  private timer: NodeJS.Timeout | null = null;
  private running = false;

  constructor(private readonly o: HsmProbeOptions) {}

  get state(): HsmProbeState {
    return this.current;
  }

  start(): void {
    this.timer = setInterval(() => { void this.runOnce(); }, this.o.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }

  /** Runs one probe (skipped while one is running) and records its outcome. */
  async runOnce(): Promise<void> {
    if (this.running) return;
    this.running = true;
    const timeoutMs = Math.min(this.o.intervalMs, 5000);
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs); });
    try {
      await Promise.race([this.o.probe(), timeout]);
      this.current = { ok: true, error: "" };
    } catch (err) {
      this.current = { ok: false, error: err instanceof Error ? err.message : String(err) };
    } finally {
      clearTimeout(timer);
      this.running = false;
    }
    this.o.onResult(this.current.ok);
  }
}
