import { defineProject } from "vitest/config";

export default defineProject({
  resolve: { conditions: ["@sremote/source"] },
  ssr: { resolve: { conditions: ["@sremote/source"] } },
  test: { name: "example-qdo-client", include: ["test/**/*.test.ts"], testTimeout: 120_000, hookTimeout: 60_000 },
});
