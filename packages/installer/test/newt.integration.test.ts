import { newtConnector } from "@sremote/connector-newt";
import { DEFAULT_NEWT_USER, startNewtDouble } from "@sremote/testkit/newt-double";
import { vi } from "vitest";
import { restInstallSuite } from "./rest-install-suite.js";

// Real processes and servers on a shared machine: an explicit budget per test and hook,
// never vitest's 5 s default (a slow python3 start-up must not fail the suite).
vi.setConfig({ testTimeout: 60_000, hookTimeout: 60_000 });

// The NEWT double: a real HTTP server, real files and real processes, no streams. The
// installer works through exec/putFile alone, and the client through the file carrier.
restInstallSuite("install through NEWT", "newt", async () => {
  const double = await startNewtDouble();
  return {
    home: double.homeDir(DEFAULT_NEWT_USER.username),
    connector: () =>
      newtConnector({
        machine: "cori",
        baseUrl: double.baseUrl,
        credentials: { username: DEFAULT_NEWT_USER.username, password: DEFAULT_NEWT_USER.password },
      }),
    close: () => double.close(),
  };
});
