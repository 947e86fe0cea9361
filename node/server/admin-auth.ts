// Who may call the admin port. The TLS handshake already proved that the
// caller's certificate chains to the cluster CA; this interceptor admits
// only the two kinds of certificate the CA issues for it: an operator's
// (CN "operator" or "operator-NAME", deploy/certs/make-certs.sh --operator)
// and a node's (CN "node-N": a node joining the cluster calls AddLearner
// itself). Any other CN ends with PERMISSION_DENIED before a handler runs.
import { Metadata, ServerInterceptingCall, status, type ServerInterceptor } from "@grpc/grpc-js";

const ADMIT = /^(operator(-[A-Za-z0-9._-]{1,64})?|node-[1-9][0-9]{0,15})$/;

/** Whether a certificate CN may call the admin port. */
export function admitsAdminCaller(cn: string | undefined): boolean {
  return cn !== undefined && ADMIT.test(cn);
}

/** The interceptor; `onRefused` logs the refused caller (its CN and address). */
export function adminAuth(onRefused: (cn: string, peer: string) => void): ServerInterceptor {
  return (_method, call) => new ServerInterceptingCall(call, {
    start: (next) => {
      next({
        onReceiveMetadata: (metadata, mdNext) => {
          const raw = call.getAuthContext().sslPeerCertificate?.subject?.CN;
          const cn = Array.isArray(raw) ? raw.join(",") : raw;
          if (admitsAdminCaller(cn)) {
            mdNext(metadata);
            return;
          }
          onRefused(cn ?? "", call.getPeer());
          call.sendStatus({
            code: status.PERMISSION_DENIED, metadata: new Metadata(),
            details: `the admin port admits operator and node certificates only (CN "operator", "operator-NAME" or "node-N"), not CN ${JSON.stringify(cn ?? "")}`,
          });
        },
      });
    },
  });
}
