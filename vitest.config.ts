import { availableParallelism } from "node:os";
import { defineConfig } from "vitest/config";

// Most test files wait on real processes, servers and Python start-up, not on the CPU: run
// at least three files at once even on a 2-core machine (measured: vitest 735 s → 450 s on
// 2 cores). Files in parallel never share a test account (testkit's defaultTestUser).
// SREMOTE_TEST_WORKERS overrides (1 runs the files one at a time).
const workers = Number(process.env.SREMOTE_TEST_WORKERS ?? Math.min(6, Math.max(3, availableParallelism())));

// Workspace packages export their TypeScript sources under the "@sremote/source"
// condition, so tests (and tsx) run from source with no build step.
export default defineConfig({
  resolve: { conditions: ["@sremote/source"] },
  ssr: { resolve: { conditions: ["@sremote/source"] } },
  test: {
    projects: ["packages/*", "remote", "examples/qdo-client"],
    maxWorkers: workers,
    // The default reporter, plus failures printed as they happen, a deadline per test file
    // and the reasons of skipped tests (scripts/vitest-log-reporter.ts).
    reporters: ["default", "./scripts/vitest-log-reporter.ts"],
  },
});
