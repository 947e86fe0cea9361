// What a leader stamps on the entries it appends (RaftLoop, with the
// cluster's time of node/server/cluster-clock.ts): the cluster's time, not
// its own clock; and before the cluster's clock was first read, nothing:
// the proposal is dropped (retryable) and the state's time does not move.
import test from "ava";
import { ProposalError } from "../../node/server/loop-types.js";
import { encodeCommand } from "../../node/vault/index.js";
import { beginCmd } from "../../testkit/vault.js";
import { tempDir } from "../storage/helpers.js";
import { startNode } from "./loop-node.js";

const DAY = 86_400_000;

test("a leader stamps the cluster's time; before it is known, a proposal is dropped and the state's time stays", async (t) => {
  let clusterNow: number | null = null;
  const node = await startNode(tempDir(t), { clusterNow: () => clusterNow });
  t.teardown(() => node.close());
  for (let i = 0; i < 3000 && !node.loop.isLeader; i++) await new Promise((r) => setTimeout(r, 10));
  t.true(node.loop.isLeader, "a single voter elects itself");

  const early = beginCmd("early");
  const err = await node.loop.propose(early.requestId, encodeCommand(early)).then(() => null, (e: unknown) => e);
  t.true(err instanceof ProposalError && err.reason === "DROPPED", `dropped, retryable: ${String(err)}`);
  t.is(node.loop.vault.leaderTime, 0, "nothing stamped");

  clusterNow = Date.now() - DAY; // this node's clock a day ahead of the cluster's
  const late = beginCmd("late");
  await node.loop.propose(late.requestId, encodeCommand(late));
  t.is(node.loop.vault.leaderTime, clusterNow, "the cluster's time, not this node's clock");
});
