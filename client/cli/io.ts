// Terminal I/O for `bkv`: secret lines from stdin (hidden prompts on a TTY,
// lines from a pipe otherwise) and a progress bar on stderr.
import { InterruptedError, UsageError } from "./args.js";

/** What a command may touch; tests pass their own. */
export interface CliIo {
  /** Reads `prompts.length` secret lines (a hidden prompt each on a TTY). */
  readSecrets(prompts: readonly string[]): Promise<string[]>;
  stdout(text: string): void;
  stderr(text: string): void;
  /** Whether stderr is a terminal (progress bars only then). */
  readonly stderrIsTTY: boolean;
  readonly env: NodeJS.ProcessEnv;
}

const MAX_STDIN = 64 * 1024;

/** The process's own I/O. */
export function processIo(): CliIo {
  return {
    readSecrets: (prompts) => (process.stdin.isTTY ? readHidden(prompts) : readPipedLines(prompts.length)),
    stdout: (s) => process.stdout.write(s),
    stderr: (s) => process.stderr.write(s),
    stderrIsTTY: process.stderr.isTTY === true,
    env: process.env,
  };
}

/** The first `count` lines of stdin (CR LF or LF); a missing line is an error. */
async function readPipedLines(count: number): Promise<string[]> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of process.stdin) {
    chunks.push(chunk as Buffer);
    size += (chunk as Buffer).length;
    if (size > MAX_STDIN) throw new UsageError("stdin holds more than 64 KiB: expected one secret per line");
  }
  return splitSecretLines(Buffer.concat(chunks).toString("utf8"), count);
}

/** Splits text into `count` non-empty lines; throws naming the missing line (never echoing input). */
export function splitSecretLines(text: string, count: number): string[] {
  const lines = text.split(/\r?\n/);
  const out: string[] = [];
  for (let i = 0; i < count; i++) {
    const line = lines[i];
    if (line === undefined || line.length === 0) throw new UsageError(`expected ${count} non-empty line(s) on stdin, line ${i + 1} is missing or empty`);
    out.push(line);
  }
  return out;
}

/** The terminal input readHidden reads (process.stdin on a TTY; tests pass a fake). */
export interface HiddenInput {
  setRawMode(on: boolean): unknown;
  resume(): unknown;
  pause(): unknown;
  on(event: "data", listener: (data: Buffer) => void): unknown;
  off(event: "data", listener: (data: Buffer) => void): unknown;
}

/**
 * Prompts on stderr and reads one line per prompt from the terminal without
 * echo. Lines typed ahead or pasted at once answer the next prompts; CR LF
 * ends one line. Ctrl-C interrupts (InterruptedError); Ctrl-D on an empty
 * line ends the input (UsageError). The terminal leaves raw mode in any case.
 */
export function readHidden(prompts: readonly string[], input: HiddenInput = process.stdin, show: (s: string) => unknown = (s) => process.stderr.write(s)): Promise<string[]> {
  const keys = new HiddenLines(prompts.length);
  return new Promise((resolve, reject) => {
    const onData = (data: Buffer) => {
      for (const ch of data.toString("utf8")) {
        const step = keys.take(ch);
        if (step === "more") continue;
        if (step !== "stopped") show("\n");
        if (step === "line") show(prompts[keys.lines.length] as string);
        else return finish(keys.error);
      }
    };
    const finish = (err: Error | null) => {
      input.setRawMode(false);
      input.pause();
      input.off("data", onData);
      if (err !== null) reject(err);
      else resolve(keys.lines);
    };
    show(prompts[0] ?? "");
    input.setRawMode(true);
    input.resume();
    input.on("data", onData);
  });
}

/**
 * The keys typed at `count` hidden prompts, one at a time: "more" (a key of
 * the line), "line" (a line ended, more to read), "ended" (the last line
 * ended, or an empty one: `error`) or "stopped" (Ctrl-C, Ctrl-D: `error`).
 */
class HiddenLines {
  readonly lines: string[] = [];
  /** Why reading stopped short, once it is over (null: every line was read). */
  error: Error | null = null;
  private line = "";
  private prev = "";

  constructor(private readonly count: number) {}

  take(ch: string): "more" | "line" | "ended" | "stopped" {
    const crlf = ch === "\n" && this.prev === "\r";
    this.prev = ch;
    if (ch === "\u0003") return this.stop(new InterruptedError());
    if (ch === "\u0004") return this.line === "" ? this.stop(new UsageError("no input: end of input at the prompt")) : "more";
    if (ch === "\r" || ch === "\n") return crlf ? "more" : this.endLine();
    this.line = ch === "\u007f" || ch === "\b" ? this.line.slice(0, -1) : this.line + ch;
    return "more";
  }

  private endLine(): "line" | "ended" {
    const line = this.line;
    this.line = "";
    if (line === "") this.error = new UsageError("empty input");
    else this.lines.push(line);
    return line === "" || this.lines.length === this.count ? "ended" : "line";
  }

  private stop(err: Error): "stopped" {
    this.error = err;
    return "stopped";
  }
}

/** Files above this size get a progress bar (when stderr is a terminal). */
export const PROGRESS_THRESHOLD = 8 * 1024 * 1024;

/** A progress callback drawing `label [#####.....] 45%  9.0/20.0 MiB` at most every 100 ms, or undefined. */
export function progressBar(io: CliIo, label: string): ((done: number, total: number) => void) | undefined {
  if (!io.stderrIsTTY) return undefined;
  let last = 0;
  return (done, total) => {
    if (total <= PROGRESS_THRESHOLD) return;
    const now = Date.now();
    if (done < total && now - last < 100) return;
    last = now;
    const frac = Math.min(1, done / total);
    const width = 30;
    const filled = Math.round(frac * width);
    const mib = (n: number) => (n / (1024 * 1024)).toFixed(1);
    io.stderr(`\r${label} [${"#".repeat(filled)}${".".repeat(width - filled)}] ${Math.floor(frac * 100)}%  ${mib(done)}/${mib(total)} MiB`);
    if (done >= total) io.stderr("\n");
  };
}
