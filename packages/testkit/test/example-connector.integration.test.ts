import { readFileSync } from "node:fs";
import { expect, it, vi } from "vitest";
import { describeConnectorConformance, describeUnless } from "../src/index.js";
import { type AccountLease, isRoot, leaseAccount } from "../src/sshd/users.js";
import { runAsConnector } from "./example-connector/run-as-connector.js";

// Real processes on a shared machine: an explicit budget per test and hook.
vi.setConfig({ testTimeout: 60_000, hookTimeout: 60_000 });

// The connector written in docs/writing-a-connector.md must pass the conformance suite as
// it stands there. It runs everything as a dedicated local account through runuser, which
// only root may do; the account is leased like the sshd fixture's (created when missing,
// fresh home, processes ended on release).
const USER = "sremote-runas";

describeUnless(isRoot() ? null : "runs commands as another account through runuser, which needs root")(
  "example connector from docs/writing-a-connector.md",
  () => {
    describeConnectorConformance("runas", async () => {
      const lease: AccountLease = await leaseAccount(USER, false);
      const { home, user } = lease.account;
      return { connector: runAsConnector({ user, home }), scratchDir: home, cleanup: () => lease.release() };
    });
  },
);

it("docs/writing-a-connector.md shows this connector verbatim", () => {
  const doc = readFileSync(new URL("../../../docs/writing-a-connector.md", import.meta.url), "utf8");
  const source = readFileSync(new URL("./example-connector/run-as-connector.ts", import.meta.url), "utf8");
  expect(doc).toContain(`\`\`\`ts\n${source}\`\`\``);
  expect(source.split("\n").length).toBeLessThan(150);
});
