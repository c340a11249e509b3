import { readdir } from "node:fs/promises";
import { join } from "node:path";
import type { NewtDouble, NewtRequestLogEntry } from "@sremote/testkit/newt-double";
import { onTestFinished } from "vitest";
import { type NewtConnector, type NewtConnectorOptions, newtConnector } from "../src/index.js";

export const USER = "jdoe";
export const PASSWORD = "newt-double-password";

/**
 * Makes connectors to the double (fast retries). Each is closed when the test that made it
 * has finished — vitest's own per-test cleanup, after the afterEach hooks — so no test
 * file keeps a list of them.
 */
export function connectorFactory(getDouble: () => NewtDouble) {
  return (extra: Partial<NewtConnectorOptions> = {}): NewtConnector => {
    const c = newtConnector({
      machine: "cori",
      baseUrl: getDouble().baseUrl,
      credentials: { username: USER, password: PASSWORD },
      retry: { baseDelayMs: 5, maxDelayMs: 20 },
      ...extra,
    });
    onTestFinished(() => c.close());
    return c;
  };
}

/** Log entries after `from` (an index into the log). */
export function since(double: NewtDouble, from: number): NewtRequestLogEntry[] {
  return double.requestLog.slice(from);
}

/** Commands the double really started whose command line contains `token`. */
export function commandsRun(double: NewtDouble, token: string): NewtRequestLogEntry[] {
  return double.requestLog.filter((e) => e.command !== undefined && (e.form.executable ?? "").includes(token));
}

/** Every file below `dir`, recursively (relative names). */
export async function filesUnder(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (d: string, prefix: string) => {
    for (const e of await readdir(d, { withFileTypes: true }).catch(() => [])) {
      if (e.isDirectory()) await walk(join(d, e.name), `${prefix}${e.name}/`);
      else out.push(`${prefix}${e.name}`);
    }
  };
  await walk(dir, "");
  return out.sort();
}

export function token(): string {
  return `tok${Math.random().toString(36).slice(2, 10)}`;
}
