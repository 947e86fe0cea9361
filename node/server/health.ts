// grpc.health.v1 on the node's gRPC ports (health-service.ts: only the names
// served are answered, nothing is kept for other names). One verdict for the
// whole node, healthState(), served under the overall name "" and under each
// port's service names, re-read every POLL_MS so that Watch streams see
// changes; NOT_SERVING for good once the node stops.
import type * as grpc from "@grpc/grpc-js";
import type { ServingStatus } from "grpc-health-check";
import { NONE } from "../raft/index.js";
import { HealthService } from "./health-service.js";

/** What the node's health is judged on. */
export interface HealthFacts {
  /** A graceful stop has begun (the node serves out what it holds, then exits). */
  readonly stopping: boolean;
  /** The leader this node knows; NONE while it knows none. */
  readonly leaderId: number;
  /** Committed entries not applied yet (commit index − applied index). */
  readonly applyLag: number;
  /** The bound on applyLag (config maxApplyLag). */
  readonly maxApplyLag: number;
  /** The last HSM probe (hsm-probe.ts). */
  readonly hsm: { readonly ok: boolean; readonly error: string };
}

/** Why the node is NOT_SERVING, or null when it serves: the first of stopping, no leader, apply lag, HSM failing. */
export function notServingReason(f: HealthFacts): string | null {
  if (f.stopping) return "stopping";
  if (f.leaderId === NONE) return "no leader known";
  if (f.applyLag > f.maxApplyLag) return `apply lag ${f.applyLag} > ${f.maxApplyLag} entries`;
  if (!f.hsm.ok) return `HSM probe failing: ${f.hsm.error}`;
  return null;
}

/** SERVING while the node knows a leader, applies within its lag bound and its HSM answers; else NOT_SERVING. */
export function healthState(f: HealthFacts): ServingStatus {
  return notServingReason(f) === null ? "SERVING" : "NOT_SERVING";
}

const POLL_MS = 100;

interface Served {
  readonly impl: HealthService;
  readonly names: readonly string[];
}

export class NodeHealth {
  private readonly served: Served[] = [];
  private timer: NodeJS.Timeout | null = null;
  private status: ServingStatus = "NOT_SERVING";
  private stopped = false;

  constructor(private readonly state: () => ServingStatus) {}

  /** Adds grpc.health.v1.Health to `server`, answering for "" and `serviceNames` only; returns the service (tests read its watchers). */
  serve(server: grpc.Server, serviceNames: readonly string[]): HealthService {
    const names = ["", ...serviceNames];
    const impl = new HealthService(names, this.status);
    impl.addToServer(server);
    this.served.push({ impl, names });
    if (this.timer === null && !this.stopped) {
      this.timer = setInterval(() => this.set(this.state()), POLL_MS);
      this.timer.unref();
    }
    return impl;
  }

  /** NOT_SERVING from now on (call before the servers drain). */
  stop(): void {
    this.stopped = true;
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    this.set("NOT_SERVING");
  }

  private set(status: ServingStatus): void {
    if (status === this.status) return;
    this.status = status;
    for (const s of this.served) for (const name of s.names) s.impl.setStatus(name, status);
  }
}
