// Text that came from a server (an error's grpc-message, a descriptor's
// cluster id), made safe to print on a terminal.

/** Every control character: C0 (U+0000–U+001F), DEL (U+007F) and C1 (U+0080–U+009F). */
const CONTROL = /\p{Cc}/gu;

/**
 * `text` with every C0 and C1 control character (and DEL) replaced by a
 * visible `\xNN` escape. Contract: the result holds no control character, so
 * printing it cannot move the cursor, erase or rewrite lines (CR, ESC [),
 * set the window title or the clipboard (OSC 52), ring the bell, or start a
 * line of its own (LF) that would pass for the CLI's output. Everything
 * else, including non-ASCII letters, is kept as it was.
 */
export function printable(text: string): string {
  return text.replace(CONTROL, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, "0")}`);
}
