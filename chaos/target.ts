// The interface between the chaos runner and where the nodes run: local
// processes with proxied peer links (chaos/cluster.ts LocalTarget) or pods of
// a Kubernetes cluster (chaos/k8s/target.ts).
import type { ClusterDescriptor, TokenProvider } from "../client/sdk/index.js";
import type { FinalRecord, UnexpectedExit } from "./checkers/types.js";
import type { FaultKind, NemesisExecutor } from "./nemesis.js";

/** One node's view of a record (GetRecordInfo on that node). */
export type NodeRecord = FinalRecord & { digest: string; appliedIndex: number };

/** The fields of a node's admin GetClusterStatus the runner uses. */
export interface NodeStatus {
  nodeId: number;
  leaderId: number;
  commitIndex: number;
  appliedIndex: number;
  /** The vault state digest (hex) and the index it was taken at; only when asked for. */
  stateDigest?: { digest: string; index: number };
}

/** Fault injection; only the methods of the target's `faultKinds` are called, plus resume/restartNode/heal after an error. */
export type TargetFaults = Pick<NemesisExecutor, "killNode" | "restartNode" | "pause" | "resume" | "partition" | "setLatency" | "resetLinks" | "heal">;

/** Where the nodes run. Every call may fail while a node is down; the runner retries where it must. */
export interface ChaosTarget {
  /** For logs and the summary ("3 local processes", "k8s namespace bkv"). */
  readonly name: string;
  readonly ids: readonly number[];
  /** The fault kinds this target can inject: the schedule contains only these. */
  readonly faultKinds: readonly FaultKind[];
  readonly faults: TargetFaults;
  /** The descriptor the SDK uses from this process (addresses reachable from here). */
  descriptor(): Promise<ClusterDescriptor>;
  /** The bearer tokens of the SDK's calls (undefined: none, a cluster with authentication off). */
  readonly token?: TokenProvider | undefined;
  /** GetRecordInfo on one node; null when the node has no such record. */
  readRecord(node: number, user: string): Promise<NodeRecord | null>;
  /** The node's admin GetClusterStatus; `withDigest` asks for the vault state digest (O(state) on the node). */
  status(node: number, timeoutMs?: number, withDigest?: boolean): Promise<NodeStatus>;
  /** The node that reports itself leader, if a reachable node does. */
  leader(): Promise<number | undefined>;
  /** Waits for one leader known by every running node; returns its id. */
  waitReady(timeoutMs: number): Promise<number>;
  /** After the nemesis: every node running and unpaused, every network fault gone. */
  restoreAll(): Promise<void>;
  /** Each node's log (JSON lines) for the leaders checker. */
  logs(): Promise<Map<number, string>>;
  /** A line about the target's own machinery, logged before healing (optional). */
  progressNote?(): string;
  /** Stops everything the target started (processes, port-forwards, channels). */
  close(): Promise<void>;
  /** Last resort on a forced exit: kills every child process synchronously. Returns how many it signalled. */
  killAllSync(): number;
  /** Node processes that ended without the harness or the nemesis stopping them, when the target can tell. */
  unexpectedExits?(): UnexpectedExit[];
}
