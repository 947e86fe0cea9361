// One real registration cloned under many user ids, each clone's shares
// bound to it (proto/crypto/share-binding.ts): the load of bench:scale and
// of tests that need many records. A client discards each wrap's ephemeral
// secret; the cloner keeps it to sign every clone's bindings, with
// node:crypto (a tenth of @noble's cost: a million clones sign three
// million times). Clones do not open (their ciphertext is the template's,
// made for another user): they are load, never recovered.
import { type KeyObject, createPrivateKey, randomBytes, sign } from "node:crypto";
import {
  G,
  type Registration,
  type RegistrationRecord,
  type SealedRecordShare,
  bindingMessages,
  createRegistration,
  encodePoint,
  joinBoundShare,
  joinUnboundShare,
  normalizeLowS,
  randomScalar,
  recordDigest,
  sealShare,
  sharePkcs8,
  splitSecret,
} from "../proto/crypto/index.js";

export interface CloneNode {
  readonly id: number;
  readonly agreementPublicKey: Uint8Array;
}

/** Client-side scrypt of the template (the nodes never run it). */
const CHEAP_SCRYPT = { N: 1024, r: 8, p: 1 };

export class RegistrationCloner {
  private readonly template: Registration;
  private readonly sealed: readonly SealedRecordShare[];
  private readonly signers: readonly KeyObject[];

  constructor(private readonly clusterId: string, nodes: readonly CloneNode[], threshold: number, guessLimit = 10) {
    this.template = createRegistration({ clusterId, user: "template", password: "x", backupKey: new Uint8Array(randomBytes(32)), threshold, guessLimit, nodes, scrypt: CHEAP_SCRYPT });
    const shares = splitSecret(randomScalar(), threshold, nodes.map((n) => n.id));
    this.sealed = nodes.map((n, i) => {
      const k = shares[i]!.share;
      return { nodeId: n.id, publicShare: encodePoint(G.multiply(k)), ...sealShare(n.agreementPublicKey, k) };
    });
    this.signers = this.sealed.map((s) => createPrivateKey({ key: Buffer.from(sharePkcs8(s.ephemeralSecret)), format: "der", type: "pkcs8" }));
  }

  /** The template's record under `user`, its shares bound to it. */
  record(user: string): RegistrationRecord {
    const publicPart = { ...this.template.record, user, shares: this.sealed.map((s) => ({ nodeId: s.nodeId, publicShare: s.publicShare })) };
    const messages = bindingMessages(this.clusterId, publicPart, this.sealed);
    const shares = this.sealed.map((s, i) => ({
      nodeId: s.nodeId,
      publicShare: s.publicShare,
      wrappedShare: joinBoundShare(s, normalizeLowS(new Uint8Array(sign("sha256", messages[i]!, { key: this.signers[i]!, dsaEncoding: "ieee-p1363" })))),
    }));
    return { ...publicPart, shares };
  }

  /** The template's record under `user` with unbound shares (wrap blob v1), as a client before bound shares made it. */
  unboundRecord(user: string): RegistrationRecord {
    const shares = this.sealed.map((s) => ({ nodeId: s.nodeId, publicShare: s.publicShare, wrappedShare: joinUnboundShare(s) }));
    return { ...this.template.record, user, shares };
  }

  /** A Registration of `user` (version 1, no owner signature) for the command builders; `unbound` for a state from before bound shares. */
  registration(user: string, shares: "bound" | "unbound" = "bound"): Registration {
    const record = shares === "bound" ? this.record(user) : this.unboundRecord(user);
    return { record, digest: recordDigest(record), resetPrivateKey: this.template.resetPrivateKey };
  }
}
