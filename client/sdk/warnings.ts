// Non-fatal problems the SDK reports through VaultClientOptions.onWarning:
// the operation still returned its result. Callers switch on `code`; the
// message is for humans (never a secret) and may change.

export type WarningCode =
  /**
   * recover (and every call that recovers first): the key opened, but
   * ConfirmRecovery did not succeed before the retry deadline (cluster
   * unavailable), or its token was refused or could not be had (nothing
   * proposed). The attempt keeps counting unless the confirmation
   * committed unseen; the next confirmed recovery resets the counter.
   */
  | "CONFIRM_UNAVAILABLE"
  /**
   * recover (and every call that recovers first): the key opened, but the
   * cluster refused ConfirmRecovery because the attempt is no longer pending
   * (ATTEMPT_SUPERSEDED; ATTEMPT_NOT_FOUND from older nodes or after a lock):
   * a concurrent recovery's confirmation settled it first and reset the
   * counter. This confirmation did not commit.
   */
  | "CONFIRM_SUPERSEDED"
  /**
   * recover (and every call that recovers first): a concurrent recovery's
   * confirmation superseded this recovery's attempt before t nodes evaluated
   * it (Evaluate refused ATTEMPT_SUPERSEDED). The SDK begins ONE fresh
   * attempt after this warning (the winner's confirmation reset the counter);
   * if that is superseded too, the call throws AttemptSupersededError.
   */
  | "NEW_ATTEMPT"
  /**
   * recover: the record's share holders differ from the pinned descriptor,
   * and the pinned descriptor differs from the voters the cluster announces:
   * the shares are not moved (update the descriptor).
   */
  | "RESHARE_STALE_DESCRIPTOR"
  /** recover: re-sharing the record to the current nodes after a membership change failed. */
  | "RESHARE_FAILED"
  /**
   * register, changePassword, re-sharing: the cluster has not activated
   * bound shares yet (a cluster from an older release, refusal
   * BOUND_SHARES_NOT_ACTIVE), so the record was registered with unbound
   * shares (wrap blob v1), which anyone holding the record can copy into
   * another record until an operator activates them (docs/operations.md,
   * "Bound shares"). Nothing was stored by the refused call.
   */
  | "UNBOUND_SHARES";

export interface ClientWarning {
  readonly code: WarningCode;
  /** Human-readable; never a password, key, share or reset key. */
  readonly message: string;
}
