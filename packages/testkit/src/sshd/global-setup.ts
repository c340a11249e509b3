import type { TestProject } from "vitest/node";
import { sshdMissing, startSshd } from "./fixture.js";
import "./provided.js";

/**
 * vitest `globalSetup` module: starts one private sshd for the whole run and provides its
 * facts as `inject("sremoteSshd")`; stops it (and everything it started) at the end.
 * Use in a project's config: `test: { globalSetup: ["<path to this file>"] }`. Where OpenSSH
 * is missing it starts nothing (the suites that need it skip with `describeUnless(sshdMissing())`).
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  if (sshdMissing()) return async () => undefined;
  const sshd = await startSshd();
  project.provide("sremoteSshd", sshd.facts());
  return () => sshd.stop();
}
