import { DEFAULT_NEWT_USER, type NewtDouble, startNewtDouble } from "@sremote/testkit/newt-double";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import type { RemoteClient } from "../src/index.js";
import { newtDoubleClient } from "./targets.js";

// Real processes and servers on a shared machine: an explicit budget per test and hook,
// never vitest's 5 s default (a slow python3 start-up must not fail the suite).
vi.setConfig({ testTimeout: 60_000, hookTimeout: 60_000 });

// The file carrier over a flaky REST gateway (the NEWT double: real HTTP, real processes).
describe("the file carrier over NEWT when the response download fails", () => {
  let double: NewtDouble;
  let client: RemoteClient;

  beforeAll(async () => {
    double = await startNewtDouble();
    ({ client } = newtDoubleClient(double));
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

  it("prints no MaxListenersExceededWarning for many concurrent calls on one client", async () => {
    // Each file-carrier operation listens on the carrier's close signal; 16 at once used to
    // exceed Node's default of 10 listeners and print a warning during ordinary use.
    const warnings: Error[] = [];
    const onWarning = (w: Error) => warnings.push(w);
    process.on("warning", onWarning);
    try {
      const values = await Promise.all(Array.from({ length: 16 }, (_, i) => client.call("math", "sqrt", [i * i])));
      expect(values.map((r) => r.value)).toEqual(Array.from({ length: 16 }, (_, i) => i));
      await new Promise((r) => setImmediate(r));
    } finally {
      process.off("warning", onWarning);
    }
    expect(warnings.filter((w) => w.name === "MaxListenersExceededWarning").map((w) => w.message)).toEqual([]);
  });
});
