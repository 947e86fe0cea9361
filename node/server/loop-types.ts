// The Ready loop's outward types: what it reports for each applied entry,
// and the error of a proposal that could not be made or did not complete.
import type { ConfChange } from "../raft/index.js";
import type { ApplyOutcome, VaultResult } from "../vault/index.js";

/** What onOutcome sees: a vault command and its result, a membership change, or a snapshot installed. */
export type AppliedEvent =
  | {
    readonly kind: "command"; readonly index: number; readonly data: Uint8Array; readonly result: VaultResult;
    /** The request id and command apply parsed from `data` (absent: the observer parses `data` itself). */
    readonly parsed?: Pick<ApplyOutcome, "requestId" | "command">;
  }
  | { readonly kind: "membership"; readonly index: number; readonly change: ConfChange }
  | { readonly kind: "snapshot"; readonly index: number };

/** A proposal that could not be made or did not complete: the caller may retry with the same request id. */
export class ProposalError extends Error {
  override readonly name = "ProposalError";
  constructor(readonly reason: "NO_LEADER" | "DROPPED" | "TIMEOUT" | "LEADER_CHANGED" | "STOPPED", message: string) {
    super(message);
  }
}

export function proposalDropped(): ProposalError {
  return new ProposalError("DROPPED", "the proposal was dropped (leadership transfer, pending membership change or overload); retry");
}
