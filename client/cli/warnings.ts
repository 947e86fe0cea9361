// Process-wide warnings of the command-line tools (bkv, chaos, fuzz).

/**
 * grpc-js sets the TLS server name to the target's host, and Node warns
 * (DEP0123) when that host is an IP address, as on a local cluster. The
 * certificate is still checked against the IP's subjectAltName; the warning
 * is noise for a tool's users, so only that one is dropped. For entry points
 * only: a library must not take over the process's warnings.
 */
export function quietIpServerNameWarning(): void {
  process.removeAllListeners("warning");
  process.on("warning", (w: Error & { code?: string }) => {
    if (w.code !== "DEP0123") process.stderr.write(`${w.name}: ${w.message}\n`);
  });
}
