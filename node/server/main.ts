// bkv-node: `tsx node/server/main.ts --config FILE` (env BKV_* overrides the
// file; see docs/operations.md). JSON logs on stdout; SIGTERM/SIGINT stop
// the node gracefully (leadership transfer, drain, flush, HSM close).
import { parseArgs } from "node:util";
import { ConfigError, loadConfig } from "./config.js";
import { jsonLogger } from "./log.js";
import { VaultNode } from "./node.js";

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { config: { type: "string" } }, strict: true });
  let cfg;
  try {
    cfg = loadConfig(values.config);
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`bkv-node: ${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
  let node: VaultNode | null = null;
  const log = jsonLogger(cfg.logLevel, { node: cfg.nodeId }, () => node?.logContext() ?? {});
  const fatal = (err: unknown) => {
    log.error("fatal error: stopping", { error: err });
    process.exit(1);
  };
  const vaultNode = new VaultNode(cfg, log, fatal);
  node = vaultNode;
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info("stopping", { signal });
    vaultNode.stop().then(() => process.exit(0), fatal);
  };
  process.on("SIGTERM", () => stop("SIGTERM"));
  process.on("SIGINT", () => stop("SIGINT"));
  try {
    await vaultNode.start();
  } catch (err) {
    log.error("start failed", { error: err });
    process.exit(1);
  }
}

void main();
