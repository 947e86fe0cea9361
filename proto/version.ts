// The bkv version (package.json "version"), for `bkv --version` and the
// node's GetClusterStatus. Read from the nearest package.json above this
// module, so it works from the sources and from the compiled dist/.
import { existsSync, readFileSync } from "node:fs";

let cached: string | undefined;

export function packageVersion(): string {
  cached ??= readVersion();
  return cached;
}

function readVersion(): string {
  for (let dir = new URL(".", import.meta.url); ; dir = new URL("..", dir)) {
    const file = new URL("package.json", dir);
    if (existsSync(file)) return (JSON.parse(readFileSync(file, "utf8")) as { version: string }).version;
    if (dir.pathname === "/") return "unknown";
  }
}
