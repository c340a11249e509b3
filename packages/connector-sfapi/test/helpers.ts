import type { SfapiDouble, SfapiRequestLogEntry } from "@sremote/testkit/sfapi-double";
import { type SfapiConnector, type SfapiConnectorOptions, sfapiConnector } from "../src/index.js";

export const MACHINE = "perlmutter";

/** Connectors made by a test (a red client's PEM key by default, fast retries), closed after it. */
export function connectorFactory(getDouble: () => SfapiDouble) {
  const made: SfapiConnector[] = [];
  const make = (extra: Partial<SfapiConnectorOptions> = {}): SfapiConnector => {
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
    made.push(c);
    return c;
  };
  const closeAll = async () => {
    await Promise.all(made.splice(0).map((c) => c.close()));
  };
  return { make, closeAll };
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
