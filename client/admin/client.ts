// A client of the admin API (AdminService on every node's admin port) for
// operators: mTLS with an operator certificate, and calls that must reach
// the leader follow it by themselves. The leader is found from the nodes'
// own answers: a follower's NOT_LEADER names the leader's admin address
// (where its config knows it), and GetClusterStatus names each node's id, its
// leader, and the members' admin addresses that node's config knows. A call
// is retried with the same request (and so the same request_id) while the
// failure is transient (client/sdk/retry.ts).
import * as grpc from "@grpc/grpc-js";
import { type MessageInitShape, type MessageShape, create } from "@bufbuild/protobuf";
import { AdminService, type GetClusterStatusResponse, type SaveSnapshotResponse, SaveSnapshotRequestSchema } from "../../proto/gen/bkv/v1/admin_pb.js";
import { type UnaryClient, serviceDefinition } from "../../proto/rpc.js";
import { ChannelPool } from "../sdk/channels.js";
import { NotAuthorizedError, RpcError, TransientError, isServiceError, rpcErrorFrom } from "../sdk/errors.js";
import { DEFAULT_RETRY, REDIRECT, type RetryPolicy, withRetries } from "../sdk/retry.js";

type Methods = typeof AdminService.method;
type Unary = UnaryClient<Methods>;
export type AdminMethod = keyof Unary;
export type AdminRequest<M extends AdminMethod> = MessageInitShape<Methods[M]["input"]>;
export type AdminResponse<M extends AdminMethod> = MessageShape<Methods[M]["output"]>;

/** PEM material of the operator's mTLS identity. */
export interface AdminTls {
  readonly ca: Buffer;
  readonly cert: Buffer;
  readonly key: Buffer;
}

export interface AdminClientOptions {
  /** Admin addresses (host:port) to start from; one reachable node is enough when configs name the others. */
  readonly endpoints: readonly string[];
  readonly tls: AdminTls;
  readonly retry?: Partial<RetryPolicy>;
  /**
   * Epoch ms past which no call of this client runs and nothing is retried
   * (a command's whole budget, `bkv admin --timeout`): each call's deadline
   * is the nearer of its own timeout and this. Default: none.
   */
  readonly deadline?: number;
}

/** A node's status as its admin port answered, or why it did not. */
export type NodeAnswer = { readonly address: string; readonly status: GetClusterStatusResponse } | { readonly address: string; readonly error: Error };

export class AdminClient {
  private readonly pool: ChannelPool<Methods>;
  private readonly policy: RetryPolicy;
  /** Admin address by node id, learnt from the nodes' answers. */
  readonly addresses = new Map<number, string>();
  private leader: string | undefined;

  constructor(private readonly o: AdminClientOptions) {
    if (o.endpoints.length === 0) throw new TransientError("no admin endpoint given");
    this.pool = new ChannelPool(AdminService, grpc.credentials.createSsl(o.tls.ca, o.tls.key, o.tls.cert));
    this.policy = { ...DEFAULT_RETRY, ...o.retry };
  }

  /** One call to the node at `address`, ending by the client's deadline too; a failure is an RpcError. */
  async call<M extends AdminMethod>(address: string, method: M, request: AdminRequest<M>, timeoutMs = this.policy.callTimeoutMs): Promise<AdminResponse<M>> {
    const fn = this.pool.unary(address)[method] as unknown as (req: AdminRequest<M>, o: { deadline: Date | number; signal: AbortSignal }) => Promise<AdminResponse<M>>;
    const deadline = Math.min(Date.now() + timeoutMs, this.o.deadline ?? Infinity);
    try {
      return await fn(request, { deadline: Number.isFinite(deadline) ? new Date(deadline) : Infinity, signal: this.pool.signal });
    } catch (err) {
      throw isServiceError(err) ? rpcErrorFrom(err, AdminService.method[method].name, address) : err;
    }
  }

  /** `method` on the leader, following it and retrying transient failures with the same request until the deadline. */
  onLeader<M extends AdminMethod>(method: M, request: AdminRequest<M>): Promise<{ address: string; response: AdminResponse<M> }> {
    return withRetries(AdminService.method[method].name, this.retryPolicy(), async () => {
      const address = this.leader ?? await this.findLeader();
      try {
        return { address, response: await this.call(address, method, request) };
      } catch (err) {
        this.leader = this.leaderHint(err);
        throw err;
      }
    }, { onTransient: (err) => (this.leaderHint(err) !== undefined ? REDIRECT : undefined) });
  }

  /**
   * Where a NOT_LEADER points: the address this client already reaches the
   * leader's node id at (an endpoint given, e.g. a port-forward), else the
   * admin address the refusing node's config names (an in-cluster name,
   * unreachable from outside). Undefined for any other failure.
   */
  private leaderHint(err: unknown): string | undefined {
    if (!(err instanceof RpcError) || err.reason !== "NOT_LEADER") return undefined;
    return (err.leaderId === undefined ? undefined : this.addresses.get(err.leaderId)) ?? err.leaderAddress;
  }

  /** The retry policy of an operation starting now: its deadline no later than the client's. */
  private retryPolicy(): RetryPolicy {
    const left = (this.o.deadline ?? Infinity) - Date.now();
    return left >= this.policy.deadlineMs ? this.policy : { ...this.policy, deadlineMs: Math.max(0, left) };
  }

  /** The leader's admin address, from the statuses of every address known. */
  async leaderAddress(): Promise<string> {
    return withRetries("find the leader", this.retryPolicy(), () => this.findLeader());
  }

  /** The leader's admin address, or undefined when no node names one now (no retry). */
  async leaderNow(): Promise<string | undefined> {
    try {
      return await this.findLeader();
    } catch (err) {
      if (err instanceof TransientError) return undefined;
      throw err;
    }
  }

  /** Every admin address known: the endpoints given, then those learnt from the nodes' answers. */
  knownAddresses(): string[] {
    return [...new Set([...this.o.endpoints, ...this.addresses.values()])];
  }

  private async findLeader(): Promise<string> {
    const answers = await this.statuses(this.knownAddresses());
    const votes = new Map<number, number>();
    for (const a of answers) if ("status" in a && a.status.leaderId !== 0n) votes.set(Number(a.status.leaderId), (votes.get(Number(a.status.leaderId)) ?? 0) + 1);
    const [lead] = [...votes].sort((x, y) => y[1] - x[1])[0] ?? [];
    if (lead === undefined) {
      const refusals = answers.flatMap((a) => ("error" in a && a.error instanceof NotAuthorizedError ? [a.error] : []));
      if (refusals.length > 0 && answers.every((a) => "error" in a)) throw refusals[0]; // no node answered, and one refused this caller: not transient
      const why = answers.map((a) => `${a.address}: ${"error" in a ? a.error.message : "no leader known"}`).join("; ");
      throw new TransientError(`no node named a leader (${why})`);
    }
    const address = this.addresses.get(lead);
    if (address === undefined) throw new TransientError(`the leader is node ${lead}, whose admin address no node's config names: add it to --endpoints`);
    this.leader = address;
    return address;
  }

  /** GetClusterStatus of each address, in parallel; learns node ids and members' admin addresses. */
  async statuses(addresses: readonly string[], timeoutMs = 3000): Promise<NodeAnswer[]> {
    return Promise.all(addresses.map(async (address): Promise<NodeAnswer> => {
      try {
        const status = await this.call(address, "getClusterStatus", {}, timeoutMs);
        this.learn(address, status);
        return { address, status };
      } catch (err) {
        return { address, error: err as Error };
      }
    }));
  }

  private learn(address: string, s: GetClusterStatusResponse): void {
    this.addresses.set(Number(s.nodeId), address);
    for (const m of s.members) if (m.adminAddress !== "" && !this.addresses.has(Number(m.nodeId))) this.addresses.set(Number(m.nodeId), m.adminAddress);
  }

  /** SaveSnapshot from the node at `address`: its latest snapshot's bytes, in order. */
  async *snapshot(address: string, timeoutMs = 600_000): AsyncIterable<Uint8Array> {
    const def = serviceDefinition(AdminService).saveSnapshot;
    const channel = this.pool.channel(address);
    const stream = channel.makeServerStreamRequest(def.path, def.requestSerialize, def.responseDeserialize, create(SaveSnapshotRequestSchema), { deadline: new Date(Date.now() + timeoutMs) });
    const cancel = () => stream.cancel();
    this.pool.signal.addEventListener("abort", cancel, { once: true });
    try {
      for await (const chunk of stream as AsyncIterable<SaveSnapshotResponse>) yield chunk.data;
    } catch (err) {
      throw isServiceError(err) ? rpcErrorFrom(err, AdminService.method.saveSnapshot.name, address) : err;
    } finally {
      this.pool.signal.removeEventListener("abort", cancel);
      stream.cancel();
    }
  }

  /** Cancels the calls in flight and ends every connection, even one still in its TLS handshake (ChannelPool.close). */
  close(): void {
    this.pool.close();
  }
}
