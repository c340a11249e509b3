import { describe } from "vitest";

/** A `describe` that takes a name and a body (what {@link describeUnless} returns). */
export type SuiteFunction = (name: string, body: () => void) => void;

/**
 * `describe`, or — when `missing` says what this machine lacks — a skipped suite whose name
 * ends with the reason, so the test report says why it did not run:
 *
 * ```ts
 * describeUnless(sshdMissing())("over a real sshd", () => { … });
 * ```
 *
 * Meant for prerequisites the suite cannot provide itself (a system package, root). Under
 * `SREMOTE_TEST_STRICT=1` (CI) the prerequisites step fails first, so nothing is skipped
 * there silently.
 */
export function describeUnless(missing: string | null | undefined): SuiteFunction {
  if (!missing) return (name, body) => describe(name, body);
  return (name, body) => describe.skip(`${name} — skipped: ${missing}`, body);
}
