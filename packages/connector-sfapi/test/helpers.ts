import type { SfapiDouble, SfapiRequestLogEntry } from "@sremote/testkit/sfapi-double";
import { onTestFinished } from "vitest";
import { type SfapiConnector, type SfapiConnectorOptions, sfapiConnector } from "../src/index.js";

export const MACHINE = "perlmutter";

/**
 * Makes connectors to the double (a red client's PEM key by default, fast retries). Each is
 * closed when the test that made it has finished — vitest's own per-test cleanup, after
 * the afterEach hooks — so no test file keeps a list of them.
 */
export function connectorFactory(getDouble: () => SfapiDouble) {
  return (extra: Partial<SfapiConnectorOptions> = {}): SfapiConnector => {
    const d = getDouble();
    const auth =
      extra.keyFile !== undefined || extra.accessToken !== undefined || extra.clientId !== undefined
        ? {}
        : { clientId: d.client().clientId, privateKey: d.client().privateKeyPem as string };
    const c = sfapiConnector({
      machine: MACHINE,
      apiUrl: d.baseUrl,
      tokenUrl: d.tokenUrl,
      retry: { baseDelayMs: 5, maxDelayMs: 20 },
      ...auth,
      ...extra,
    });
    onTestFinished(() => c.close());
    return c;
  };
}

/** Log entries after `from` (an index into the log). */
export function since(double: SfapiDouble, from: number): SfapiRequestLogEntry[] {
  return double.requestLog.slice(from);
}

/** Command tasks whose command line contains `token`. */
export function tasksWith(double: SfapiDouble, token: string) {
  return double.tasks.filter((t) => t.executable.includes(token));
}

export function token(): string {
  return `tok${Math.random().toString(36).slice(2, 10)}`;
}
