/**
 * Network failures a REST connector sees from Node's HTTP stack (and undici's): which ones
 * prove the request never reached the server, so that repeating it cannot run anything twice.
 */

/** Error codes of a connection that was never made (refused, no such host, connect timeout…). */
export const NEVER_SENT_CODES: ReadonlySet<string> = new Set([
  "ECONNREFUSED",
  "ENOTFOUND",
  "EAI_AGAIN",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "EADDRNOTAVAIL",
  "UND_ERR_CONNECT_TIMEOUT",
]);

/**
 * The system error code of `err` (`ECONNREFUSED`…), looking through `cause` and
 * `AggregateError.errors` a few levels deep, as undici and happy-eyeballs wrap them.
 */
export function networkErrorCode(err: unknown): string | undefined {
  let e: unknown = err;
  for (let i = 0; i < 4 && e; i++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === "string" && code !== "UND_ERR") return code;
    e = (e as { errors?: unknown[] }).errors?.[0] ?? (e as { cause?: unknown }).cause;
  }
  return undefined;
}

/** True when `err` shows the request never reached the server (safe to send again). */
export function neverSent(err: unknown): boolean {
  const code = networkErrorCode(err);
  return code !== undefined && NEVER_SENT_CODES.has(code);
}
