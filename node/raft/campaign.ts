// Campaign types and the context that marks a forced (transfer) campaign.

export enum CampaignType {
  PreElection = "CampaignPreElection",
  Election = "CampaignElection",
  /** Forced by MsgTimeoutNow: skips PreVote and overrides the leader lease. */
  Transfer = "CampaignTransfer",
}

export const TRANSFER_CONTEXT = new TextEncoder().encode(CampaignType.Transfer);

export function isTransferContext(ctx: Uint8Array): boolean {
  return ctx.byteLength === TRANSFER_CONTEXT.byteLength && ctx.every((b, i) => b === TRANSFER_CONTEXT[i]);
}
