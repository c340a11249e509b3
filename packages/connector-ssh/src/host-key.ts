import { ConnectorError } from "@sremote/core";
import {
  appendKnownHost,
  checkHostKey,
  formatKnownHostsLine,
  type KnownHostEntry,
  keyTypeOf,
  knownHostName,
  sha256Fingerprint,
} from "./known-hosts.js";
import type { HostKeyPolicy, SshLogger } from "./options.js";

/** What a host key check needs to know. */
export interface HostKeyContext {
  /** known_hosts lookup name parts (`HostKeyAlias` or host name, and port). */
  hostKeyName: string;
  port: number;
  /** How the user named the host, for messages. */
  display: string;
  policy: HostKeyPolicy;
  entries: readonly KnownHostEntry[];
  /** Files that were read (for messages) and the one `accept-new` writes to. */
  files: readonly string[];
  writeFile: string;
  hash: boolean;
  logger?: SshLogger | undefined;
}

/** The outcome of one check: accepted, or the error that refuses the connection. */
export type HostKeyDecision = { ok: true; fingerprint: string } | { ok: false; error: ConnectorError };

function typeLabel(type: string): string {
  if (type === "ssh-ed25519") return "ED25519";
  if (type.startsWith("ecdsa-")) return "ECDSA";
  if (type === "ssh-rsa") return "RSA";
  return type;
}

/**
 * Decides whether to trust the key a server presented, per the policy. Runs inside the
 * handshake, before authentication, so a refused key means nothing ran on the server.
 * Under `accept-new` an unknown key is appended to known_hosts before it is accepted.
 */
export async function decideHostKey(ctx: HostKeyContext, blob: Buffer): Promise<HostKeyDecision> {
  const name = knownHostName(ctx.hostKeyName, ctx.port);
  const fingerprint = sha256Fingerprint(blob);
  const type = keyTypeOf(blob);
  const line = formatKnownHostsLine(name, blob);
  const details = { host: ctx.display, knownHostsName: name, fingerprint, keyType: type, knownHostsLine: line };
  if (ctx.policy === "off") {
    ctx.logger?.warn(
      `ssh: host key checking is OFF for ${ctx.display}: accepting ${typeLabel(type)} key ${fingerprint} unverified`,
      { host: ctx.display, fingerprint },
    );
    return { ok: true, fingerprint };
  }
  const verdict = checkHostKey(ctx.entries, name, blob);
  switch (verdict.status) {
    case "known":
      return { ok: true, fingerprint };
    case "revoked":
      return {
        ok: false,
        error: new ConnectorError(
          "HOST_KEY_MISMATCH",
          "ssh",
          `host key ${fingerprint} of ${ctx.display} is marked @revoked in ${verdict.entry.file}:${verdict.entry.line}; refusing to connect`,
          { details: { ...details, file: verdict.entry.file, line: verdict.entry.line } },
        ),
      };
    case "changed": {
      const old = verdict.entries[0] as KnownHostEntry;
      const oldFp = sha256Fingerprint(Buffer.from(old.key, "base64"));
      return {
        ok: false,
        error: new ConnectorError(
          "HOST_KEY_MISMATCH",
          "ssh",
          `HOST KEY CHANGED for ${ctx.display}: the server presented ${typeLabel(type)} key ${fingerprint}, ` +
            `but ${old.file}:${old.line} holds ${oldFp}. Someone may be intercepting the connection, or the host ` +
            `was reinstalled. Refusing to connect. If the new key is genuine (ask the site), remove line ${old.line} ` +
            `of ${old.file} and add:\n${line}`,
          { details: { ...details, file: old.file, line: old.line, knownFingerprint: oldFp } },
        ),
      };
    }
    case "unknown": {
      if (ctx.policy === "accept-new") {
        await appendKnownHost(ctx.writeFile, formatKnownHostsLine(name, blob, ctx.hash));
        ctx.logger?.warn(
          `ssh: permanently added ${typeLabel(type)} key ${fingerprint} for ${name} to ${ctx.writeFile}`,
          { host: ctx.display, fingerprint, file: ctx.writeFile },
        );
        return { ok: true, fingerprint };
      }
      const others =
        verdict.otherTypes.length > 0 ? ` (known_hosts has only ${verdict.otherTypes.join(", ")} keys for it)` : "";
      return {
        ok: false,
        error: new ConnectorError(
          "HOST_KEY_UNKNOWN",
          "ssh",
          `host key of ${ctx.display} is not known${others}: the server presented ${typeLabel(type)} key ${fingerprint}. ` +
            `Check this fingerprint with the site, then add this line to ${ctx.writeFile}:\n${line}\n` +
            `(or connect once with hostKeyPolicy "accept-new"). Files read: ${ctx.files.join(", ")}`,
          { details: { ...details, files: [...ctx.files] } },
        ),
      };
    }
  }
}
