// @ts-check
import tseslint from "typescript-eslint";
import bkv from "./lint/layering.js";

export default tseslint.config(
  { ignores: ["node_modules/**", "proto/gen/**", "**/*.js", "data/**", "dist/**"] },
  ...tseslint.configs.recommended,
  {
    files: ["**/*.ts"],
    rules: {
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
      "no-restricted-imports": "off",
    },
  },
  {
    // Who may import whom (the table is in lint/layering.js; docs/architecture.md).
    files: ["node/**/*.ts", "proto/**/*.ts", "client/**/*.ts", "chaos/**/*.ts"],
    plugins: { bkv },
    rules: { "bkv/layering": "error" },
  },
  {
    // The Raft core is a pure state machine: no I/O, no clocks, no timers.
    files: ["node/raft/**/*.ts"],
    rules: {
      "no-restricted-imports": ["error", {
        patterns: [
          { regex: "^(node:.*|fs|net|os|child_process|crypto|timers|worker_threads)(/.*)?$", message: "node/raft must not do I/O or read clocks" },
        ],
      }],
      "no-restricted-globals": ["error", "setTimeout", "setInterval", "setImmediate", "queueMicrotask", "performance", "process", "Date"],
      "no-restricted-properties": ["error", { object: "Math", property: "random", message: "inject randomness" }],
    },
  },
);
