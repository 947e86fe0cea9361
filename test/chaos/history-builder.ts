// Builds crafted histories for checker tests.
import type { HistoryEvent, OpName, OpValue, Outcome } from "../../chaos/history.js";

export class H {
  readonly events: HistoryEvent[] = [];

  /** One operation: invoke at `t0`, complete at `t1` with `outcome` (info with t1 = null: never completed). */
  op(process: number, op: OpName, user: string, t0: number, t1: number | null, outcome: Outcome, input: OpValue = {}, output: OpValue = {}): this {
    this.events.push({ type: "invoke", process, op, user, value: input, time: t0 });
    if (t1 !== null) this.events.push({ type: outcome, process, op, user, value: output, time: t1 });
    return this;
  }

  /** Sorts by time (stable) as a real recorder would have written it. */
  sorted(): HistoryEvent[] {
    return this.events.map((e, i) => [e, i] as const).sort((a, b) => a[0].time - b[0].time || a[1] - b[1]).map(([e]) => e);
  }
}
