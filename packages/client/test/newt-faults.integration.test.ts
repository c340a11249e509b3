import { agentDir } from "@sremote/agent";
import { newtConnector } from "@sremote/connector-newt";
import { DEFAULT_NEWT_USER, type NewtDouble, startNewtDouble } from "@sremote/testkit/newt-double";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { RemoteClient } from "../src/index.js";
import { fixturesDir, python } from "./helpers.js";

// Real processes and servers on a shared machine: an explicit budget per test and hook,
// never vitest's 5 s default (a slow python3 start-up must not fail the suite).
vi.setConfig({ testTimeout: 60_000, hookTimeout: 60_000 });

// The file carrier over a flaky REST gateway (the NEWT double: real HTTP, real processes).
describe("the file carrier over NEWT when the response download fails", () => {
  let double: NewtDouble;
  let client: RemoteClient;

  beforeAll(async () => {
    double = await startNewtDouble();
    const home = double.homeDir(DEFAULT_NEWT_USER.username);
    client = new RemoteClient({
      connector: newtConnector({
        machine: "cori",
        baseUrl: double.baseUrl,
        credentials: { username: DEFAULT_NEWT_USER.username, password: DEFAULT_NEWT_USER.password },
      }),
      python,
      mode: "file",
      autoInstallAgent: false,
      layout: { endpointDir: agentDir(), tmpDir: `${home}/.sremote/tmp`, workDir: fixturesDir },
    });
    expect((await client.call("math", "sqrt", [4])).value).toBe(2);
  });
  afterAll(async () => {
    await client?.close();
    await double?.close();
  });

  it("is not retryable: the function already ran, and it ran once", async () => {
    // Every download of a .resp file is reset, more often than any retry budget.
    double.inject("GET /file", {
      kind: "reset",
      times: 50,
      match: (r) => r.path.endsWith(".resp"),
    });
    const marker = `${double.homeDir(DEFAULT_NEWT_USER.username)}/ran-${Date.now()}`;
    // A response over the file carrier's inline limit (1 MiB) comes through the response file.
    const err = await client
      .call("subprocess", "check_output", [["sh", "-c", 'echo ran >> "$0"; head -c 2000000 /dev/zero', marker]])
      .catch((e: unknown) => e);
    double.clearFaults();
    expect(err).toMatchObject({ retryable: false });
    expect(String((err as Error).message)).toMatch(/after the function ran: not retryable/);
    // The function ran exactly once.
    const lines = (await client.call<string>("sremote_testmod", "read_text", [marker])).value;
    expect(lines).toBe("ran\n");
  });
});
