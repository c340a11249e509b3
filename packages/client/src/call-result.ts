/** A result message turned into what `client.call()` returns, or the error it throws. */
import { RemoteExecError, type RemoteExecKind } from "@sremote/core";
import type { ResultMessage } from "@sremote/protocol";
import type { CallResult } from "./options.js";
import { checkRequirements, type Requirement } from "./requirements.js";

/**
 * The {@link CallResult} of a successful result message.
 *
 * @throws RemoteExecError when the agent reported a failure; RemoteModulesError when a
 *   registered requirement is not met.
 */
export function toCallResult<T>(
  call: string,
  result: ResultMessage,
  carrier: "session" | "file",
  started: number,
  requirements: readonly Requirement[],
): CallResult<T> {
  if (!result.ok) throw execError(call, result);
  const modules = result.modules ?? {};
  if (requirements.length > 0 && result.modules) checkRequirements([...requirements], modules);
  return {
    value: result.value as T,
    stdout: result.stdout ?? "",
    stderr: result.stderr ?? "",
    truncated: result.truncated === true,
    modules,
    durationMs: performance.now() - started,
    remoteDurationMs: result.durationNs === undefined ? null : Number(result.durationNs) / 1e6,
    carrier,
  };
}

/** The error of a failed result message. */
export function execError(call: string, result: ResultMessage): RemoteExecError {
  const e = result.error;
  return new RemoteExecError({
    kind: (e?.kind ?? "internal") as RemoteExecKind,
    type: e?.type ?? "Error",
    message: e?.message ?? "the agent reported a failure without details",
    traceback: e?.traceback,
    stdout: result.stdout,
    stderr: result.stderr,
    truncated: result.truncated === true,
    call,
  });
}
