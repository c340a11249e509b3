import { ConnectorError } from "@sremote/core";

/** The last lines of ssh's stderr, for messages (never holds secrets: answers go through askpass). */
export function tail(text: string, max = 600): string {
  const t = text.trim();
  return t.length <= max ? t : `…${t.slice(t.length - max)}`;
}

/**
 * Maps a failed `ssh` master (exit 255 before its control socket appeared) to a connector
 * error, from the messages OpenSSH prints. Nothing ran on the server in every case.
 */
export function masterError(
  stderr: string,
  label: string,
  extra: { authHint?: string | undefined } = {},
): ConnectorError {
  const text = tail(stderr);
  const details = { host: label, ssh: text };
  if (/REMOTE HOST IDENTIFICATION HAS CHANGED|Host key for .* has changed/i.test(stderr)) {
    return new ConnectorError(
      "HOST_KEY_MISMATCH",
      "ssh",
      `HOST KEY CHANGED for ${label}: the system ssh refused to connect. Someone may be intercepting the connection, or the host was reinstalled. ssh said: ${text}`,
      { details },
    );
  }
  if (
    /Host key verification failed|No (?:ED25519|ECDSA|RSA|\S+) host key is known|host key is not known/i.test(stderr)
  ) {
    return new ConnectorError(
      "HOST_KEY_UNKNOWN",
      "ssh",
      `host key of ${label} is not known to the system ssh (known_hosts): check the fingerprint with the site, then add it (or connect once with hostKeyPolicy "accept-new"). ssh said: ${text}`,
      { details },
    );
  }
  if (
    /Permission denied|Too many authentication failures|Authentication failed|no more authentication methods/i.test(
      stderr,
    )
  ) {
    return new ConnectorError(
      "AUTH_FAILED",
      "ssh",
      `authentication failed for ${label} (system ssh): ${text}${extra.authHint ? `; ${extra.authHint}` : ""}`,
      { details },
    );
  }
  if (/timed out/i.test(stderr)) {
    return new ConnectorError("CONNECT_TIMEOUT", "ssh", `connecting to ${label} timed out (system ssh): ${text}`, {
      retryable: true,
      details,
    });
  }
  return new ConnectorError(
    "CONNECT_FAILED",
    "ssh",
    `system ssh could not connect to ${label}: ${text || "no message"}`,
    {
      retryable: true,
      details,
    },
  );
}

/** True when a multiplexed session's stderr says the master (or its socket) is gone. */
export function isMuxFailure(stderr: string): boolean {
  return /mux_client|control socket|ControlSocket|master.*(?:closed|refused)|Broken pipe|Connection refused|kex_exchange_identification|Connection closed by/i.test(
    stderr,
  );
}

/** True when the master refused to open a session channel (the server's MaxSessions). */
export function isSessionRefusal(stderr: string): boolean {
  return /open failed|refused by peer|administratively prohibited|session request failed/i.test(stderr);
}
