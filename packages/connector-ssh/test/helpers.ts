import { describeUnless } from "@sremote/testkit";
import { type SshdFacts, sshConnectorOptions, sshdMissing } from "@sremote/testkit/sshd";
import { inject } from "vitest";
import { type SshConnectorOptions, sshConnector } from "../src/index.js";

/** `describe` for suites that need OpenSSH: skipped, with the reason, where it is not installed. */
export const describeSsh = describeUnless(sshdMissing());

/** The private sshd the global setup started. */
export function sshd(): SshdFacts {
  const facts = inject("sremoteSshd");
  if (!facts) throw new Error("no sshd: run these tests through this package's vitest config (globalSetup)");
  return facts;
}

/** Options that reach `facts`' server with its key, known_hosts only, no ssh config, no agent. */
export function fixtureOptions(facts: SshdFacts, extra: Partial<SshConnectorOptions> = {}): SshConnectorOptions {
  return { ...sshConnectorOptions(facts), ...extra };
}

/** A connector to `facts`' server (default: the global one). */
export function connectorFor(facts: SshdFacts = sshd(), extra: Partial<SshConnectorOptions> = {}) {
  return sshConnector(fixtureOptions(facts, extra));
}

/** A logger that keeps every line, to check that no secret is ever logged. */
export function recordingLogger() {
  const lines: string[] = [];
  const log = (level: string) => (message: string, fields?: Record<string, unknown>) => {
    lines.push(`${level} ${message} ${fields ? JSON.stringify(fields) : ""}`);
  };
  return { lines, logger: { debug: log("debug"), info: log("info"), warn: log("warn") } };
}
