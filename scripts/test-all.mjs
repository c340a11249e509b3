#!/usr/bin/env node
// The whole test suite, as CI runs it: dependencies, prerequisites, lint, types, every
// vitest project (unit, integration, conformance), the Python agent's suite under both
// interpreters, and a build of every package.
import { spawn, spawnSync } from "node:child_process";
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

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
  [
    "typecheck (all packages as one program; turbo's cache checked on the client)",
    "node",
    ["scripts/check-turbo.mjs", "typecheck"],
    10 * MIN,
  ],
  ["vitest (all packages)", "node", ["scripts/pnpm.mjs", "exec", "vitest", "run"], 45 * MIN],
  // Every TS/JS snippet of every README type-checked (strict), and run where it needs only
  // this machine; README command lines checked against the scripts that exist.
  ["README snippets", "node", ["scripts/readme-snippets.mjs"], 5 * MIN],
  // In the background, beside the steps below (mostly npm, tsc and esbuild: ~60 s of the
  // run saved); its output is printed as one block when it ends.
  ["python agent tests", "node", ["scripts/test-python.mjs"], 20 * MIN, { background: true }],
  // Twice: the second build must be a full cache hit; no nested pnpm deeper than 3.
  ["build (turbo)", "node", ["scripts/check-turbo.mjs", "build"], 10 * MIN],
  // Every public package packed with pnpm, installed by npm outside the workspace, used from
  // ESM, CommonJS, strict TypeScript and the packed CLI; publint and attw on each tarball.
  ["consumer test (packed tarballs, npm)", "node", ["scripts/consumer-test.mjs"], 15 * MIN],
];

const results = [];
let failed = false;
const background = [];

function record(name, t0, ok, why) {
  results.push(`${ok ? "ok  " : "FAIL"}  ${name}  (${((Date.now() - t0) / 1000).toFixed(1)} s${why})`);
  if (!ok) failed = true;
}

/**
 * Starts a step with its output going to a file (the loop below blocks in spawnSync, so a
 * pipe would fill and stall it), printed as one block when the step has ended.
 */
function startInBackground(name, cmd, args, limit) {
  console.error(`\n=== ${name} (started in the background) ===`);
  const t0 = Date.now();
  const dir = mkdtempSync(join(tmpdir(), "sremote-test-all-"));
  const log = join(dir, "output.log");
  const fd = openSync(log, "w");
  const child = spawn(cmd, args, { cwd: root, env: process.env, stdio: ["ignore", fd, fd] });
  closeSync(fd);
  const timer = setTimeout(() => child.kill("SIGTERM"), limit);
  return new Promise((resolve) => {
    child.on("close", (status, signal) => {
      clearTimeout(timer);
      console.error(`\n=== ${name} (background, ended) ===`);
      process.stderr.write(readFileSync(log));
      rmSync(dir, { recursive: true, force: true });
      const timedOut = Date.now() - t0 >= limit;
      record(name, t0, status === 0, timedOut ? `, killed after ${limit / MIN} min` : signal ? `, ${signal}` : "");
      resolve();
    });
  });
}

for (const [name, cmd, args, limit, how] of steps) {
  if (how?.background) {
    background.push(startInBackground(name, cmd, args, limit));
    continue;
  }
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
  record(name, t0, ok, why);
  if (!ok && name === "install dependencies") break;
}
await Promise.all(background);
console.error(`\n=== summary ===\n${results.join("\n")}`);
process.exit(failed ? 1 : 0);
