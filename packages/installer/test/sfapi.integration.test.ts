import { sfapiConnector } from "@sremote/connector-sfapi";
import { startSfapiDouble } from "@sremote/testkit/sfapi-double";
import { vi } from "vitest";
import { restInstallSuite } from "./rest-install-suite.js";

// Real processes and servers on a shared machine: an explicit budget per test and hook,
// never vitest's 5 s default (a slow python3 start-up must not fail the suite).
vi.setConfig({ testTimeout: 60_000, hookTimeout: 60_000 });

// The SFAPI double: a real HTTP server (OAuth2 client assertions, commands as polled tasks),
// real files and real processes, no streams. The installer works through exec/putFile
// alone, and the client through the file carrier (issue 13: the installer over SFAPI).
restInstallSuite("install through the Superfacility API", "sfapi", async () => {
  const double = await startSfapiDouble({ machines: ["perlmutter"] });
  const keyFile = await double.writeKeyFile(double.client().clientId, "pem");
  return {
    home: double.homeDir(),
    connector: () =>
      sfapiConnector({ machine: "perlmutter", apiUrl: double.baseUrl, tokenUrl: double.tokenUrl, keyFile }),
    close: () => double.close(),
  };
});
