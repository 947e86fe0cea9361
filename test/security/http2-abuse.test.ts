// A hostile client that speaks HTTP/2 itself, below gRPC, against a real
// node's client port (TLS, no token): requests that are not gRPC, the
// "rapid reset" flood (CVE-2023-44487), a header block of a megabyte, streams
// held open at the connection's stream cap, and hundreds of idle
// connections, over the per-address connection cap. Each must leave the node
// serving an honest client; none may reach a handler. What the caps bound
// (the streams held over many connections) is stated in docs/threat-model.md.
import test from "ava";
import http2 from "node:http2";
import tls from "node:tls";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import * as grpc from "@grpc/grpc-js";
import { LocalCluster, UNREACHED_LIMITS, reportLogsOnFailure } from "../../testkit/cluster.js";
import { counterValue } from "./raw.js";

reportLogsOnFailure(test);

/** The port's stream cap in this test: small, so that holding it is cheap. */
const STREAM_CAP = 8;
/** The port's connections per address (the default; every client here is 127.0.0.1). */
const PER_ADDRESS = 64;
const PATH = "/bkv.v1.VaultService/GetRecordInfo";
const GRPC = { ":method": "POST", ":path": PATH, "content-type": "application/grpc", te: "trailers" };
/** A gRPC frame holding an empty message (the port answers INVALID_ARGUMENT: no user id). */
const EMPTY_MESSAGE = Buffer.from([0, 0, 0, 0, 0]);

let cluster: LocalCluster;
let ca: Buffer;

test.before(async () => {
  cluster = await LocalCluster.start({ size: 1, limits: { ...UNREACHED_LIMITS, maxConcurrentStreams: STREAM_CAP, maxConnectionsPerAddress: PER_ADDRESS } });
  ca = readFileSync(join(cluster.dir, "certs", "ca.crt"));
});

test.after.always(async () => {
  await cluster?.close();
});

/** A raw HTTP/2 session to node 1's client port; resolves once TLS and the peers' SETTINGS are done. */
async function connect(): Promise<http2.ClientHttp2Session> {
  const session = http2.connect(`https://${cluster.node(1).client}`, { ca, servername: "node-1" });
  session.on("error", () => { /* each test reads what it needs from the events below */ });
  await new Promise<void>((resolve, reject) => {
    session.once("remoteSettings", () => resolve());
    session.once("close", () => reject(new Error("the session closed before its SETTINGS")));
  });
  return session;
}

interface Exchange {
  /** HTTP status, gRPC status and message (headers and trailers merged); absent when none came. */
  readonly http?: number;
  readonly grpcStatus?: number;
  readonly grpcMessage?: string;
  /** The stream's error, when it was reset. */
  readonly error?: string;
}

/** One request on a fresh session: `headers`, then `body`, half-closed. */
async function exchange(headers: http2.OutgoingHttpHeaders, body?: Buffer): Promise<Exchange> {
  const session = await connect();
  try {
    return await new Promise<Exchange>((resolve) => {
      const seen: Record<string, unknown> = {};
      const stream = session.request(headers);
      stream.on("response", (h) => Object.assign(seen, h));
      stream.on("trailers", (h) => Object.assign(seen, h));
      stream.on("data", () => { /* a refusal carries no message */ });
      stream.on("error", (err) => { seen.error = err.message; });
      stream.on("close", () => resolve({
        http: seen[":status"] as number | undefined,
        grpcStatus: seen["grpc-status"] === undefined ? undefined : Number(seen["grpc-status"]),
        grpcMessage: seen["grpc-message"] === undefined ? undefined : decodeURIComponent(String(seen["grpc-message"])),
        error: seen.error as string | undefined,
      }));
      stream.end(body);
    });
  } finally {
    session.destroy();
  }
}

/** An honest SDK-level call on its own channel: NOT_FOUND for a user with no record means it was served. */
async function servesHonestClient(t: { is: (a: unknown, b: unknown, m?: string) => void }, when: string): Promise<void> {
  const code = await cluster.vault(1).getRecordInfo({ userId: "nobody" }, { deadline: new Date(Date.now() + 10_000) })
    .then(() => grpc.status.OK, (err: { code?: number }) => err.code);
  t.is(code, grpc.status.NOT_FOUND, `an honest call is served ${when}`);
}

test.serial("requests that are not gRPC get HTTP or gRPC refusals, and never reach a handler; those that end inside grpc-js are counted and logged", async (t) => {
  const before = await cluster.metricsOf(1);
  const cases: ReadonlyArray<readonly [string, http2.OutgoingHttpHeaders, Buffer | undefined, Partial<Exchange>]> = [
    ["GET /", { ":method": "GET", ":path": "/" }, undefined, { http: 415 }],
    ["a text/plain body", { ...GRPC, "content-type": "text/plain" }, Buffer.from("hello"), { http: 415 }],
    ["an unknown method", { ...GRPC, ":path": "/nope.v1.Nope/Nothing" }, EMPTY_MESSAGE, { grpcStatus: grpc.status.UNIMPLEMENTED }],
    ["a length prefix of 4 GiB", GRPC, Buffer.from([0, 0xff, 0xff, 0xff, 0xff, 1, 2, 3]), { grpcStatus: grpc.status.RESOURCE_EXHAUSTED }],
    ["an unknown compression", { ...GRPC, "grpc-encoding": "br" }, Buffer.from([1, 0, 0, 0, 1, 0]), { grpcStatus: grpc.status.UNIMPLEMENTED }],
  ];
  for (const [what, headers, body, want] of cases) {
    const got = await exchange(headers, body);
    if (want.http !== undefined) t.is(got.http, want.http, what);
    if (want.grpcStatus !== undefined) t.is(got.grpcStatus, want.grpcStatus, `${what}: ${got.grpcMessage}`);
  }
  // No request message, or two, for a unary method: refused by grpc-js, whatever its words.
  for (const [what, body] of [["no message", Buffer.alloc(0)], ["half a frame", Buffer.from([0, 0, 0])], ["two messages", Buffer.concat([EMPTY_MESSAGE, EMPTY_MESSAGE])]] as const) {
    const got = await exchange(GRPC, body);
    t.true(got.grpcStatus !== undefined && got.grpcStatus !== grpc.status.OK && got.grpcStatus !== grpc.status.INVALID_ARGUMENT, `${what}: refused before the handler (${got.grpcStatus} ${got.grpcMessage})`);
  }
  // The control: one empty message does reach the handler, which refuses it.
  t.is((await exchange(GRPC, EMPTY_MESSAGE)).grpcStatus, grpc.status.INVALID_ARGUMENT);
  await servesHonestClient(t, "after them");
  // grpc-js refused the 4 GiB prefix and the unknown compression (no status bkv could see), and the three framings;
  // the unknown method has no handler to count it under, the control and the honest call reached theirs.
  const after = await cluster.metricsOf(1);
  const early = (x: string, stage: string) => counterValue(x, "bkv_grpc_early_ends_total", { port: "client", method: "GetRecordInfo", stage });
  t.is(early(after, "before_request") - early(before, "before_request"), 2, "refused inside grpc-js: counted");
  t.is(early(after, "unary_framing") - early(before, "unary_framing"), 3, "no message, half a frame, two messages: counted");
  const lines = cluster.logOf(1).split("\n").filter((l) => l.includes("call ended before its request reached the service"));
  for (const stage of ["before_request", "unary_framing"]) {
    t.true(lines.some((l) => l.includes(`"stage":"${stage}"`) && l.includes(`"method":"${PATH}"`) && l.includes('"level":"warn"')), `a line for ${stage}`);
  }
});

test.serial("rapid reset (CVE-2023-44487): the node sends GOAWAY and stops taking the flood's streams, and serves others", async (t) => {
  const flood = await RawFrames.open(cluster.node(1).client, ca);
  let sent = 0;
  // HEADERS then RST_STREAM for each stream, written as fast as the socket takes them, whatever the stream cap.
  while (sent < 100_000 && flood.goaway === undefined && !flood.closed) {
    await flood.write(Array.from({ length: 500 }, () => flood.openAndReset(PATH)).flat());
    sent += 500;
  }
  await waitUntil(() => flood.goaway !== undefined || flood.closed, 10_000);
  flood.destroy();
  t.not(flood.goaway, undefined, `a GOAWAY after ${sent} streams`);
  t.true(flood.goaway!.lastStreamId < 2 * sent, `the node stopped at stream ${flood.goaway!.lastStreamId} of ${2 * sent - 1}`);
  await servesHonestClient(t, "after the flood");
});

test.serial("a header block of a megabyte is refused; the node serves", async (t) => {
  const headers: http2.OutgoingHttpHeaders = { ...GRPC };
  for (let i = 0; i < 128; i++) headers[`x-pad-${i}`] = "a".repeat(8_000);
  const got = await exchange(headers, EMPTY_MESSAGE);
  t.is(got.grpcStatus, undefined, "not answered as a gRPC call");
  t.regex(got.error ?? "", /REFUSED_STREAM|ENHANCE_YOUR_CALM|PROTOCOL_ERROR|Session closed/, "the stream was reset");
  await servesHonestClient(t, "after it");
});

test.serial("streams held open at the cap: the connection's next stream waits, other connections are served, a released one lets it in", async (t) => {
  const session = await connect();
  t.is(session.remoteSettings.maxConcurrentStreams, STREAM_CAP, "the port announces the cap (limits.maxConcurrentStreams)");
  const held = Array.from({ length: STREAM_CAP }, () => {
    const stream = session.request(GRPC, { endStream: false });
    stream.on("error", () => { /* closed with the session */ });
    return stream;
  });
  let extraStatus: number | undefined;
  const extra = session.request(GRPC);
  extra.on("trailers", (h) => { extraStatus = Number(h["grpc-status"]); });
  extra.on("response", (h) => { if (h["grpc-status"] !== undefined) extraStatus = Number(h["grpc-status"]); });
  extra.on("error", () => { /* closed with the session */ });
  const extraClosed = new Promise<void>((resolve) => extra.once("close", () => resolve()));
  extra.end(EMPTY_MESSAGE);
  await new Promise((resolve) => setTimeout(resolve, 1_500));
  t.is(extraStatus, undefined, "the stream over the cap is not served while the others are held");
  await servesHonestClient(t, "on another connection meanwhile");
  held[0]!.end(EMPTY_MESSAGE);
  await Promise.race([extraClosed, new Promise((resolve) => setTimeout(resolve, 10_000))]);
  t.is(extraStatus, grpc.status.INVALID_ARGUMENT, "once one held stream ends, the waiting one is served");
  session.destroy();
  await servesHonestClient(t, "after the held streams are dropped");
});

test.serial("300 idle TLS connections from one address: the per-address cap holds some, closes the rest at accept (counted, logged once); the node serves", async (t) => {
  await servesHonestClient(t, "before (its channel's connection is open)");
  const before = await cluster.metricsOf(1);
  const openBefore = counterValue(before, "bkv_connections", { port: "client" });
  const tries = await Promise.allSettled(Array.from({ length: 300 }, () => connect()));
  const sessions = tries.flatMap((r) => (r.status === "fulfilled" ? [r.value] : []));
  t.true(sessions.length <= PER_ADDRESS && sessions.length >= PER_ADDRESS - openBefore, `${sessions.length} held, ${openBefore} open before`);
  const after = await cluster.metricsOf(1);
  const refused = (x: string) => counterValue(x, "bkv_connections_refused_total", { port: "client", reason: "address" });
  t.is(refused(after) - refused(before), 300 - sessions.length, "every other one refused at accept, and counted");
  t.is(counterValue(after, "bkv_connections", { port: "client" }), PER_ADDRESS, "the port is at its cap");
  await servesHonestClient(t, "beside them, on its open connection");
  const lines = cluster.logOf(1).split("\n").filter((l) => l.includes("connection refused at a connection cap") && l.includes('"port":"client"'));
  t.true(lines.length >= 1 && lines.length <= 2, `${lines.length} lines for ${300 - sessions.length} refusals`);
  for (const s of sessions) s.destroy();
  let open = PER_ADDRESS;
  for (const end = Date.now() + 10_000; open >= PER_ADDRESS && Date.now() < end;) {
    open = counterValue(await cluster.metricsOf(1), "bkv_connections", { port: "client" });
  }
  t.true(open < PER_ADDRESS, `closed connections are uncounted (${open} open)`);
  await t.notThrowsAsync(connect().then((fresh) => fresh.destroy()), "a new connection is taken");
  await servesHonestClient(t, "after them");
});

async function waitUntil(done: () => boolean, timeoutMs: number): Promise<void> {
  for (const end = Date.now() + timeoutMs; !done() && Date.now() < end;) await new Promise((resolve) => setTimeout(resolve, 20));
}

/**
 * HTTP/2 frames written by hand over TLS (ALPN h2), for what Node's own
 * client will not send (it keeps to the peer's stream cap). It reads the
 * node's frames only for a GOAWAY. RFC 9113 §4.1 (frame layout), RFC 7541
 * §6.2.2 (header fields as literals, never indexed: no HPACK state).
 */
class RawFrames {
  goaway: { lastStreamId: number; code: number } | undefined;
  closed = false;
  private nextId = 1;
  private inbox = Buffer.alloc(0);

  private constructor(private readonly socket: tls.TLSSocket) {
    socket.on("data", (d: Buffer) => this.read(d));
    socket.on("close", () => { this.closed = true; });
    socket.on("error", () => { /* closed follows */ });
  }

  static async open(address: string, ca: Buffer): Promise<RawFrames> {
    const [host, port] = address.split(":") as [string, string];
    const socket = tls.connect({ host, port: Number(port), ca, servername: "node-1", ALPNProtocols: ["h2"] });
    await new Promise<void>((resolve, reject) => socket.once("secureConnect", resolve).once("error", reject));
    const raw = new RawFrames(socket);
    await raw.write([Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"), frame(FRAME.SETTINGS, 0, 0, Buffer.alloc(0))]);
    return raw;
  }

  /** A new stream's HEADERS (a gRPC call to `path`) and its RST_STREAM (CANCEL). */
  openAndReset(path: string): Buffer[] {
    const id = this.nextId;
    this.nextId += 2;
    const block = Buffer.concat([[":method", "POST"], [":scheme", "https"], [":path", path], [":authority", "node-1"], ["content-type", "application/grpc"], ["te", "trailers"]].map(([n, v]) => literal(n!, v!)));
    return [frame(FRAME.HEADERS, END_HEADERS, id, block), frame(FRAME.RST_STREAM, 0, id, Buffer.from([0, 0, 0, CANCEL]))];
  }

  /** Writes `frames`; resolves when the socket drains (or after 3 s: a node that stopped reading). */
  async write(frames: Buffer[]): Promise<void> {
    if (this.socket.write(Buffer.concat(frames))) return;
    await Promise.race([new Promise((resolve) => this.socket.once("drain", resolve)), new Promise((resolve) => setTimeout(resolve, 3_000))]);
  }

  destroy(): void {
    this.socket.destroy();
  }

  private read(data: Buffer): void {
    this.inbox = Buffer.concat([this.inbox, data]);
    while (this.inbox.length >= 9) {
      const length = this.inbox.readUIntBE(0, 3);
      if (this.inbox.length < 9 + length) return;
      if (this.inbox[3] === FRAME.GOAWAY) this.goaway = { lastStreamId: this.inbox.readUInt32BE(9) & 0x7fffffff, code: this.inbox.readUInt32BE(13) };
      this.inbox = this.inbox.subarray(9 + length);
    }
  }
}

const FRAME = { HEADERS: 0x1, RST_STREAM: 0x3, SETTINGS: 0x4, GOAWAY: 0x7 } as const;
const END_HEADERS = 0x4;
const CANCEL = 0x8;

function frame(type: number, flags: number, streamId: number, payload: Buffer): Buffer {
  const header = Buffer.alloc(9);
  header.writeUIntBE(payload.length, 0, 3);
  header[3] = type;
  header[4] = flags;
  header.writeUInt32BE(streamId, 5);
  return Buffer.concat([header, payload]);
}

/** A header field as a literal without indexing, new name (names and values under 127 bytes). */
function literal(name: string, value: string): Buffer {
  return Buffer.concat([Buffer.from([0, name.length]), Buffer.from(name), Buffer.from([value.length]), Buffer.from(value)]);
}
