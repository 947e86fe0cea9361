// The request-id table of AdminService's mutating calls (AddLearner,
// PromoteLearner, RemoveNode, RequireBoundShares). A caller that lost a
// reply retries with the same request_id and gets the first outcome: the
// same answer, or the same refusal, never a second change ("already a
// member").
//
// Contract and limits (docs/operations.md, "Request ids"):
// - the table is this node's, in memory, not replicated: a retry that reaches
//   another node (a new leader) or this node after a restart runs again;
// - an outcome that did not settle the change (UNAVAILABLE: not the leader,
//   no leader, a proposal that timed out or was dropped) is forgotten, so the
//   retry runs the call again;
// - a request id reused for a different request is refused (INVALID_ARGUMENT,
//   REQUEST_ID_REUSED);
// - at most `capacity` settled outcomes are kept, oldest evicted first;
//   calls still running are never evicted.
import { status } from "@grpc/grpc-js";
import { ErrorReason } from "../../proto/gen/bkv/v1/status_pb.js";
import { RpcFailure, invalidArgument } from "./errors.js";
import { ProposalError } from "./raft-loop.js";

/** Length of a request id (admin.proto). */
export const REQUEST_ID_BYTES = 16;

interface Entry {
  /** What the request asked for: a retry must ask the same. */
  readonly request: string;
  readonly outcome: Promise<unknown>;
  settled: boolean;
}

export class AdminRequestTable {
  private readonly entries = new Map<string, Entry>();

  constructor(private readonly capacity = 1024) {}

  get size(): number {
    return this.entries.size;
  }

  /**
   * Runs `call` for `requestId` once: a retry with the same id and the same
   * `request` (a canonical description of the call and its arguments) answers
   * the first outcome, awaiting it if it is still running. An empty id opts
   * out (every call runs).
   */
  run<T>(requestId: Uint8Array, request: string, call: () => Promise<T>): Promise<T> {
    if (requestId.length === 0) return call();
    if (requestId.length !== REQUEST_ID_BYTES) throw invalidArgument(`request_id must be ${REQUEST_ID_BYTES} bytes (got ${requestId.length})`);
    const key = Buffer.from(requestId).toString("hex");
    const seen = this.entries.get(key);
    if (seen !== undefined) {
      if (seen.request !== request) {
        throw new RpcFailure(status.INVALID_ARGUMENT, `request_id ${key} was used for another request (${seen.request})`, { reason: ErrorReason.REQUEST_ID_REUSED });
      }
      return seen.outcome as Promise<T>;
    }
    const entry: Entry = { request, outcome: call(), settled: false };
    this.entries.set(key, entry);
    entry.outcome.then(() => this.settle(key, entry, true), (err: unknown) => this.settle(key, entry, !unsettled(err)));
    return entry.outcome as Promise<T>;
  }

  private settle(key: string, entry: Entry, keep: boolean): void {
    entry.settled = true;
    if (!keep) this.entries.delete(key);
    this.evict();
  }

  private evict(): void {
    for (const [key, e] of this.entries) {
      if (this.entries.size <= this.capacity) return;
      if (e.settled) this.entries.delete(key);
    }
  }
}

/** A failure after which the change may not have happened, or may yet: the retry must run again. */
function unsettled(err: unknown): boolean {
  return err instanceof ProposalError || (err instanceof RpcFailure && err.code === status.UNAVAILABLE);
}
