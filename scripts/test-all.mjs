#!/usr/bin/env node
// The whole test suite, as CI runs it: dependencies, prerequisites, lint, types, every
// vitest project (unit, integration, conformance), the Python agent's suite under both
// interpreters, and a build of every package.
import { spawnSync } from "node:child_process";

const root = new URL("..", import.meta.url);
const steps = [
  ["install dependencies", "node", ["scripts/pnpm.mjs", "install", "--frozen-lockfile"]],
  ["test prerequisites", "node", ["scripts/test-prereqs.mjs"]],
  ["lint (biome)", "node", ["scripts/pnpm.mjs", "exec", "biome", "check", "."]],
  // pnpm's recursive run, not turbo: turbo needs a `pnpm` binary on PATH, which a fresh
  // machine (corepack only) does not have.
  [
    "typecheck",
    "node",
    ["scripts/pnpm.mjs", "-r", "--no-bail", "--workspace-concurrency=2", "--reporter=append-only", "run", "typecheck"],
  ],
  ["vitest (all packages)", "node", ["scripts/pnpm.mjs", "exec", "vitest", "run"]],
  ["python agent tests", "node", ["scripts/test-python.mjs"]],
  [
    "build",
    "node",
    ["scripts/pnpm.mjs", "-r", "--no-bail", "--workspace-concurrency=2", "--reporter=append-only", "run", "build"],
  ],
];

const results = [];
let failed = false;
for (const [name, cmd, args] of steps) {
  console.error(`\n=== ${name} ===`);
  const t0 = Date.now();
  const r = spawnSync(cmd, args, { stdio: "inherit", cwd: root, env: process.env });
  const ok = r.status === 0;
  results.push(`${ok ? "ok  " : "FAIL"}  ${name}  (${((Date.now() - t0) / 1000).toFixed(1)} s)`);
  if (!ok) {
    failed = true;
    if (name === "install dependencies") break;
  }
}
console.error(`\n=== summary ===\n${results.join("\n")}`);
process.exit(failed ? 1 : 0);
