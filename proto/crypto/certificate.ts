// X.509 checks of certified node announcements (docs/vault.md §3): the
// operator's cluster CA, which issues each node's mTLS certificate, is the
// root of node identity. Parsing and signature checks are node:crypto's
// (OpenSSL). Every check here is a pure function of its bytes: validity
// dates are NOT checked (time is not replicated; a node that applies an old
// entry must decide as the others did).
import { X509Certificate, createPrivateKey, sign, verify, type KeyObject } from "node:crypto";
import { InvalidArgumentError } from "./errors.js";

/** Upper bound of a DER certificate (CA or node) in commands and snapshots. */
export const MAX_CERTIFICATE_BYTES = 4096;
/** Upper bound of a certificate key's signature (DER ECDSA is ~72 bytes; RSA-4096 is 512). */
export const MAX_CERTIFICATE_SIGNATURE_BYTES = 512;

/** The verdict of checkNodeCertificate: `malformed` when a certificate does not even parse. */
export type CertificateVerdict = { ok: true } | { ok: false; malformed: boolean; why: string };

/** The name a node's certificate must carry (CN or SAN DNS), as node/transport requires of peers. */
export function nodeCertificateName(nodeId: number): string {
  return `node-${nodeId}`;
}

/** Throws InvalidArgumentError unless `b` is a Uint8Array of 1 to `max` bytes. */
export function expectBounded(b: unknown, what: string, max: number): Uint8Array {
  if (!(b instanceof Uint8Array) || b.length < 1 || b.length > max) {
    throw new InvalidArgumentError(`${what} must be 1 to ${max} bytes (got ${b instanceof Uint8Array ? b.length : "no bytes"})`);
  }
  return b;
}

/** Parses DER; throws InvalidArgumentError (never anything else) on any problem. */
function parse(der: Uint8Array, what: string): X509Certificate {
  expectBounded(der, what, MAX_CERTIFICATE_BYTES);
  try {
    return new X509Certificate(der);
  } catch {
    throw new InvalidArgumentError(`${what} is not a DER X.509 certificate`);
  }
}

/** Throws InvalidArgumentError unless `der` is a CA certificate of at most MAX_CERTIFICATE_BYTES. */
export function validateCaCertificate(der: Uint8Array): void {
  if (!parse(der, "cluster CA certificate").ca) throw new InvalidArgumentError("cluster CA certificate is not a CA (basicConstraints CA:FALSE)");
}

/**
 * The DER of the first certificate in a PEM file (or of a DER file), as
 * the bootstrap snapshot (the CA) and certified announcements carry it.
 * Throws InvalidArgumentError.
 */
export function certificateDer(file: Uint8Array, what: string): Uint8Array {
  try {
    return new Uint8Array(new X509Certificate(file).raw);
  } catch {
    throw new InvalidArgumentError(`${what} holds no X.509 certificate`);
  }
}

/**
 * Whether `certificate` (DER) proves that the signer of `message` is node
 * `nodeId`: issued and signed by the CA `ca` (DER), not itself a CA, named
 * node-<id> in its CN or a SAN DNS name (exactly, no wildcards), and its
 * public key verifies `signature` over `message`. Never throws.
 */
export function checkNodeCertificate(ca: Uint8Array, certificate: Uint8Array, nodeId: number, message: Uint8Array, signature: Uint8Array): CertificateVerdict {
  let caCert: X509Certificate;
  let cert: X509Certificate;
  try {
    caCert = parse(ca, "cluster CA certificate");
    cert = parse(certificate, `node ${nodeId}'s certificate`);
  } catch (err) {
    return { ok: false, malformed: true, why: (err as Error).message };
  }
  const name = nodeCertificateName(nodeId);
  const bad = (why: string): CertificateVerdict => ({ ok: false, malformed: false, why });
  if (!(cert.checkIssued(caCert) && safely(() => cert.verify(caCert.publicKey)))) return bad(`the certificate offered for node ${nodeId} is not issued by the cluster CA`);
  if (cert.ca) return bad(`the certificate offered for node ${nodeId} is a CA certificate, not a node's`);
  if (cert.checkHost(name, { subject: "always", wildcards: false, partialWildcards: false }) === undefined) return bad(`the certificate offered for node ${nodeId} does not name ${name}`);
  if (!safely(() => verify(digestFor(cert.publicKey), message, cert.publicKey, signature))) return bad(`the announcement of node ${nodeId} is not signed by its certificate's key`);
  return { ok: true };
}

/** Signs `message` with a node's mTLS private key (PEM), as checkNodeCertificate verifies it. */
export function signWithCertificateKey(privateKeyPem: Uint8Array | string, message: Uint8Array): Uint8Array {
  const key = createPrivateKey(typeof privateKeyPem === "string" ? privateKeyPem : Buffer.from(privateKeyPem));
  return new Uint8Array(sign(digestFor(key), message, key));
}

/** Ed25519/Ed448 sign the message itself; every other key type signs its SHA-256. */
function digestFor(key: KeyObject): string | null {
  return key.asymmetricKeyType === "ed25519" || key.asymmetricKeyType === "ed448" ? null : "sha256";
}

function safely(f: () => boolean): boolean {
  try {
    return f();
  } catch {
    return false;
  }
}
