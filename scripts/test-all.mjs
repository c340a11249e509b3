#!/usr/bin/env node
// The whole test suite, as CI runs it: dependencies, prerequisites, lint, types, every
// vitest project (unit, integration, conformance), the Python agent's suite under both
// interpreters, and a build of every package.
import { spawnSync } from "node:child_process";

const root = new URL("..", import.meta.url);
const MIN = 60_000;
// [name, command, args, time limit]: a step past its limit is killed and reported, and the
// summary still prints.
const steps = [
  ["install dependencies", "node", ["scripts/pnpm.mjs", "install", "--frozen-lockfile"], 10 * MIN],
  ["test prerequisites", "node", ["scripts/test-prereqs.mjs"], 15 * MIN],
  // Through turbo, as `npm run lint|build` run them (scripts/turbo.mjs puts a working pnpm on
  // PATH). Typecheck: every package's as one tsc program (each package's own run re-checks
  // the sources it imports), then the check that a changed core export is not hidden by
  // turbo's cache (scripts/check-turbo.mjs).
  ["lint (biome, through turbo)", "npm", ["run", "-s", "lint"], 5 * MIN],
  ["lint remote scripts (shellcheck, pyflakes)", "node", ["scripts/lint-remote.mjs"], 2 * MIN],
  ["release plan (changesets: no major bump on 0.x)", "node", ["scripts/check-release-plan.mjs"], 2 * MIN],
  ["typecheck (all packages as one program; turbo's cache checked on the client)", "node", ["scripts/check-turbo.mjs", "typecheck"], 10 * MIN],
  ["vitest (all packages)", "node", ["scripts/pnpm.mjs", "exec", "vitest", "run"], 45 * MIN],
  // Every TS/JS snippet of every README type-checked (strict), and run where it needs only
  // this machine; README command lines checked against the scripts that exist.
  ["README snippets", "node", ["scripts/readme-snippets.mjs"], 5 * MIN],
  ["python agent tests", "node", ["scripts/test-python.mjs"], 20 * MIN],
  // Twice: the second build must be a full cache hit; no nested pnpm deeper than 3.
  ["build (turbo)", "node", ["scripts/check-turbo.mjs", "build"], 10 * MIN],
  // Every public package packed with pnpm, installed by npm outside the workspace, used from
  // ESM, CommonJS, strict TypeScript and the packed CLI; publint and attw on each tarball.
  ["consumer test (packed tarballs, npm)", "node", ["scripts/consumer-test.mjs"], 15 * MIN],
];

const results = [];
let failed = false;
for (const [name, cmd, args, limit] of steps) {
  console.error(`\n=== ${name} ===`);
  const t0 = Date.now();
  const r = spawnSync(cmd, args, {
    stdio: "inherit",
    cwd: root,
    env: process.env,
    timeout: limit,
    killSignal: "SIGTERM",
  });
  const ok = r.status === 0;
  const why = r.error?.code === "ETIMEDOUT" ? `, killed after ${limit / MIN} min` : r.signal ? `, ${r.signal}` : "";
  results.push(`${ok ? "ok  " : "FAIL"}  ${name}  (${((Date.now() - t0) / 1000).toFixed(1)} s${why})`);
  if (!ok) {
    failed = true;
    if (name === "install dependencies") break;
  }
}
console.error(`\n=== summary ===\n${results.join("\n")}`);
process.exit(failed ? 1 : 0);
