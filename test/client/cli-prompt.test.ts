// The CLI's hidden prompts on a terminal (client/cli/io.ts readHidden),
// driven through a fake TTY: typed-ahead and pasted lines, CR LF, Ctrl-C
// and Ctrl-D, and the terminal's mode restored whatever happens.
import test from "ava";
import { EventEmitter } from "node:events";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { EXIT, run } from "../../client/cli/main.js";
import { type CliIo, type HiddenInput, readHidden } from "../../client/cli/io.js";
import { descriptorToJson } from "../../client/sdk/index.js";
import { FakeCluster } from "./fake-cluster.js";
import { tempDir } from "../temp.js";

/** A terminal that types `chunks`, one per tick, once read. */
class FakeTty extends EventEmitter implements HiddenInput {
  raw = false;
  constructor(private readonly chunks: readonly string[]) {
    super();
  }

  setRawMode(on: boolean): this {
    this.raw = on;
    return this;
  }

  resume(): this {
    void (async () => {
      for (const c of this.chunks) {
        await new Promise((r) => setImmediate(r));
        this.emit("data", Buffer.from(c));
      }
    })();
    return this;
  }

  pause(): this {
    return this;
  }
}

async function prompt(chunks: readonly string[], prompts: readonly string[]): Promise<{ lines?: string[]; err?: Error; shown: string; tty: FakeTty }> {
  const tty = new FakeTty(chunks);
  let shown = "";
  try {
    const lines = await readHidden(prompts, tty, (s) => (shown += s));
    return { lines, shown, tty };
  } catch (err) {
    return { err: err as Error, shown, tty };
  }
}

test("lines typed ahead or pasted at once answer the next prompts; CR LF is one line end; nothing is echoed", async (t) => {
  const both = await prompt(["old\rnew\r"], ["Current password: ", "New password: "]);
  t.deepEqual(both.lines, ["old", "new"]);
  t.is(both.shown, "Current password: \nNew password: \n");
  t.false(both.tty.raw, "the terminal is back in cooked mode");
  t.deepEqual((await prompt(["a\r\nb\r\n"], ["1: ", "2: "])).lines, ["a", "b"]);
  t.deepEqual((await prompt(["p", "w\x7f", "x\n"], ["1: "])).lines, ["px"]);
});

test("Ctrl-C at a prompt interrupts; Ctrl-D ends the input on an empty line and is ignored inside one", async (t) => {
  const c = await prompt(["pw\x03"], ["Password: "]);
  t.is(c.err?.name, "InterruptedError");
  t.false(c.tty.raw);
  const d = await prompt(["\x04"], ["Password: "]);
  t.regex(d.err?.message ?? "", /no input/);
  t.false(d.tty.raw);
  t.deepEqual((await prompt(["pw\x04\r"], ["Password: "])).lines, ["pw"]);
});

test("bkv: Ctrl-C at the password prompt exits 130 with `interrupted`, not an unexpected error", async (t) => {
  const cluster = await FakeCluster.start(3, 2);
  t.teardown(() => cluster.stop());
  const file = join(tempDir(t, "bkv-cli-prompt-"), "cluster.json");
  await writeFile(file, JSON.stringify(descriptorToJson(cluster.descriptor())));
  let err = "";
  const io: CliIo = {
    readSecrets: (prompts) => readHidden(prompts, new FakeTty(["hunter2\x03"]), () => true),
    stdout: () => undefined,
    stderr: (s) => (err += s),
    stderrIsTTY: true,
    env: {},
  };
  t.is(await run(["recover", "--user", "u", "--password-stdin", "--cluster", file], io), EXIT.INTERRUPTED);
  t.is(err, "bkv: interrupted\n");
  t.is(cluster.calls.length, 0, "nothing was asked of the cluster");
});
