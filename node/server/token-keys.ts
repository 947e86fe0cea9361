// A token that is not this node's. Node ids are permanent: the cluster's
// state fixes an id's keys at its first announcement, and every share the
// cluster wrapped for the node is wrapped to that agreement key. A node
// started on a token holding other keys (a new or re-initialized token, a
// wrong tokenLabel that names another node's token, the token of another
// node) would serve while unable to evaluate a single record, and announce
// itself in vain (NODE_ID_TAKEN); it does not start.
import { decodePoint, encodePoint, equalBytes } from "../../proto/crypto/index.js";
import type { NodeAnnouncement } from "../vault/index.js";

export interface TokenKeys {
  readonly agreementPublicKey: Uint8Array;
  readonly identityPublicKey: Uint8Array;
}

/** Thrown at start: the token's keys are not the ones the state holds for this node id. */
export class TokenKeysMismatchError extends Error {
  override readonly name = "TokenKeysMismatchError";
}

/** `k` (a SEC1 point, compressed or not) uncompressed: the 65 bytes announcements carry. */
export const uncompressed = (k: Uint8Array): Uint8Array => encodePoint(decodePoint(k), false);

/**
 * The refusal when the state's announcement of `nodeId` names other keys
 * than `token` holds; undefined when they match or the state holds no
 * announcement of this node yet (a new node, or one not caught up to it).
 */
export function tokenKeysMismatch(announced: readonly NodeAnnouncement[], nodeId: number, token: TokenKeys, tokenLabel: string): TokenKeysMismatchError | undefined {
  const mine = announced.find((n) => n.nodeId === nodeId);
  if (mine === undefined) return undefined;
  const same = equalBytes(uncompressed(mine.agreementPublicKey), uncompressed(token.agreementPublicKey))
    && equalBytes(uncompressed(mine.identityPublicKey), uncompressed(token.identityPublicKey));
  if (same) return undefined;
  return new TokenKeysMismatchError(
    `the HSM token '${tokenLabel}' holds other keys than node ${nodeId} announced to the cluster: it is not this node's token `
    + `(node ids are permanent, and every share of this node is wrapped to its announced key). Point hsm.tokenLabel `
    + `(and hsm.softhsmConf) at node ${nodeId}'s token, or restore it from its backup; a node with a new token needs a new `
    + `node id and an empty data dir (docs/operations.md, "A node that does not start")`,
  );
}
