// A node started with `join: true` adds itself to a running cluster
// (autopilot-style): it asks the leader, through the admin addresses its
// config names (nodes[].adminAddress of the other nodes), to add it as a
// learner, waits for the leader's snapshot and log, and once it applied all
// it knows asks to be promoted (the leader refuses until it is within
// promoteMaxLag, admin-service.ts). It authenticates with its own node
// certificate. It asks to be added only while it holds no state at all: a
// node whose applied configuration leaves it out ("outside": removed, or
// caught up from a snapshot older than its own addition, until the entries
// after it arrive) never adds itself again, since removing a node stays an
// operator's act; it waits, and goes on to the promotion should it appear as
// a learner. Without any admin address in its config, a joining node waits
// for an operator's AddLearner, as before.
import { randomBytes } from "node:crypto";
import * as grpc from "@grpc/grpc-js";
import { AdminService } from "../../proto/gen/bkv/v1/admin_pb.js";
import { ErrorReason } from "../../proto/gen/bkv/v1/status_pb.js";
import { errorDetailOf, unaryClient, type UnaryClient } from "../../proto/rpc.js";
import type { TlsMaterial } from "../transport/index.js";
import type { RaftView } from "./raft-view.js";
import type { Logger } from "./log.js";

export interface JoinOptions {
  readonly nodeId: number;
  /** This node's peer address, as the others dial it. */
  readonly peerAddress: string;
  /** Admin addresses of other nodes (config). */
  readonly adminAddresses: readonly string[];
  readonly tls: TlsMaterial;
  readonly loop: () => RaftView;
  readonly log: Logger;
  readonly intervalMs?: number;
}

type Phase = "new" | "learner" | "voter" | "outside";

/**
 * Where this node stands, from its own applied configuration. "outside": it
 * holds state in which it is no member, which is final for a removed node but
 * passing for a new one installing a snapshot taken before its AddLearner.
 */
export function joinPhase(view: Pick<RaftView, "voters" | "learners" | "vault">, self: number): Phase {
  if (view.voters.includes(self)) return "voter";
  if (view.learners.includes(self)) return "learner";
  return view.vault.appliedIndex > 0 || view.voters.length > 0 ? "outside" : "new";
}

type Admin = UnaryClient<typeof AdminService.method>;

export class Joiner {
  private timer: NodeJS.Timeout | null = null;
  private busy = false;
  private readonly channels = new Map<string, { client: Admin; channel: grpc.Client }>();
  /** Where to call next: the last leader named, else the configured addresses in turn. */
  private target = 0;
  private leaderAddress = "";
  private requestId = new Uint8Array(randomBytes(16));
  private asked: Phase | null = null;
  private toldOutside = false;

  constructor(private readonly o: JoinOptions) {}

  start(): void {
    if (this.o.adminAddresses.length === 0) {
      this.o.log.info("join: no admin address of another node in the config: waiting for an operator's AddLearner");
      return;
    }
    this.timer = setInterval(() => { void this.step(); }, this.o.intervalMs ?? 1000);
    void this.step(); // the first ask now, not an interval after the start
  }

  stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
    for (const c of this.channels.values()) c.channel.close();
    this.channels.clear();
  }

  /** One round: ask for the next change this node needs, or stop once it is a voter. */
  async step(): Promise<void> {
    if (this.busy) return;
    const loop = this.o.loop();
    const phase = joinPhase(loop, this.o.nodeId);
    if (phase === "voter") {
      this.o.log.info("join: this node is a voter");
      this.stop();
      return;
    }
    if (phase === "outside") return this.waitOutside();
    if (phase === "new" && this.asked === "new") return; // added; waiting for the leader's snapshot
    if (phase === "learner" && (loop.commitIndex === 0 || loop.vault.appliedIndex < loop.commitIndex)) return;
    this.busy = true;
    try {
      if (await this.ask(phase)) await this.ask(phase); // redirected to the leader: ask it now, not an interval later
    } finally {
      this.busy = false;
    }
  }

  /** Never asks to be added again; says so once. */
  private waitOutside(): void {
    if (this.toldOutside) return;
    this.toldOutside = true;
    this.o.log.info("join: this node is not in the configuration it applied (removed, or restored from a snapshot older than its addition): it does not add itself again; waiting");
  }

  /** Asks for the change; true when the answer named the leader to ask instead. */
  private async ask(phase: "new" | "learner"): Promise<boolean> {
    const address = this.leaderAddress !== "" ? this.leaderAddress : this.o.adminAddresses[this.target % this.o.adminAddresses.length] as string;
    const client = this.client(address);
    const opts = { deadline: new Date(Date.now() + 5000) };
    const nodeId = BigInt(this.o.nodeId);
    try {
      if (phase === "new") await client.addLearner({ requestId: this.requestId, nodeId, peerAddress: this.o.peerAddress }, opts);
      else await client.promoteLearner({ requestId: this.requestId, nodeId }, opts);
      this.o.log.info(phase === "new" ? "join: added as a learner" : "join: promoted to voter", { via: address });
      this.asked = phase;
      this.requestId = new Uint8Array(randomBytes(16));
      return false;
    } catch (err) {
      return this.onFailure(phase, address, err as grpc.ServiceError);
    }
  }

  /**
   * NOT_LEADER: call the leader it names next (true: at once). Another UNAVAILABLE: the next
   * address, same request id (the first try may have landed). A refusal
   * (e.g. not caught up yet): a fresh request id, since a retry with the same
   * one would answer the same refusal.
   */
  private onFailure(phase: Phase, address: string, err: grpc.ServiceError): boolean {
    const detail = errorDetailOf(err);
    if (detail?.reason === ErrorReason.NOT_LEADER && detail.leaderAddress !== "" && detail.leaderAddress !== address) {
      this.leaderAddress = detail.leaderAddress;
      return true;
    }
    this.leaderAddress = "";
    if (err.code === grpc.status.UNAVAILABLE || err.code === grpc.status.DEADLINE_EXCEEDED) {
      this.target++;
    } else {
      this.requestId = new Uint8Array(randomBytes(16));
    }
    this.o.log.info("join: not yet", { step: phase === "new" ? "AddLearner" : "PromoteLearner", via: address, why: err.details || err.message });
    return false;
  }

  private client(address: string): Admin {
    let c = this.channels.get(address);
    if (c === undefined) {
      c = unaryClient(AdminService, address, grpc.credentials.createSsl(this.o.tls.ca, this.o.tls.key, this.o.tls.cert));
      this.channels.set(address, c);
    }
    return c.client;
  }
}
