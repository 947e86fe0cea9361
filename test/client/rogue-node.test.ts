// One rogue node against the SDK and the CLI (security review h2): what a
// single node's answers must not decide on their own. Against the in-process
// fake cluster, with the rogue's lies injected per node and method.
import test from "ava";
import * as grpc from "@grpc/grpc-js";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { ErrorReason } from "../../proto/gen/bkv/v1/status_pb.js";
import { errorWithDetail } from "../../proto/rpc.js";
import { RpcError, VaultClient, type VaultClientOptions, descriptorToJson, printable, rpcErrorFrom } from "../../client/sdk/index.js";
import { EXIT, run } from "../../client/cli/main.js";
import { splitSecretLines } from "../../client/cli/io.js";
import { FakeCluster, TEST_SCRYPT } from "./fake-cluster.js";
import { tempDir } from "../temp.js";

const FAST: VaultClientOptions = { scrypt: TEST_SCRYPT, retry: { deadlineMs: 3_000, callTimeoutMs: 1_000, baseDelayMs: 5, maxDelayMs: 20 }, readBackTimeoutMs: 2_000 };

/** Every control character (C0, DEL, C1). */
const CONTROL = /\p{Cc}/u;

/** A grpc-message meant for a terminal: OSC 52 (set the clipboard), BEL, erase the line, CR, a forged line. */
const HOSTILE = "x\u001b]52;c;aGk=\u0007\u001b[2K\rbkv: password ok\n\u009b31m";

test("printable escapes every C0 and C1 control character and DEL, and keeps the rest", (t) => {
  t.is(printable("a\u0000b\tc\nd\re\u001bf\u007fg\u0085h\u009fi"), "a\\x00b\\x09c\\x0ad\\x0de\\x1bf\\x7fg\\x85h\\x9fi");
  t.is(printable("ordinary text, äöü ✓ 日本"), "ordinary text, äöü ✓ 日本");
});

test("a node's grpc-message reaches RpcError.serverMessage and .message without control characters", (t) => {
  const e = errorWithDetail(grpc.status.FAILED_PRECONDITION, HOSTILE, { reason: ErrorReason.UNSPECIFIED });
  const err = rpcErrorFrom(e as unknown as grpc.ServiceError, "BeginRecovery", "rogue:1");
  t.false(CONTROL.test(err.message), JSON.stringify(err.message));
  t.is(err instanceof RpcError ? err.serverMessage : undefined, printable(HOSTILE));
  t.true(err.message.includes("\\x1b]52;c;aGk=\\x07"), "the text stays readable");
});

test.serial("the CLI prints a node's refusal on one line, with no control character", async (t) => {
  const cluster = await FakeCluster.start(3, 2);
  try {
    for (const n of cluster.nodes) {
      cluster.fault(n.id, (m) => (m === "Register" ? errorWithDetail(grpc.status.FAILED_PRECONDITION, HOSTILE, { reason: ErrorReason.UNSPECIFIED }) as unknown as grpc.ServiceError : undefined));
    }
    const file = join(tempDir(t), "cluster.json");
    await writeFile(file, JSON.stringify(descriptorToJson(cluster.descriptor())));
    let err = "";
    const io = { readSecrets: async (p: readonly string[]) => splitSecretLines("pw\n", p.length), stdout: () => {}, stderr: (s: string) => { err += s; }, stderrIsTTY: false, env: {} };
    const code = await run(["register", "--user", "eve", "--password-stdin", "--cluster", file], io);
    t.is(code, EXIT.ERROR);
    t.true(err.endsWith("\n"));
    t.false(CONTROL.test(err.slice(0, -1)), JSON.stringify(err));
    t.true(err.includes("bkv: password ok\\x0a"), err);
  } finally {
    cluster.stop();
  }
});

test.serial("a leader hint naming an address outside the pinned descriptor is not followed: the call rotates to the next pinned node", async (t) => {
  const cluster = await FakeCluster.start(4, 2);
  const full = cluster.descriptor();
  const pinned = { ...full, nodes: full.nodes.slice(0, 3) };
  const stranger = cluster.nodes[3]?.address ?? "";
  const client = new VaultClient(pinned, FAST);
  try {
    // Node 1, asked first, redirects every mutation to a server that is not pinned.
    const redirect = errorWithDetail(grpc.status.UNAVAILABLE, "not the leader", { reason: ErrorReason.NOT_LEADER, leaderId: 9n, leaderAddress: stranger });
    cluster.fault(1, (m) => (m === "Register" || m === "BeginRecovery" ? redirect as unknown as grpc.ServiceError : undefined));
    const key = await client.register("carol", "pw");
    t.deepEqual(await client.recover("carol", "pw"), key);
    t.deepEqual(cluster.calls.filter((c) => c.node === 4), [], "no call (and no token) went to the unpinned address");
    t.true(cluster.callsOf("Register").some((c) => c.node === 2), "the register rotated to the next pinned node");
  } finally {
    client.close();
    cluster.stop();
  }
});

test.serial("a leader hint naming a pinned node is still followed at once", async (t) => {
  const cluster = await FakeCluster.start(3, 2);
  const client = new VaultClient(cluster.descriptor(), FAST);
  try {
    cluster.leaderId = 3;
    await client.register("dan", "pw");
    t.deepEqual(cluster.callsOf("Register").map((c) => c.node), [1, 3], "node 1's hint named node 3: followed without trying node 2");
  } finally {
    client.close();
    cluster.stop();
  }
});
