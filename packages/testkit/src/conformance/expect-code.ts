import type { SremoteErrorCode } from "@sremote/core";
import { expect } from "vitest";

/**
 * Expects `promise` to reject with an SRemote error whose `code` is one of `codes` (matched by
 * shape, as errors may come from another copy of `@sremote/core`). Returns the error.
 */
export async function expectCode(
  promise: Promise<unknown>,
  ...codes: [SremoteErrorCode, ...SremoteErrorCode[]]
): Promise<Error & { code: string }> {
  let outcome: { resolved: unknown } | { rejected: unknown };
  try {
    outcome = { resolved: await promise };
  } catch (err) {
    outcome = { rejected: err };
  }
  if ("resolved" in outcome) {
    expect.fail(`expected a rejection with code ${codes.join(" or ")}, but it resolved`);
  }
  const err = outcome.rejected as { code?: unknown; message?: unknown } | null;
  const code = typeof err === "object" && err !== null ? err.code : undefined;
  if (!codes.includes(code as SremoteErrorCode)) {
    expect.fail(
      `expected code ${codes.join(" or ")}, got ${String(code)}: ${String((err as { message?: unknown })?.message ?? err)}`,
    );
  }
  return err as Error & { code: string };
}
