// Node announcements: the signed entries of the cluster descriptor that
// clients pin (node id, client address, agreement and identity keys).
// proto/crypto has no verifier for the descriptor signature, so it is here,
// on top of nodeDescriptorMessage and verifyMessage.
import { equalBytes, nodeDescriptorMessage, verifyMessage } from "../../proto/crypto/index.js";
import type { NodeAnnouncement } from "./commands.js";
import { type VaultResult, vaultError } from "./result.js";

/**
 * True iff the announcement's signature verifies with its own identity key
 * over nodeDescriptorMessage(clusterId, node id, address, keys). High-S is
 * accepted: tokens do not normalize their ECDSA signatures (the verdict is
 * still a pure function of the bytes, the same on every node).
 */
export function verifyAnnouncement(clusterId: string, n: NodeAnnouncement): boolean {
  const message = nodeDescriptorMessage({
    clusterId,
    nodeId: n.nodeId,
    address: n.clientAddress,
    agreementPublicKey: n.agreementPublicKey,
    identityPublicKey: n.identityPublicKey,
  });
  return verifyMessage(n.identityPublicKey, message, n.signature, { allowHighS: true });
}

/**
 * The announce transition. Ids are permanent: the first verified
 * announcement of an id fixes its keys; a later one with the same keys may
 * change the address; one with other keys is refused.
 */
export function announce(clusterId: string, cur: NodeAnnouncement | undefined, n: NodeAnnouncement): { result: VaultResult; next?: NodeAnnouncement } {
  if (!verifyAnnouncement(clusterId, n)) {
    return { result: vaultError("BAD_SIGNATURE", `the announcement of node ${n.nodeId} is not signed by its identity key`) };
  }
  if (cur !== undefined && !(equalBytes(cur.agreementPublicKey, n.agreementPublicKey) && equalBytes(cur.identityPublicKey, n.identityPublicKey))) {
    return { result: vaultError("NODE_ID_TAKEN", `node ${n.nodeId} is already announced with other keys: node ids are permanent, a new token needs a new node id`) };
  }
  const copy: NodeAnnouncement = {
    nodeId: n.nodeId,
    clientAddress: n.clientAddress,
    agreementPublicKey: n.agreementPublicKey.slice(),
    identityPublicKey: n.identityPublicKey.slice(),
    signature: n.signature.slice(),
  };
  return { result: { ok: true, kind: "announce" }, next: copy };
}
