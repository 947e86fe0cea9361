// A leader's screen for the proposals other members forward (MsgProp from a
// peer; the transport has bound `from` to the sender's certificate). A
// client's request is bounded at the port it reaches (size, per-address and
// per-user rates); a member's forwarded proposals are not, so a rogue member
// could fill every node's WAL as fast as the leader writes. Here each sender
// is held to a largest entry and to a byte rate (a token bucket per sender);
// a proposal over either is dropped before Raft appends it, and its sender's
// caller times out and retries, like any dropped proposal. A forwarded
// membership change is dropped too, and so is an operator's vault command
// (issuer keys, the bound-shares activation): an honest member proposes
// those only as leader (the admin port answers NOT_LEADER elsewhere), and
// the admin port is where an operator's certificate is required for them
// (admin-auth.ts).
import { EntryType, type Message, type NodeId } from "../raft/index.js";
import { type CommandKind, payloadKind } from "../vault/index.js";
import type { Warn } from "./log-throttle.js";

/** The default largest forwarded entry: a client request's default cap (256 KiB) and room for its envelope, times four. */
export const DEFAULT_MAX_FORWARDED_ENTRY_BYTES = 1024 * 1024;
/**
 * The default forwarded bytes per second and sender. An honest follower
 * forwards what its own clients propose: at the measured peaks (~1,800
 * begins/s of ~0.4 KiB, ~500 registrations/s of ~0.9 KiB, docs/benchmarks.md)
 * under 1 MiB/s; this is eight times that.
 */
export const DEFAULT_FORWARDED_BYTES_PER_SECOND = 8 * 1024 * 1024;

export interface ForwardGateOptions {
  /** The largest entry a proposal may hold. */
  readonly maxEntryBytes: number;
  /** Each sender's bucket fills at this rate and holds a second of it (at least one largest entry). */
  readonly bytesPerSecond: number;
  /** Throttled per sender and reason by the caller (log-throttle.ts): a member can cause these lines. */
  readonly warn: Warn;
  readonly now?: () => number;
}

/** Vault commands only the admin port proposes, on the leader. */
const OPERATOR_KINDS: ReadonlySet<CommandKind | null> = new Set<CommandKind>(["issuers", "bind-shares"]);

interface Bucket {
  bytes: number;
  at: number;
}

export class ForwardGate {
  private readonly buckets = new Map<NodeId, Bucket>();
  private readonly capacity: number;
  private readonly now: () => number;

  constructor(private readonly o: ForwardGateOptions) {
    if (!(o.maxEntryBytes > 0) || !(o.bytesPerSecond > 0)) throw new RangeError("ForwardGate: the bounds must be positive");
    this.capacity = Math.max(o.bytesPerSecond, o.maxEntryBytes);
    this.now = o.now ?? Date.now;
  }

  /** Whether forwarded proposal `m` may go to Raft; a refused one is logged (throttled) and must be dropped. */
  admit(m: Message): boolean {
    if (m.entries.some((e) => e.type !== EntryType.Normal)) {
      this.o.warn("a forwarded proposal dropped: it holds a membership change", `conf:${m.from}`, { from: m.from });
      return false;
    }
    const operators = m.entries.find((e) => OPERATOR_KINDS.has(payloadKind(e.data)));
    if (operators !== undefined) {
      this.o.warn("a forwarded proposal dropped: it holds an operator's vault command", `operator:${m.from}`, { from: m.from, kind: payloadKind(operators.data) });
      return false;
    }
    const { largest, bytes } = entrySizes(m);
    if (largest > this.o.maxEntryBytes) {
      this.o.warn("a forwarded proposal dropped: an entry over the size bound", `size:${m.from}`, { from: m.from, bytes: largest, bound: this.o.maxEntryBytes });
      return false;
    }
    if (!this.take(m.from, bytes)) {
      this.o.warn("a forwarded proposal dropped: the sender is over its byte rate", `rate:${m.from}`, { from: m.from, bytes, bytesPerSecond: this.o.bytesPerSecond });
      return false;
    }
    return true;
  }

  /** Takes `bytes` from `from`'s bucket, refilled for the time since its last take; false (nothing taken) if it holds fewer. */
  private take(from: NodeId, bytes: number): boolean {
    const t = this.now();
    const b = this.buckets.get(from) ?? { bytes: this.capacity, at: t };
    b.bytes = Math.min(this.capacity, b.bytes + (Math.max(0, t - b.at) * this.o.bytesPerSecond) / 1000);
    b.at = t;
    this.buckets.set(from, b);
    if (b.bytes < bytes) return false;
    b.bytes -= bytes;
    return true;
  }
}

/** The largest entry and the sum of `m`'s entries, in one pass (no spread: a message may hold very many entries). */
function entrySizes(m: Message): { largest: number; bytes: number } {
  let largest = 0;
  let bytes = 0;
  for (const e of m.entries) {
    largest = Math.max(largest, e.data.length);
    bytes += e.data.length;
  }
  return { largest, bytes };
}
