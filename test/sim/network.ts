// The simulated network: an in-flight queue ordered by virtual delivery
// time. Each message can be dropped, duplicated or delayed; random delays
// reorder messages. Directed links can be cut (a one-way cut models an
// asymmetric partition; cutting both directions a symmetric one).

import type { Message, NodeId } from "../../node/raft/types.js";
import type { Prng } from "./prng.js";

export interface NetworkParams {
  /** Probability that a message is lost. */
  readonly dropRate: number;
  /** Probability that a message is delivered twice. */
  readonly dupRate: number;
  /** Normal delay is uniform in [minDelay, maxDelay] ticks. */
  readonly minDelay: number;
  readonly maxDelay: number;
  /** Probability of a long delay, uniform in (maxDelay, longDelay]. */
  readonly longDelayRate: number;
  readonly longDelay: number;
}

/** A reliable, prompt network: used to reach quiescence at the end of a run. */
export const CALM: NetworkParams = {
  dropRate: 0, dupRate: 0, minDelay: 1, maxDelay: 1, longDelayRate: 0, longDelay: 1,
};

interface InFlight {
  readonly at: number;
  readonly msg: Message;
}

export type SendOutcome = "queued" | "dropped" | "cut";

export class Network {
  params: NetworkParams;
  private queue: InFlight[] = [];
  /** Cut directed links, as "from>to". */
  private cut = new Set<string>();

  constructor(private readonly rng: Prng, params: NetworkParams) {
    this.params = params;
  }

  /** Queues `msg` for delivery at now + delay, unless the link is cut or the message is lost. */
  send(msg: Message, now: number): SendOutcome {
    if (this.isCut(msg.from, msg.to)) return "cut";
    const p = this.params;
    if (this.rng.chance(p.dropRate)) return "dropped";
    this.enqueue(msg, now + this.delay());
    if (this.rng.chance(p.dupRate)) this.enqueue(msg, now + this.delay());
    return "queued";
  }

  /**
   * Removes and returns the messages due at or before `now`, in a random
   * order. A link cut while a message was in flight loses that message.
   */
  takeDue(now: number): Message[] {
    if (this.queue.length === 0) return [];
    const due: Message[] = [];
    const rest: InFlight[] = [];
    for (const f of this.queue) {
      if (f.at > now) rest.push(f);
      else if (!this.isCut(f.msg.from, f.msg.to)) due.push(f.msg);
    }
    this.queue = rest;
    return this.rng.shuffle(due);
  }

  /** Messages still in flight. */
  pending(): number {
    return this.queue.length;
  }

  cutLink(from: NodeId, to: NodeId): void {
    this.cut.add(`${from}>${to}`);
  }

  /** Cuts both directions between every node of `a` and every node of `b`. */
  partition(a: readonly NodeId[], b: readonly NodeId[]): void {
    for (const x of a) {
      for (const y of b) {
        this.cutLink(x, y);
        this.cutLink(y, x);
      }
    }
  }

  isCut(from: NodeId, to: NodeId): boolean {
    return this.cut.has(`${from}>${to}`);
  }

  /** Number of directed links currently cut. */
  cutCount(): number {
    return this.cut.size;
  }

  healAll(): void {
    this.cut.clear();
  }

  private delay(): number {
    const p = this.params;
    if (p.longDelayRate > 0 && this.rng.chance(p.longDelayRate)) return this.rng.range(p.maxDelay + 1, p.longDelay);
    return this.rng.range(p.minDelay, p.maxDelay);
  }

  private enqueue(msg: Message, at: number): void {
    this.queue.push({ at, msg });
  }
}
