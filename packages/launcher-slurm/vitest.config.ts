import { defineProject } from "vitest/config";

export default defineProject({
  resolve: { conditions: ["@sremote/source"] },
  ssr: { resolve: { conditions: ["@sremote/source"] } },
  test: { name: "launcher-slurm", include: ["test/**/*.test.ts"] },
});
