// A proposal's waiter takes the outcome of its own request only: another
// payload committed under the same request id (a rogue leader that saw the id
// in a forwarded proposal, or a client that reused one) does not answer it.
// Its own entry then answers it: REQUEST_ID_REUSED, and nothing applied.
import test from "ava";
import { encodeCommand } from "../../node/vault/index.js";
import { beginCmd, blindedPoint, newRequestId } from "../../testkit/vault.js";
import { tempDir } from "../storage/helpers.js";
import { startNode } from "./loop-node.js";

test("another request committed under a proposal's id does not answer it; its own entry does, refused REQUEST_ID_REUSED", async (t) => {
  const node = await startNode(tempDir(t));
  t.teardown(() => node.close());
  for (let i = 0; i < 3000 && !node.loop.isLeader; i++) await new Promise((r) => setTimeout(r, 10));
  t.true(node.loop.isLeader, "a single voter elects itself");

  const id = newRequestId();
  const other = beginCmd("mallory", blindedPoint(3), id);
  const mine = beginCmd("alice", blindedPoint(5), id);
  // One event-loop turn: both go out in one batch, `other` first, so it is applied first.
  const [first, second] = await Promise.all([
    node.loop.propose(id, encodeCommand(other)),
    node.loop.propose(id, encodeCommand(mine)),
  ]);
  t.false(first.ok);
  t.false(second.ok);
  if (first.ok || second.ok) return;
  t.is(first.reason, "RECORD_NOT_FOUND", "the first request's own outcome: mallory has no record");
  t.is(second.reason, "REQUEST_ID_REUSED", `alice's waiter is answered by alice's entry, not by mallory's (got ${second.reason}: ${second.message})`);
});

test("a retry of the same request under its id is answered with the remembered outcome", async (t) => {
  const node = await startNode(tempDir(t));
  t.teardown(() => node.close());
  for (let i = 0; i < 3000 && !node.loop.isLeader; i++) await new Promise((r) => setTimeout(r, 10));
  const cmd = beginCmd("bob", blindedPoint(5));
  const once = await node.loop.propose(cmd.requestId, encodeCommand(cmd));
  const again = await node.loop.propose(cmd.requestId, encodeCommand(cmd));
  t.deepEqual(again, once);
});
