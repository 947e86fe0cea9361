import test from "ava";
import net from "node:net";
import { LinkProxy } from "../../chaos/proxy.js";
import { applyPartition, cutPairs, linkBlocks, linkKey, type LinkKey } from "../../chaos/partitions.js";

// A server that greets every connection with "hi:" and echoes what it receives,
// and remembers everything it received.
async function echoServer(): Promise<{ port: number; received: () => string; close: () => Promise<void> }> {
  let received = "";
  const sockets = new Set<net.Socket>();
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s)).on("error", () => {});
    s.write("hi:");
    s.on("data", (d) => {
      received += d.toString();
      s.write(d);
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as net.AddressInfo).port;
  return {
    port,
    received: () => received,
    close: () => new Promise<void>((r) => {
      for (const s of sockets) s.destroy();
      server.close(() => r());
    }),
  };
}

interface Conn {
  sock: net.Socket;
  data: () => string;
  closed: Promise<string>;
}

function connect(port: number): Promise<Conn> {
  return new Promise((resolve, reject) => {
    let data = "";
    const sock = net.connect({ host: "127.0.0.1", port });
    const closed = new Promise<string>((r) => {
      sock.on("error", (e: NodeJS.ErrnoException) => r(e.code ?? "error"));
      sock.on("close", () => r("close"));
    });
    sock.on("data", (d) => (data += d.toString()));
    sock.once("connect", () => resolve({ sock, data: () => data, closed }));
    sock.once("error", reject);
  });
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function waitFor(cond: () => boolean, ms = 2000): Promise<boolean> {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    if (cond()) return true;
    await sleep(5);
  }
  return cond();
}

async function setup(t: { teardown: (f: () => Promise<void>) => void }): Promise<{ proxy: LinkProxy; echo: Awaited<ReturnType<typeof echoServer>> }> {
  const echo = await echoServer();
  const proxy = new LinkProxy({ targetHost: "127.0.0.1", targetPort: echo.port, name: "1->2" });
  await proxy.start();
  t.teardown(async () => {
    await proxy.close();
    await echo.close();
  });
  return { proxy, echo };
}

test("data passes both ways through a healthy link", async (t) => {
  const { proxy, echo } = await setup(t);
  const c = await connect(proxy.port);
  c.sock.write("ping");
  t.true(await waitFor(() => c.data() === "hi:ping"));
  t.is(echo.received(), "ping");
  c.sock.destroy();
});

test("blackhole both ways: nothing passes, the connection stays open", async (t) => {
  const { proxy, echo } = await setup(t);
  proxy.blackhole("both");
  const c = await connect(proxy.port);
  c.sock.write("lost");
  await sleep(150);
  t.is(echo.received(), "");
  t.is(c.data(), "");
  t.false(c.sock.destroyed);
  c.sock.destroy();
});

test("one-way forward block: the target sends, never receives", async (t) => {
  const { proxy, echo } = await setup(t);
  proxy.blackhole("forward");
  const c = await connect(proxy.port);
  t.true(await waitFor(() => c.data() === "hi:"));
  c.sock.write("lost");
  await sleep(150);
  t.is(echo.received(), "");
  c.sock.destroy();
});

test("one-way backward block: the target receives, its answers are lost", async (t) => {
  const { proxy, echo } = await setup(t);
  proxy.blackhole("backward");
  const c = await connect(proxy.port);
  c.sock.write("seen");
  t.true(await waitFor(() => echo.received() === "seen"));
  await sleep(100);
  t.is(c.data(), "");
  c.sock.destroy();
});

test("latency delays every chunk by at least the configured time, in order", async (t) => {
  const { proxy } = await setup(t);
  const c = await connect(proxy.port);
  t.true(await waitFor(() => c.data() === "hi:"));
  proxy.setLatency(120);
  const sent = Date.now();
  c.sock.write("a");
  c.sock.write("b");
  t.true(await waitFor(() => c.data() === "hi:ab", 3000));
  // Two traversals (to the echo server and back), each delayed >= 120 ms.
  t.true(Date.now() - sent >= 240);
  c.sock.destroy();
});

test("resetAll closes every open connection", async (t) => {
  const { proxy } = await setup(t);
  const c = await connect(proxy.port);
  t.true(await waitFor(() => c.data() === "hi:"));
  t.is(proxy.openConnections, 1);
  proxy.resetAll();
  const how = await c.closed;
  t.true(how === "ECONNRESET" || how === "close");
  t.is(proxy.openConnections, 0);
});

test("dropNew refuses new connections; heal restores the link", async (t) => {
  const { proxy, echo } = await setup(t);
  proxy.dropNewConnections();
  const c = await connect(proxy.port);
  await c.closed;
  t.is(c.data(), "");
  proxy.heal();
  const d = await connect(proxy.port);
  d.sock.write("back");
  t.true(await waitFor(() => d.data() === "hi:back"));
  t.is(echo.received(), "back");
  d.sock.destroy();
});

test("heal after a blackhole restores traffic on the open connection (dropped bytes stay dropped)", async (t) => {
  const { proxy, echo } = await setup(t);
  const c = await connect(proxy.port);
  t.true(await waitFor(() => c.data() === "hi:"));
  proxy.blackhole();
  c.sock.write("lost");
  await sleep(100);
  proxy.heal();
  c.sock.write("kept");
  t.true(await waitFor(() => c.data() === "hi:kept"));
  t.is(echo.received(), "kept");
  c.sock.destroy();
});

test("negative latency is refused", async (t) => {
  const { proxy } = await setup(t);
  t.throws(() => proxy.setLatency(-1), { instanceOf: RangeError });
});

test("partition specs cut the right directed pairs", (t) => {
  const nodes = [1, 2, 3, 4, 5];
  const full = cutPairs(nodes, { kind: "full", groups: [[1, 2], [3, 4, 5]] });
  t.true(full.has("1->3") && full.has("3->1") && full.has("2->5"));
  t.false(full.has("1->2") || full.has("3->4"));
  t.is(full.size, 12);

  const oneWay = cutPairs(nodes, { kind: "one-way", from: [1], to: [2, 3] });
  t.deepEqual([...oneWay].sort(), ["1->2", "1->3"]);

  const bridge = cutPairs(nodes, { kind: "bridge", left: [1, 2], right: [4, 5], bridge: 3 });
  t.true(bridge.has("1->4") && bridge.has("5->2"));
  t.false(bridge.has("1->3") || bridge.has("3->5") || bridge.has("1->2"));

  const iso = cutPairs(nodes, { kind: "isolate", node: 2 });
  t.is(iso.size, 8);
  t.throws(() => cutPairs(nodes, { kind: "isolate", node: 9 }), { instanceOf: RangeError });
});

test("one-way cut maps to forward on the sender's link and backward on the receiver's link", (t) => {
  const blocks = linkBlocks([1, 2], { kind: "one-way", from: [1], to: [2] });
  t.deepEqual(blocks.get("1->2"), { forward: true, backward: false });
  t.deepEqual(blocks.get("2->1"), { forward: false, backward: true });
});

test("applyPartition over real proxies: isolated node's link carries nothing, others pass", async (t) => {
  const echo = await echoServer();
  const proxies = new Map<LinkKey, LinkProxy>();
  for (const [a, b] of [[1, 2], [2, 1], [2, 3], [3, 2], [1, 3], [3, 1]] as const) {
    const p = new LinkProxy({ targetHost: "127.0.0.1", targetPort: echo.port });
    await p.start();
    proxies.set(linkKey(a, b), p);
  }
  t.teardown(async () => {
    for (const p of proxies.values()) await p.close();
    await echo.close();
  });
  applyPartition(proxies, [1, 2, 3], { kind: "isolate", node: 1 });
  const cut = await connect(proxies.get("1->2")!.port);
  const open = await connect(proxies.get("2->3")!.port);
  t.true(await waitFor(() => open.data() === "hi:"));
  await sleep(100);
  t.is(cut.data(), "");
  cut.sock.destroy();
  open.sock.destroy();
});
