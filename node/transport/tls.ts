// mTLS credentials for the peer network. Every node holds a certificate from
// the cluster CA, used both as server and as client certificate; the name
// `peerName(id)` (by default "node-<id>") binds a certificate to a node id:
// a dialing node requires it in the server's certificate (SAN), and a server
// requires it as the CN of the caller's certificate.

import { readFileSync } from "node:fs";
import * as grpc from "@grpc/grpc-js";
import type { NodeId } from "../raft/index.js";

export interface TlsMaterial {
  /** PEM of the cluster CA certificate(s). */
  readonly ca: Buffer;
  /** PEM of this node's certificate chain. */
  readonly cert: Buffer;
  /** PEM of this node's private key. */
  readonly key: Buffer;
}

export interface TlsFiles {
  readonly caFile: string;
  readonly certFile: string;
  readonly keyFile: string;
}

/** Reads PEM files (deploy/certs/make-certs.sh writes ca.crt, node-N.crt, node-N.key). */
export function loadTls(files: TlsFiles): TlsMaterial {
  return { ca: readFileSync(files.caFile), cert: readFileSync(files.certFile), key: readFileSync(files.keyFile) };
}

/** The paths make-certs.sh uses for node `id` in `dir`. */
export function devCertFiles(dir: string, id: NodeId): TlsFiles {
  return { caFile: `${dir}/ca.crt`, certFile: `${dir}/node-${id}.crt`, keyFile: `${dir}/node-${id}.key` };
}

export function defaultPeerName(id: NodeId): string {
  return `node-${id}`;
}

/** Server side: require and verify a client certificate from the cluster CA. */
export function serverCredentials(tls: TlsMaterial): grpc.ServerCredentials {
  return grpc.ServerCredentials.createSsl(tls.ca, [{ private_key: tls.key, cert_chain: tls.cert }], true);
}

/** Client side: present our certificate; trust only the cluster CA. */
export function channelCredentials(tls: TlsMaterial): grpc.ChannelCredentials {
  return grpc.credentials.createSsl(tls.ca, tls.key, tls.cert);
}

/**
 * Channel options that make the TLS handshake verify that the server's
 * certificate names `serverName`, whatever host:port we dial.
 */
export function serverNameOptions(serverName: string): grpc.ChannelOptions {
  return { "grpc.ssl_target_name_override": serverName, "grpc.default_authority": serverName };
}
