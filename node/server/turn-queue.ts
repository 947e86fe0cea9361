// The client port's calls, started in arrival order with a time budget per
// event-loop turn. A burst of calls (128 registrations can arrive in one
// socket read) would otherwise be admitted (token check) and validated
// (point decodes, encoding) all in the same turn, which then delays the
// Ready loop, the peers' messages and the other calls' answers. Here a call
// starts at once while the queue is empty and the turn has run less than
// `budgetMs` of the queue's work; otherwise it waits for a later turn
// (setImmediate, after the event loop's I/O and its other immediates).
// One call is admitted at a time: its start runs only once its admission
// settled, and the next waits for that, so the budget sees each call's cost.
export class TurnQueue {
  /** Calls not started yet: waiting[head..]. */
  private waiting: Array<() => Promise<void>> = [];
  private head = 0;
  /** When the queue's first call of this turn started (null: none yet this turn). */
  private turnStart: number | null = null;
  /** An admission in progress: the next call waits for it. */
  private busy = false;
  /** A pump is scheduled for a later turn. */
  private scheduled = false;

  constructor(private readonly budgetMs: number, private readonly now: () => number = () => performance.now()) {}

  /**
   * Runs `admit`, then (if it resolved) `start`, with the other calls' in
   * arrival order; resolves or rejects as `admit`, then `start` do.
   */
  run<T>(admit: () => Promise<void>, start: () => Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      // Neither a throwing admit nor a throwing start may leave the queue busy.
      const started = () => {
        try {
          resolve(start());
        } catch (err) {
          reject(err);
        }
      };
      this.waiting.push(() => {
        try {
          return admit().then(started, reject);
        } catch (err) {
          reject(err);
          return Promise.resolve();
        }
      });
      this.pump();
    });
  }

  /** Starts waiting calls, one admission at a time, while this turn's budget lasts; the rest in a later turn. */
  private pump(): void {
    if (this.busy || this.head === this.waiting.length) return;
    if (!this.withinTurn()) {
      if (!this.scheduled) setImmediate(() => { this.scheduled = false; this.pump(); });
      this.scheduled = true;
      return;
    }
    this.busy = true;
    const next = this.waiting[this.head++]!;
    if (this.head === this.waiting.length) [this.waiting, this.head] = [[], 0];
    void next().finally(() => {
      this.busy = false;
      this.pump();
    });
  }

  private withinTurn(): boolean {
    const now = this.now();
    if (this.turnStart === null) {
      this.turnStart = now;
      setImmediate(() => { this.turnStart = null; });
    }
    return now - this.turnStart < this.budgetMs;
  }
}
