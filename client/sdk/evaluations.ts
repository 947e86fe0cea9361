// Collecting the nodes' evaluations of a committed attempt (DESIGN §5
// recovery step 2): asked of every share holder in the pinned descriptor in
// parallel; each answer must name the node, the record version and our B,
// and carry a valid signature by the node's pinned identity key. Anything
// else is skipped and reported in `failures`.
import {
  type NodeEvaluation,
  type RecordPublicPart,
  equalBytes,
  verifyEvaluationSignature,
} from "../../proto/crypto/index.js";
import type { EvaluateResponse } from "../../proto/gen/bkv/v1/vault_pb.js";
import type { NodeEntry } from "./descriptor.js";
import { ClientError, RecordLockedError, RpcError } from "./errors.js";
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
  /** The nodes' refusals (non-transient RpcErrors: locked, superseded, ...), at most one per node, in arrival order. */
  readonly refusals: Array<RpcError | RecordLockedError>;
  /** Resolves once every node has answered or given up. */
  readonly settled: Promise<void>;
  /** Stops the retries still running. */
  stop(): void;
}

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
  const refusals: Array<RpcError | RecordLockedError> = [];
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
      if (err instanceof RpcError || err instanceof RecordLockedError) refusals.push(err);
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
