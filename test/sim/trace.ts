// The event trace of a run: one line per event ("t=<time> n<node> <event>").
// Every run keeps a digest of its trace (to prove a seed replays exactly);
// a replay also prints the lines.

import type { NodeId } from "../../node/raft/types.js";

export class Trace {
  private h1 = 0x811c9dc5;
  private h2 = 0x01000193;
  private count = 0;
  /** Retained lines (the last `keep`), for violation reports. */
  private readonly tail: string[] = [];

  /**
   * `print`: where to write each line as it happens (a replay), or null.
   * `verbose`: also record per-message events.
   */
  constructor(
    private readonly print: ((line: string) => void) | null = null,
    readonly verbose = false,
    private readonly keep = 40,
  ) {}

  add(time: number, node: NodeId | null, event: string): void {
    const line = `t=${String(time).padStart(5)} ${node === null ? "   " : `n${node}`.padEnd(3)} ${event}`;
    for (let i = 0; i < line.length; i++) {
      const c = line.charCodeAt(i);
      this.h1 = Math.imul(this.h1 ^ c, 0x01000193) >>> 0;
      this.h2 = Math.imul(this.h2 ^ c, 0x5bd1e995) >>> 0;
    }
    this.count++;
    this.tail.push(line);
    if (this.tail.length > this.keep) this.tail.shift();
    this.print?.(line);
  }

  /** A digest of every line so far: equal digests <=> (with overwhelming likelihood) equal traces. */
  digest(): string {
    return `${this.count}:${this.h1.toString(16).padStart(8, "0")}${this.h2.toString(16).padStart(8, "0")}`;
  }

  lastLines(): readonly string[] {
    return this.tail;
  }
}
