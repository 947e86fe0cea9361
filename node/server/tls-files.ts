// The node's TLS files, read and checked at start: each unreadable or
// unparsable file, a key that is not the certificate's, a certificate the
// CA did not sign (no CA of the tls.ca bundle, when the file holds no
// chain) or one out of its validity period is a ConfigError naming
// the setting and the file. Unchecked, each surfaced later as an OpenSSL
// string naming no file ("PEM routines::no start line", "key values
// mismatch"), after the node had opened its stores and joined Raft. Never
// part of a message: the key's contents.
import { X509Certificate, createPrivateKey } from "node:crypto";
import { readFileSync } from "node:fs";
import type { TlsMaterial } from "../transport/index.js";
import { ConfigError, type ServerConfig } from "./config.js";

type TlsConfig = ServerConfig["tls"];

function readSetting(field: string, file: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    throw new ConfigError(field, `file ${file} cannot be read (${(err as NodeJS.ErrnoException).code ?? "error"})`);
  }
}

/** Every certificate of a PEM file (a CA bundle, a certificate with its chain), in order. */
function certificates(field: string, file: string, pem: Buffer): X509Certificate[] {
  const blocks = pem.toString("latin1").match(/-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g) ?? [];
  try {
    if (blocks.length === 0) throw new Error("none");
    return blocks.map((b) => new X509Certificate(b));
  } catch {
    throw new ConfigError(field, `file ${file} holds no PEM certificate`);
  }
}

/** Reads and checks the CA, the node's certificate and its key; `now` (ms) for the validity period. */
export function loadNodeTls(t: TlsConfig, now = Date.now()): TlsMaterial {
  const material = { ca: readSetting("tls.ca", t.ca), cert: readSetting("tls.cert", t.cert), key: readSetting("tls.key", t.key) };
  const cas = certificates("tls.ca", t.ca, material.ca);
  const [cert, ...chain] = certificates("tls.cert", t.cert, material.cert) as [X509Certificate, ...X509Certificate[]];
  let key;
  try {
    key = createPrivateKey(material.key);
  } catch {
    throw new ConfigError("tls.key", `file ${t.key} holds no PEM private key`);
  }
  if (!cert.checkPrivateKey(key)) throw new ConfigError("tls.key", `file ${t.key} is not the key of the certificate in ${t.cert} (tls.cert)`);
  // With a chain in the file, an intermediate signs it: the handshakes check that chain.
  if (chain.length === 0 && !cas.some((ca) => cert.verify(ca.publicKey))) {
    throw new ConfigError("tls.cert", `certificate ${t.cert} is not signed by a CA in ${t.ca} (tls.ca)`);
  }
  if (Date.parse(cert.validTo) < now) throw new ConfigError("tls.cert", `certificate ${t.cert} expired on ${cert.validTo}: renew it (docs/operations.md, "Certificates")`);
  if (Date.parse(cert.validFrom) > now) throw new ConfigError("tls.cert", `certificate ${t.cert} is not valid before ${cert.validFrom}: check this host's clock`);
  return material;
}
