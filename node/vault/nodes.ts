// Node announcements: the signed entries of the cluster descriptor that
// clients pin (node id, client address, agreement and identity keys).
// proto/crypto has no verifier for the descriptor signature, so it is here,
// on top of nodeDescriptorMessage and verifyMessage.
//
// Who may announce node id N: the holder of the identity key inside (it
// signs), and, in a cluster whose state holds a CA (every cluster
// bootstrapped since certified announcements), the holder of an mTLS
// certificate that the CA issued to node-N (it signs too). Without the
// second, any member could pre-announce a node id not yet announced with
// its own keys (docs/threat-model.md).
import { checkNodeCertificate, equalBytes, nodeCertificateMessage, nodeDescriptorMessage, verifyMessage } from "../../proto/crypto/index.js";
import type { NodeAnnouncement } from "./commands.js";
import { type VaultError, type VaultResult, vaultError } from "./result.js";

/**
 * True iff the announcement's signature verifies with its own identity key
 * over nodeDescriptorMessage(clusterId, node id, address, keys). High-S is
 * accepted: tokens do not normalize their ECDSA signatures (the verdict is
 * still a pure function of the bytes, the same on every node).
 */
export function verifyAnnouncement(clusterId: string, n: NodeAnnouncement): boolean {
  return verifyMessage(n.identityPublicKey, nodeDescriptorMessage(descriptorFields(clusterId, n)), n.signature, { allowHighS: true });
}

function descriptorFields(clusterId: string, n: NodeAnnouncement) {
  return { clusterId, nodeId: n.nodeId, address: n.clientAddress, agreementPublicKey: n.agreementPublicKey, identityPublicKey: n.identityPublicKey };
}

/**
 * Why an announcement is refused on its own merits, whatever is announced
 * already; undefined if it verifies. `ca` is the cluster CA of the state
 * (DER) or null. With a CA, only a certified announcement (kind 7) whose
 * certificate checkNodeCertificate accepts; without one, only kind 5.
 * Validity dates are not checked (apply is a function of the log alone).
 */
export function announcementRefusal(clusterId: string, ca: Uint8Array | null, n: NodeAnnouncement): VaultError | undefined {
  if (!verifyAnnouncement(clusterId, n)) return vaultError("BAD_SIGNATURE", `the announcement of node ${n.nodeId} is not signed by its identity key`);
  if (n.certified === undefined) {
    return ca === null ? undefined : vaultError("BAD_SIGNATURE", `the announcement of node ${n.nodeId} carries no certificate: this cluster admits only announcements certified by its CA`);
  }
  if (ca === null) return vaultError("INVALID_ARGUMENT", `the announcement of node ${n.nodeId} carries a certificate, but this cluster's state holds no CA to check it against`);
  const message = nodeCertificateMessage(descriptorFields(clusterId, n));
  const v = checkNodeCertificate(ca, n.certified.certificate, n.nodeId, message, n.certified.signature);
  if (v.ok) return undefined;
  return vaultError(v.malformed ? "INVALID_ARGUMENT" : "BAD_SIGNATURE", v.why);
}

/**
 * The announce transition. Ids are permanent: the first verified
 * announcement of an id fixes its keys; a later one with the same keys may
 * change the address; one with other keys is refused.
 */
export function announce(clusterId: string, ca: Uint8Array | null, cur: NodeAnnouncement | undefined, n: NodeAnnouncement): { result: VaultResult; next?: NodeAnnouncement } {
  const refused = announcementRefusal(clusterId, ca, n);
  if (refused !== undefined) return { result: refused };
  if (cur !== undefined && !(equalBytes(cur.agreementPublicKey, n.agreementPublicKey) && equalBytes(cur.identityPublicKey, n.identityPublicKey))) {
    return { result: vaultError("NODE_ID_TAKEN", `node ${n.nodeId} is already announced with other keys: node ids are permanent, a new token needs a new node id`) };
  }
  const copy: NodeAnnouncement = {
    nodeId: n.nodeId,
    clientAddress: n.clientAddress,
    agreementPublicKey: n.agreementPublicKey.slice(),
    identityPublicKey: n.identityPublicKey.slice(),
    signature: n.signature.slice(),
    ...(n.certified === undefined ? {} : { certified: { certificate: n.certified.certificate.slice(), signature: n.certified.signature.slice() } }),
  };
  return { result: { ok: true, kind: "announce" }, next: copy };
}
