import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { describeUnless } from "@sremote/testkit";
import { expect, it, vi } from "vitest";

vi.setConfig({ testTimeout: 60_000, hookTimeout: 60_000 });

const ROOT = fileURLToPath(new URL("../../../", import.meta.url));
const CHILD = fileURLToPath(new URL("./map-memory-child.ts", import.meta.url));

/**
 * Peak RSS of the client for 10,000 and 100,000 `map` inputs on local:, each run in a fresh
 * process. Opt-in (about a minute on a 2-core machine): SREMOTE_MAP_RSS=1.
 */
describeUnless(process.env.SREMOTE_MAP_RSS === "1" ? undefined : "opt-in: set SREMOTE_MAP_RSS=1")(
  "map memory is flat in the input count",
  () => {
    it("peak RSS at 100k inputs stays near the 10k figure", { timeout: 600_000 }, async () => {
      const run = async (n: number) => {
        const { stdout } = await promisify(execFile)(
          `${ROOT}node_modules/.bin/tsx`,
          ["--conditions=@sremote/source", CHILD, String(n)],
          { cwd: ROOT, timeout: 540_000 },
        );
        return JSON.parse(stdout.trim().split("\n").at(-1) as string) as {
          n: number;
          answered: number;
          wrong: number;
          maxRssMiB: number;
          callsPerSecond: number;
        };
      };
      const small = await run(10_000);
      const large = await run(100_000);
      console.log(`map peak RSS: ${JSON.stringify(small)} vs ${JSON.stringify(large)}`);
      expect(small).toMatchObject({ answered: 10_000, wrong: 0 });
      expect(large).toMatchObject({ answered: 100_000, wrong: 0 });
      // Loose: ten times the inputs may not cost more than a quarter more memory (+16 MiB of GC slack).
      expect(large.maxRssMiB).toBeLessThan(small.maxRssMiB * 1.25 + 16);
    });
  },
);
