import { ConnectorError, type ConnectorErrorCode } from "@sremote/core";

/** An `sfapi`-prefixed {@link ConnectorError}. */
export function fail(
  code: ConnectorErrorCode,
  message: string,
  options: { retryable?: boolean; cause?: unknown; details?: Record<string, unknown> } = {},
): ConnectorError {
  return new ConnectorError(code, "sfapi", message, options);
}

/** One line of at most 300 characters, for messages. */
export function oneLine(text: string): string {
  const t = text.trim().replace(/\s+/g, " ");
  return t.length > 300 ? `${t.slice(0, 300)}…` : t;
}
