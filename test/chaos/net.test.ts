// Port reservations (chaos/net.ts): a port one process chose and has not
// bound yet is not chosen by another. A CI run lost a chaos test when a node's
// admin port, found free by its harness, was taken by another test's cluster
// before the node bound it.
import test from "ava";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { resolve } from "node:path";
import { freePort, releasePort, reservePort } from "../../chaos/net.js";

const ROOT = resolve(import.meta.dirname, "../..");

/** A child process holding a reservation of `port`; resolves once it answered whether it got it. */
async function childReserving(port: number) {
  const script = `const m = await import(${JSON.stringify(resolve(ROOT, "chaos/net.ts"))}); console.log(String(await m.reservePort(${port}))); setInterval(() => {}, 1000);`;
  const child = spawn(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], { cwd: ROOT, stdio: ["ignore", "pipe", "inherit"] });
  const [line] = (await once(child.stdout!, "data")) as [Buffer];
  return { child, got: line.toString().trim() === "true" };
}

test.serial("a port reserved by another process is not reserved again until that process ends", async (t) => {
  if (process.platform !== "linux") return t.pass("reservations are Linux's abstract sockets");
  const port = await freePort();
  await releasePort(port);
  const { child, got } = await childReserving(port);
  try {
    t.true(got, "the child reserved the port");
    t.false(await reservePort(port), "held by the child");
  } finally {
    child.kill("SIGKILL");
    await once(child, "exit");
  }
  t.true(await reservePort(port), "the kernel dropped the child's reservation with the child");
  await releasePort(port);
});

test.serial("within one process a port is reserved once, until released", async (t) => {
  if (process.platform !== "linux") return t.pass("reservations are Linux's abstract sockets");
  const port = await freePort();
  t.false(await reservePort(port), "freePort reserved it");
  await releasePort(port);
  t.true(await reservePort(port));
  await releasePort(port);
});

test.serial("freePort gives distinct ports to concurrent callers", async (t) => {
  const ports = await Promise.all(Array.from({ length: 200 }, () => freePort()));
  t.is(new Set(ports).size, ports.length);
  await Promise.all(ports.map(releasePort));
});
