// Collecting the nodes' evaluations of a committed attempt (DESIGN §5
// recovery step 2): asked of every share holder in the pinned descriptor in
// parallel; each answer must name the node, the record version and our B,
// and carry a valid signature by the node's pinned identity key. Anything
// else is skipped and reported in `failures`. refusalOf says why too few
// evaluated when a majority of the nodes asked refused alike.
import {
  type NodeEvaluation,
  type RecordPublicPart,
  equalBytes,
  verifyEvaluationSignature,
} from "../../proto/crypto/index.js";
import type { EvaluateResponse } from "../../proto/gen/bkv/v1/vault_pb.js";
import type { NodeEntry } from "./descriptor.js";
import {
  AttemptSupersededError, ClientError, NotAuthorizedError, RecordLockedError, RecordNotFoundError, RpcError, TokenError,
} from "./errors.js";
import { recordQuorum } from "./records.js";
import { type RetryPolicy, withRetries } from "./retry.js";
import type { Transport } from "./transport.js";

export interface AttemptRef {
  readonly clusterId: string;
  readonly user: string;
  readonly version: number;
  readonly attemptId: bigint;
  /** B as we sent it (33 bytes). */
  readonly blinded: Uint8Array;
}

export interface Collection {
  /** How many nodes were asked: the record's share holders in the pinned descriptor. */
  readonly asked: number;
  readonly evaluations: NodeEvaluation[];
  /** Why a node gave no usable answer, by node id. */
  readonly failures: Map<number, string>;
  /** The nodes' refusals (non-transient RpcErrors: locked, superseded, a refused token, ...; or our token provider's failure), at most one per node, in arrival order. */
  readonly refusals: Refusal[];
  /** Resolves once every node has answered or given up. */
  readonly settled: Promise<void>;
  /** Stops the retries still running. */
  stop(): void;
}

/** Why a node gave no evaluation, when it was an answer (or our token provider failing), not silence. */
export type Refusal = RpcError | RecordLockedError | TokenError;

export interface Wanted {
  /** Answers needed at all (t). */
  readonly need: number;
  /** Answers wanted to detect a faulty node (t+1). */
  readonly want: number;
  /** Once `need` answers are in, how long to wait for `want` before going on. */
  readonly graceMs: number;
}

/**
 * Asks every share holder; resolves once `want` valid answers arrived, or
 * `graceMs` after `need` arrived, or when every node has answered or given
 * up (the rest keep filling the returned arrays until `settled`).
 */
export async function collectEvaluations(
  transport: Transport, nodes: readonly NodeEntry[], record: RecordPublicPart, ref: AttemptRef, wanted: Wanted, policy: RetryPolicy,
): Promise<Collection> {
  const holders = new Set(record.shares.map((s) => s.nodeId));
  const evaluations: NodeEvaluation[] = [];
  const failures = new Map<number, string>();
  const refusals: Refusal[] = [];
  for (const id of holders) if (!nodes.some((n) => n.nodeId === id)) failures.set(id, "holds a share but is not in the pinned descriptor");
  let stopped = false;
  let grace: NodeJS.Timeout | undefined;
  let wake: () => void = () => {};
  const enoughOrAll = new Promise<void>((resolve) => (wake = resolve));
  const asked = nodes.filter((n) => holders.has(n.nodeId));
  const tasks = asked.map(async (node) => {
    try {
      const res = await withRetries(`Evaluate on node ${node.nodeId}`, policy, () => {
        if (stopped) throw new ClientError("STOPPED", "enough answers already");
        return transport.call(node.address, "evaluate", { userId: ref.user, attemptId: ref.attemptId }, policy.callTimeoutMs);
      });
      const problem = checkAnswer(node, ref, res);
      if (problem === undefined) evaluations.push({ nodeId: node.nodeId, point: res.evaluatedElement });
      else failures.set(node.nodeId, problem);
    } catch (err) {
      if (err instanceof RpcError || err instanceof RecordLockedError || err instanceof TokenError) refusals.push(err);
      failures.set(node.nodeId, err instanceof Error ? err.message : String(err));
    }
    if (evaluations.length >= wanted.want) wake();
    else if (evaluations.length === wanted.need && grace === undefined) grace = setTimeout(wake, wanted.graceMs);
  });
  const settled = Promise.all(tasks).then(() => wake());
  await enoughOrAll;
  clearTimeout(grace);
  return { asked: asked.length, evaluations, failures, refusals, settled, stop: () => (stopped = true) };
}

/** Why an answer is unusable, or undefined when it is good. */
function checkAnswer(node: NodeEntry, ref: AttemptRef, res: EvaluateResponse): string | undefined {
  if (res.nodeId !== BigInt(node.nodeId)) return `answered as node ${res.nodeId}`;
  if (res.version !== ref.version) return `evaluated record version ${res.version}, not ${ref.version}`;
  if (!equalBytes(res.blindedElement, ref.blinded)) return "evaluated another blinded element";
  const fields = {
    clusterId: ref.clusterId, user: ref.user, version: ref.version, attemptId: ref.attemptId,
    nodeId: node.nodeId, blinded: res.blindedElement, evaluated: res.evaluatedElement,
  };
  try {
    if (!verifyEvaluationSignature(node.identityPublicKey, fields, res.signature)) return "bad identity signature";
  } catch (err) {
    return `malformed answer: ${err instanceof Error ? err.message : String(err)}`;
  }
  return undefined;
}

/**
 * Why too few nodes evaluated, when enough nodes said so alike: the record
 * is locked (by other attempts reaching the limit), the attempt was
 * superseded by a concurrent recovery's confirmation, the record is gone,
 * or the nodes refused our token (expired since BeginRecovery, or the token
 * provider failed): NotAuthorizedError or TokenError, so the app fixes its
 * token rather than the cluster.
 * A refusal counts only when a majority of the nodes asked give it
 * (recordQuorum): one node's word would otherwise call the key destroyed,
 * or spend a second attempt (NEW_ATTEMPT) on a supersession nobody else
 * saw. Undefined otherwise (the caller reports NotEnoughEvaluationsError,
 * naming each node's failure).
 */
export function refusalOf(collection: Collection): ClientError | undefined {
  const r = collection.refusals;
  const quorum = recordQuorum(collection.asked);
  const agreed = <E extends Refusal>(isIt: (e: Refusal) => e is E): E | undefined => {
    const alike = r.filter(isIt);
    return alike.length >= quorum ? alike[0] : undefined;
  };
  const superseded = agreed((e): e is RpcError => e instanceof RpcError && e.reason === "ATTEMPT_SUPERSEDED");
  return agreed((e): e is RecordLockedError => e instanceof RecordLockedError)
    ?? (superseded === undefined ? undefined : new AttemptSupersededError(superseded.serverMessage, false))
    ?? agreed((e): e is RecordNotFoundError => e instanceof RecordNotFoundError)
    ?? agreed((e): e is NotAuthorizedError | TokenError => e instanceof NotAuthorizedError || e instanceof TokenError);
}
