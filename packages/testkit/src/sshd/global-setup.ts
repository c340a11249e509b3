import type { TestProject } from "vitest/node";
import { sshdMissing, startSshd } from "./fixture.js";
import "./provided.js";

/**
 * vitest `globalSetup` module: starts one private sshd for the whole run and provides its
 * facts as `inject("sremoteSshd")` (as root, logging in as `sremote-test-shared`); stops it (and everything it started) at the end.
 * Use in a project's config: `test: { globalSetup: ["<path to this file>"] }`. Where OpenSSH
 * is missing it starts nothing (the suites that need it skip with `describeUnless(sshdMissing())`).
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  if (sshdMissing()) return async () => undefined;
  // Its own account: test files running in parallel workers use theirs (defaultTestUser), so
  // no file's "nothing left running" check sees the shared server's processes.
  const sshd = await startSshd(process.getuid?.() === 0 ? { user: "sremote-test-shared" } : {});
  project.provide("sremoteSshd", sshd.facts());
  return () => sshd.stop();
}
