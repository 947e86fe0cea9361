// A script run as a child process by close.test.ts: it uses a client as an
// app's script would, closes it, prints "closed" and then has nothing left
// to do, so the process must exit by itself. Its input is one JSON object in
// $BKV_CLOSE_TEST (see close.test.ts ChildInput); it prints one JSON line of
// results before "closed".
import { AdminClient } from "../../client/admin/client.js";
import { VaultClient, parseDescriptor } from "../../client/sdk/index.js";
import { TEST_SCRYPT } from "./fake-cluster.js";

interface Input {
  mode: "recover" | "status-then-close" | "admin";
  descriptor?: unknown;
  user?: string;
  password?: string;
  callTimeoutMs: number;
  /** status-then-close: close this long after the call started, without waiting for it. */
  closeAfterMs?: number;
  admin?: { endpoint: string; ca: string; cert: string; key: string };
}

const input = JSON.parse(process.env.BKV_CLOSE_TEST ?? "{}") as Input;
const retry = { deadlineMs: 5_000, callTimeoutMs: input.callTimeoutMs, baseDelayMs: 5, maxDelayMs: 20 };

async function recover(): Promise<object> {
  const client = new VaultClient(parseDescriptor(input.descriptor), { scrypt: TEST_SCRYPT, retry });
  try {
    const key = await client.recover(input.user ?? "", input.password ?? "");
    return { key: Buffer.from(key).toString("hex") };
  } finally {
    client.close();
  }
}

async function statusThenClose(): Promise<object> {
  const client = new VaultClient(parseDescriptor(input.descriptor), { retry });
  const status = client.status();
  setTimeout(() => client.close(), input.closeAfterMs ?? 0);
  const s = await status;
  return { errors: s.nodes.map((n) => n.error ?? "") };
}

async function admin(): Promise<object> {
  const a = input.admin;
  if (a === undefined) throw new Error("no admin input");
  const client = new AdminClient({ endpoints: [a.endpoint], tls: { ca: Buffer.from(a.ca), cert: Buffer.from(a.cert), key: Buffer.from(a.key) } });
  try {
    const [answer] = await client.statuses([a.endpoint], input.callTimeoutMs);
    return { error: answer !== undefined && "error" in answer ? answer.error.message : "" };
  } finally {
    client.close();
  }
}

const run = { recover, "status-then-close": statusThenClose, admin }[input.mode];
const result = await run();
process.stdout.write(`${JSON.stringify(result)}\nclosed\n`);
