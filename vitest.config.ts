import { defineConfig } from "vitest/config";

// Workspace packages export their TypeScript sources under the "@sremote/source"
// condition, so tests (and tsx) run from source with no build step.
export default defineConfig({
  resolve: { conditions: ["@sremote/source"] },
  ssr: { resolve: { conditions: ["@sremote/source"] } },
  test: {
    projects: ["packages/*", "remote", "examples/qdo-client"],
    // The default reporter, plus failures printed as they happen, a deadline per test file
    // and the reasons of skipped tests (scripts/vitest-log-reporter.ts).
    reporters: ["default", "./scripts/vitest-log-reporter.ts"],
  },
});
