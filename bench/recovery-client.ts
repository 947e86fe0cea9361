// A load-generator process of bench/recovery.ts (forked, talks over IPC).
// It runs full recoveries as the SDK does them, minus the client-side work
// that the nodes never see, which is prepared ahead or skipped:
//   GetRecordInfo from every node, BeginRecovery (committed) on the leader
//   with a blinded element made up front, Evaluate on every share holder in
//   parallel (as client/sdk/evaluations.ts asks them all), then
//   ConfirmRecovery (committed) signed with the record's reset key, which the
//   parent kept from registration. No scrypt, no blinding, no unblinding or
//   combination, no check of the nodes' signatures; one ECDSA signature per
//   recovery is the only curve work left on the client.
// The server-side time of a recovery is the wall time of its four RPC phases
// (timestamps around each), the client's signing between them excluded.
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { status } from "@grpc/grpc-js";
import { vaultChannel } from "../chaos/net.js";
import { signConfirm } from "../proto/crypto/index.js";
import { errorDetailOf } from "../proto/rpc.js";
import { closedLoop, distinctPoints } from "./drive.js";
import { devTokenProvider, loadDevIssuer } from "../client/cli/dev-issuer.js";

export interface Init {
  nodes: string[]; leader: number; caFile: string; clusterId: string; users: Array<{ user: string; resetKey: string }>; points: number;
  /** The cluster's development issuer key: one token per user, minted once (client authentication is on). */
  devKeyFile: string;
}
export type Job = { kind: "closed"; loops: number; seconds: number } | { kind: "paced"; rate: number; seconds: number };
export interface JobResult {
  n: number; errors: number; firstError?: string; seconds: number; server: number[]; e2e: number[]; evaluates: number;
  /** Summed ms of the phases GetRecordInfo, BeginRecovery, Evaluate, ConfirmRecovery over the recoveries. */
  phases: number[];
}

type Vault = ReturnType<typeof vaultChannel>["client"];
const CALL = () => ({ deadline: new Date(Date.now() + 10_000) });

class Recoverer {
  private readonly vaults: Vault[];
  private leader: number;
  private readonly blinded: Uint8Array[];
  private nextPoint = 0;
  evaluates = 0;
  e2e: number[] = [];
  phases = [0, 0, 0, 0];

  constructor(private readonly init: Init) {
    const ca = readFileSync(init.caFile);
    const provider = loadDevIssuer(init.devKeyFile).then((issuer) => devTokenProvider(issuer));
    const token = async (user: string | null) => (await provider)(user);
    this.vaults = init.nodes.map((a) => vaultChannel(a, ca, undefined, token).client);
    this.leader = init.leader;
    this.blinded = distinctPoints(init.points);
  }

  /** One full recovery of user `u`; returns its server-side ms. */
  async recover(u: number): Promise<number> {
    const { user, resetKey } = this.init.users[u]!;
    const t0 = performance.now();
    await Promise.all(this.vaults.map((v) => v.getRecordInfo({ userId: user }, CALL())));
    const ta = performance.now();
    const begin = await this.onLeader((v) => v.beginRecovery({
      requestId: new Uint8Array(randomBytes(16)), userId: user, blindedElement: this.blinded[this.nextPoint++ % this.blinded.length]!,
    }, CALL()));
    const tb = performance.now();
    await Promise.all(this.vaults.map((v) => this.evaluate(v, user, begin.attemptId)));
    const t1 = performance.now();
    const signature = signConfirm(BigInt(`0x${resetKey}`), { clusterId: this.init.clusterId, user, version: begin.version }, begin.attemptId);
    const t2 = performance.now();
    await this.onLeader((v) => v.confirmRecovery({
      requestId: new Uint8Array(randomBytes(16)), userId: user, version: begin.version, attemptId: begin.attemptId, signature,
    }, CALL()));
    const t3 = performance.now();
    this.e2e.push(t3 - t0);
    [ta - t0, tb - ta, t1 - tb, t3 - t2].forEach((ms, i) => (this.phases[i]! += ms));
    return t3 - t0 - (t2 - t1);
  }

  /** Evaluate, retried while the node has not applied the attempt yet (UNAVAILABLE), as the SDK does. */
  private async evaluate(v: Vault, user: string, attemptId: bigint): Promise<void> {
    for (let tries = 1; ; tries++) {
      this.evaluates++;
      try {
        await v.evaluate({ userId: user, attemptId }, CALL());
        return;
      } catch (err) {
        if ((err as { code?: number }).code !== status.UNAVAILABLE || tries === 3) throw err;
      }
    }
  }

  /** A call to the leader; on failure, follows the leader hint of the error (if any) for the next calls. */
  private async onLeader<T>(f: (v: Vault) => Promise<T>): Promise<T> {
    try {
      return await f(this.vaults[this.leader]!);
    } catch (err) {
      const hint = this.init.nodes.indexOf(errorDetailOf(err as object)?.leaderAddress ?? "");
      if (hint >= 0) this.leader = hint;
      throw err;
    }
  }
}

/** Starts a recovery every 1/rate s, each on a user not in a recovery (waiting for one when all are). */
async function paced(r: Recoverer, users: number, rate: number, seconds: number) {
  const free = Array.from({ length: users }, (_, i) => i);
  const waiting: Array<(u: number) => void> = [];
  const take = () => (free.length > 0 ? Promise.resolve(free.pop()!) : new Promise<number>((res) => waiting.push(res)));
  const give = (u: number) => (waiting.length > 0 ? waiting.shift()!(u) : free.push(u));
  const server: number[] = [];
  let errors = 0;
  let firstError: string | undefined;
  const tasks: Array<Promise<void>> = [];
  const t0 = performance.now();
  for (let j = 0; performance.now() < t0 + seconds * 1000; j++) {
    const wait = t0 + (j * 1000) / rate - performance.now();
    if (wait > 0) await new Promise((res) => setTimeout(res, wait));
    tasks.push(take().then(async (u) => {
      try {
        server.push(await r.recover(u));
      } catch (err) {
        errors++;
        firstError ??= String(err).slice(0, 160);
      } finally {
        give(u);
      }
    }));
  }
  await Promise.all(tasks);
  return { n: server.length, errors, ...(firstError === undefined ? {} : { firstError }), seconds: (performance.now() - t0) / 1000, lat: server.sort((a, b) => a - b) };
}

async function runJob(r: Recoverer, users: number, job: Job): Promise<JobResult> {
  r.evaluates = 0;
  r.e2e = [];
  r.phases = [0, 0, 0, 0];
  const res = job.kind === "closed"
    ? await closedLoop(Math.min(job.loops, users), job.seconds, (_, loop) => r.recover(loop))
    : await paced(r, users, job.rate, job.seconds);
  const { lat, ...rest } = res;
  return { ...rest, server: lat, e2e: r.e2e, evaluates: r.evaluates, phases: r.phases };
}

let recoverer: Recoverer | undefined;
let userCount = 0;
process.on("message", (msg: { init?: Init; job?: Job }) => {
  if (msg.init !== undefined) {
    recoverer = new Recoverer(msg.init);
    userCount = msg.init.users.length;
    process.send!({ ready: true });
  } else if (msg.job !== undefined) {
    void runJob(recoverer!, userCount, msg.job).then((result) => process.send!({ result }));
  }
});
process.on("disconnect", () => process.exit(0)); // the parent is gone
