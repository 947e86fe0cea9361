// `bkv admin audit ...`: a slot for the audit commands, which another change
// builds. Until then it says so. The contract: runAdminAudit gets the
// arguments after "audit" and the CLI's I/O, returns the exit code, and may
// throw UsageError or client errors (reported by main.ts); it may reuse
// client/admin/client.ts and the connection flags of admin.ts (ADMIN_FLAGS).
import { UsageError } from "./args.js";
import type { CliIo } from "./io.js";

export function runAdminAudit(argv: readonly string[], io: CliIo): Promise<number> {
  void io;
  return Promise.reject(new UsageError(`\`bkv admin audit${argv.length > 0 ? ` ${argv[0]}` : ""}\`: the audit commands are not built yet`));
}
