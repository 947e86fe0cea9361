// Temporary directories for tests: each one is removed when its owner ends
// (a test, a function, or the test file's process), so a suite run leaves
// nothing in os.tmpdir(). No value import of ava: fixtures that child
// processes run import the helpers that import this.

import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { ExecutionContext } from "ava";

/** A fresh directory under os.tmpdir(), removed when test `t` ends. */
export function tempDir(t: ExecutionContext, prefix = "bkv-test-"): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** A fresh directory under os.tmpdir() for a whole test file, removed when its process exits. */
export function fileTempDir(prefix = "bkv-test-"): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  process.once("exit", () => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Runs `fn` on a fresh directory under os.tmpdir(), removed when fn returns or throws. */
export function withTempDir<T>(prefix: string, fn: (dir: string) => T): T {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  try {
    return fn(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
