// Who may call what on the admin port. The TLS handshake already proved that
// the caller's certificate chains to the cluster CA; this interceptor admits
// only the two kinds of certificate the CA issues for it:
// - an operator's (CN "operator" or "operator-NAME", deploy/certs/make-certs.sh
//   operator): every method;
// - a node's (CN "node-N"): what a joining node needs and nothing more
//   (join.ts): GetClusterStatus, and AddLearner / PromoteLearner of node N
//   itself; and the read-only services beside AdminService (gRPC health,
//   server reflection). A node's certificate sits on that node's disk, so a compromised
//   node must not be able to remove the others, move leadership or stream
//   snapshots with it (docs/threat-model.md).
// Anything else ends with PERMISSION_DENIED before a handler runs.
import { Metadata, ServerInterceptingCall, status, type ServerInterceptor } from "@grpc/grpc-js";
import { AdminService } from "../../proto/gen/bkv/v1/admin_pb.js";

const OPERATOR = /^operator(-[A-Za-z0-9._-]{1,64})?$/;
const NODE = /^node-([1-9][0-9]{0,15})$/;

/** The AdminService methods a node's own certificate may call. */
const NODE_METHODS: ReadonlySet<string> = new Set(["GetClusterStatus", "AddLearner", "PromoteLearner"]);
/** The services of the admin port that only read, which any admitted certificate may call. */
const READ_ONLY_SERVICES: ReadonlySet<string> = new Set(["grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection", "grpc.reflection.v1alpha.ServerReflection"]);
/** Of those, the ones whose request names a node id: a node certificate may name only its own. */
const OWN_ID_METHODS: ReadonlySet<string> = new Set(["AddLearner", "PromoteLearner"]);

export type AdminCaller = { readonly kind: "operator" } | { readonly kind: "node"; readonly nodeId: bigint };

/** Who the certificate CN says the caller is, or null for a CN the admin port does not admit. */
export function adminCaller(cn: string | undefined): AdminCaller | null {
  if (cn === undefined) return null;
  if (OPERATOR.test(cn)) return { kind: "operator" };
  const node = NODE.exec(cn);
  return node === null ? null : { kind: "node", nodeId: BigInt(node[1] as string) };
}

/** Why `caller` may not call `method` of `service` (full names), or null. */
export function methodRefusal(caller: AdminCaller, service: string, method: string): string | null {
  if (caller.kind === "operator" || READ_ONLY_SERVICES.has(service) || (service === AdminService.typeName && NODE_METHODS.has(method))) return null;
  return `a node certificate may call ${[...NODE_METHODS].join(", ")} only (${method} needs an operator certificate)`;
}

/** Why `caller` may not send `request` to `method`, or null: a node adds or promotes only itself. */
export function requestRefusal(caller: AdminCaller, method: string, request: unknown): string | null {
  if (caller.kind === "operator" || !OWN_ID_METHODS.has(method)) return null;
  const nodeId = (request as { nodeId?: unknown } | null)?.nodeId;
  return nodeId === caller.nodeId ? null : `node ${caller.nodeId}'s certificate may ${method} node ${caller.nodeId} only`;
}

/** The interceptor; `onRefused` logs the refused caller (its CN and address). */
export function adminAuth(onRefused: (cn: string, peer: string) => void): ServerInterceptor {
  return (methodDefinition, call) => {
    const slash = methodDefinition.path.lastIndexOf("/");
    const [service, method] = [methodDefinition.path.slice(1, slash), methodDefinition.path.slice(slash + 1)];
    let caller: AdminCaller | null = null;
    let cn = "";
    const refuse = (details: string) => {
      onRefused(cn, call.getPeer());
      call.sendStatus({ code: status.PERMISSION_DENIED, metadata: new Metadata(), details });
    };
    return new ServerInterceptingCall(call, {
      start: (next) => {
        next({
          onReceiveMetadata: (metadata, mdNext) => {
            const raw = call.getAuthContext().sslPeerCertificate?.subject?.CN;
            cn = (Array.isArray(raw) ? raw.join(",") : raw) ?? "";
            caller = adminCaller(cn === "" ? undefined : cn);
            if (caller === null) return refuse(`the admin port admits operator and node certificates only (CN "operator", "operator-NAME" or "node-N"), not CN ${JSON.stringify(cn)}`);
            const why = methodRefusal(caller, service, method);
            if (why !== null) return refuse(why);
            mdNext(metadata);
          },
          onReceiveMessage: (message, messageNext) => {
            const why = caller === null ? null : requestRefusal(caller, method, message);
            if (why !== null) return refuse(why);
            messageNext(message);
          },
        });
      },
    });
  };
}
