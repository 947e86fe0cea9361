// Connection floods on the mutual-TLS ports of a real node: a stranger who
// reaches the admin or the peer port opens hundreds of TCP connections and
// never starts TLS. Before the ports had caps, every one held a file
// descriptor of the node for Node's two-minute handshake timeout (3,000 from
// one address: +2,500 descriptors; enough of them and the node's own files
// fail with EMFILE). Each port now holds its per-address cap and closes the
// rest at accept; the cluster goes on committing through the streams its
// members already hold. docs/threat-model.md, "Connection-level abuse".
import test from "ava";
import net from "node:net";
import tls from "node:tls";
import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { VaultClient } from "../../client/sdk/index.js";
import { LocalCluster, UNREACHED_LIMITS, reportLogsOnFailure } from "../../testkit/cluster.js";
import { counterValue } from "./raw.js";
import { TLS_HANDSHAKE_TIMEOUT_MS } from "../../proto/connection-gate.js";

reportLogsOnFailure(test);

/** The connections per address of the two ports, and the burst of new ones (ADMIN_PORT_CONNECTIONS in node/server/node.ts, PEER_PORT_CONNECTIONS in node/transport). */
const PER_ADDRESS = { admin: 16, peer: 32 } as const;
const FLOOD = 300;
/** The client port's new connections per second from one address in this test, and their burst. */
const CLIENT_RATE = { connectsPerSecPerAddress: 2, maxConnectionsPerAddress: 10 } as const;

let cluster: LocalCluster;
let client: VaultClient;

test.before(async () => {
  cluster = await LocalCluster.start({ size: 3, limits: { ...UNREACHED_LIMITS, ...CLIENT_RATE } });
  client = new VaultClient(await cluster.descriptor(), { scrypt: { N: 1024, r: 8, p: 1 }, token: cluster.token, retry: { deadlineMs: 20_000 } });
});

test.after.always(async () => {
  client?.close();
  await cluster?.close();
});

interface Flood {
  readonly sockets: net.Socket[];
  /** Sockets the node closed. */
  closed(): number;
  /**
   * Sockets the node closed before its handshake deadline could close one:
   * those refused at accept. On a loaded machine the check below can come
   * after the deadline closed the admitted ones too (they are no refusals).
   */
  closedAtAccept(): number;
}

/** `count` TCP connections to `address` that never send a byte; resolves once each connected or failed. */
async function flood(address: string, count: number): Promise<Flood> {
  const [host, port] = address.split(":") as [string, string];
  let closed = 0;
  let atAccept = 0;
  const sockets = await Promise.all(Array.from({ length: count }, () => new Promise<net.Socket>((resolve) => {
    const t0 = performance.now();
    const s = net.connect({ host, port: Number(port) }, () => resolve(s));
    s.on("error", () => resolve(s));
    s.on("close", () => {
      closed++;
      if (performance.now() - t0 < TLS_HANDSHAKE_TIMEOUT_MS / 2) atAccept++;
    });
  })));
  return { sockets, closed: () => closed, closedAtAccept: () => atAccept };
}

/** Refusals on `port`, for any cap (from one address: per address, or the rate once the burst is spent). */
const refusedOn = (metrics: string, port: string) => counterValue(metrics, "bkv_connections_refused_total", { port });
const descriptors = (pid: number) => readdirSync(`/proc/${pid}/fd`).length;

/** Whether an operator's mutual-TLS handshake with node 1's admin port completes (a new connection is taken). */
function operatorHandshake(): Promise<boolean> {
  const [host, port] = cluster.node(1).admin.split(":") as [string, string];
  const file = (name: string) => readFileSync(join(cluster.certsDir, name));
  return new Promise((resolve) => {
    const s = tls.connect({ host, port: Number(port), ca: file("ca.crt"), cert: file("operator.crt"), key: file("operator.key"), servername: "node-1", ALPNProtocols: ["h2"] });
    s.once("secureConnect", () => { s.destroy(); resolve(true); });
    s.once("error", () => resolve(false));
    s.once("close", () => resolve(false));
  });
}

async function waitUntil(done: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  for (const end = Date.now() + timeoutMs; !(await done()) && Date.now() < end;) await new Promise((resolve) => setTimeout(resolve, 50));
}

test.serial("idle TCP floods on the admin and peer ports: each holds its per-address cap, closes the rest at accept (counted, logged), descriptors stay bounded; the cluster commits", async (t) => {
  await client.register("before-flood", "pw");
  const pid = cluster.node(1).proc?.pid ?? 0;
  const fdsBefore = descriptors(pid);
  const before = await cluster.metricsOf(1);
  const floods = { admin: await flood(cluster.node(1).admin, FLOOD), peer: await flood(cluster.node(1).peer, FLOOD) };
  for (const port of ["admin", "peer"] as const) {
    const f = floods[port];
    let refused = 0;
    await waitUntil(async () => {
      refused = refusedOn(await cluster.metricsOf(1), port) - refusedOn(before, port);
      return f.closedAtAccept() >= FLOOD - PER_ADDRESS[port] && f.closedAtAccept() === refused;
    }, 10_000);
    t.true(f.closedAtAccept() >= FLOOD - PER_ADDRESS[port], `${port}: ${f.closedAtAccept()} of ${FLOOD} closed by the node at accept`);
    t.is(refused, f.closedAtAccept(), `${port}: every connection the node closed at accept was refused by a cap, and counted (${f.closed()} closed in all)`);
    const lines = cluster.logOf(1).split("\n").filter((l) => l.includes("connection refused at a connection cap") && l.includes(`"port":"${port}"`));
    t.true(lines.length >= 1 && lines.length <= 4, `${port}: ${lines.length} lines for ${refused} refusals (once per cap and 10 s)`);
  }
  const grown = descriptors(pid) - fdsBefore;
  t.true(grown <= PER_ADDRESS.admin + PER_ADDRESS.peer + 8, `node 1 holds ${grown} more descriptors during the floods (${2 * FLOOD} connections)`);
  const key = await client.register("during-flood", "pw");
  t.deepEqual(await client.recover("during-flood", "pw"), key, "the cluster commits and evaluates beside the floods");
  t.false(await operatorHandshake(), "while the flood holds 127.0.0.1's admin connections, a new one from that address is refused too");
  for (const f of Object.values(floods)) for (const s of f.sockets) s.destroy();
  let taken = false;
  await waitUntil(async () => (taken = await operatorHandshake()), 10_000);
  t.true(taken, "once the flood's connections closed, the admin port takes a new connection");
});

/** A TLS handshake with node 1's client port, then a close: whether the handshake completed. */
function clientHandshake(): Promise<boolean> {
  const [host, port] = cluster.node(1).client.split(":") as [string, string];
  return new Promise((resolve) => {
    const s = tls.connect({ host, port: Number(port), ca: readFileSync(join(cluster.certsDir, "ca.crt")), servername: "node-1", ALPNProtocols: ["h2"] });
    s.once("secureConnect", () => { s.destroy(); resolve(true); });
    s.once("error", () => resolve(false));
    s.once("close", () => resolve(false));
  });
}

test.serial("a caller that reopens its client-port connections in a loop gets its burst of handshakes, then is closed at accept for the rate; the SDK's open connections are served", async (t) => {
  const key = await client.register("rate-user", "pw"); // the SDK's connections are open before the loop
  const before = await cluster.metricsOf(1);
  const outcomes: boolean[] = [];
  for (let i = 0; i < 40; i++) outcomes.push(await clientHandshake());
  const taken = outcomes.filter((ok) => ok).length;
  const after = await cluster.metricsOf(1);
  const rate = (x: string) => counterValue(x, "bkv_connections_refused_total", { port: "client", reason: "rate" });
  t.true(taken >= CLIENT_RATE.maxConnectionsPerAddress && taken < 40, `${taken} of 40 handshakes completed`);
  t.is(rate(after) - rate(before), 40 - taken, "every other one refused at accept for the rate, and counted");
  t.deepEqual(await client.recover("rate-user", "pw"), key, "the SDK is served on the connections it holds");
});
