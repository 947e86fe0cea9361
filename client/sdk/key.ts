// The 256-bit backup key in text form: 64 hex digits, shown in 16 groups of 4.
import { randomBytes } from "node:crypto";
import { KeyFormatError } from "./errors.js";

export const KEY_BYTES = 32;
const HEX_DIGITS = KEY_BYTES * 2;
const GROUP = 4;

/** A fresh random backup key from the OS CSPRNG. */
export function generateKey(): Uint8Array {
  return new Uint8Array(randomBytes(KEY_BYTES));
}

/** Lower-case hex in 16 space-separated groups of 4 digits. */
export function formatKey(key: Uint8Array): string {
  if (!(key instanceof Uint8Array) || key.length !== KEY_BYTES) {
    throw new KeyFormatError(`a backup key is ${KEY_BYTES} bytes`);
  }
  const hex = Buffer.from(key).toString("hex");
  const groups: string[] = [];
  for (let i = 0; i < hex.length; i += GROUP) groups.push(hex.slice(i, i + GROUP));
  return groups.join(" ");
}

/**
 * Parses the grouped or plain form: 64 hex digits, any case, optionally
 * separated by spaces, tabs or '-'. Errors never echo the input.
 */
export function parseKey(text: string): Uint8Array {
  if (typeof text !== "string") throw new KeyFormatError("a backup key must be text");
  const digits = text.trim().replace(/[\s-]+/g, "");
  const bad = digits.search(/[^0-9a-fA-F]/);
  if (bad >= 0) throw new KeyFormatError(`a backup key holds only hex digits 0-9 a-f (non-hex character at digit ${bad + 1})`);
  if (digits.length !== HEX_DIGITS) {
    throw new KeyFormatError(`a backup key is ${HEX_DIGITS} hex digits (got ${digits.length})`);
  }
  return new Uint8Array(Buffer.from(digits, "hex"));
}
