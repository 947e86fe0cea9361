// One way for the SDK, the backup files and the CLI to report a failed file
// step: a ClientError "IO" naming the step and the errno code. The file's
// content is never quoted (a key file, a token, a private key).
import { readFile } from "node:fs/promises";
import { ClientError } from "./errors.js";

/** Runs `f`; a failure of it is a ClientError "IO": "`what`: CODE" (the errno code, else the error's message). */
export async function ioStep<T>(what: string, f: () => T | Promise<T>): Promise<T> {
  try {
    return await f();
  } catch (err) {
    throw new ClientError("IO", `${what}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { cause: err });
  }
}

/** The UTF-8 text of `file`; unreadable, it is a ClientError "IO": "cannot read `name`: CODE" (`name` defaults to the path). */
export function readText(file: string, name = file): Promise<string> {
  return ioStep(`cannot read ${name}`, () => readFile(file, "utf8"));
}
