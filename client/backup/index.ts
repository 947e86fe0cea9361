// Backup files encrypted with the 256-bit backup key (docs/client.md).
export * from "./errors.js";
export { DEFAULT_CHUNK_SIZE, HEADER_LENGTH, TAG_LENGTH } from "./format.js";
export { DecryptStream, EncryptStream, type FileOptions, decryptFile, encryptFile } from "./stream.js";
