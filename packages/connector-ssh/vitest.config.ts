import { fileURLToPath } from "node:url";
import { defineProject } from "vitest/config";

export default defineProject({
  resolve: { conditions: ["@sremote/source"] },
  ssr: { resolve: { conditions: ["@sremote/source"] } },
  test: {
    name: "connector-ssh",
    include: ["test/**/*.test.ts"],
    // One private sshd for the run; its facts arrive through inject("sremoteSshd").
    globalSetup: [fileURLToPath(new URL("../testkit/src/sshd/global-setup.ts", import.meta.url))],
    testTimeout: 60_000,
    hookTimeout: 60_000,
  },
});
