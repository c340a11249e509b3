import { execFile } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import type { SshConnectorOptions } from "../options.js";

/** What `auto` chose, and why (for logs and `status()`). */
export interface AutoDecision {
  transport: "ssh2" | "openssh";
  reason: string;
}

/** Parses `ssh -G` output: lower-case keys, every value of repeated keys. */
export function parseSshG(text: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const line of text.split("\n")) {
    const m = /^(\S+)\s+(.*)$/.exec(line.trim());
    if (!m) continue;
    const key = (m[1] as string).toLowerCase();
    out.set(key, [...(out.get(key) ?? []), m[2] as string]);
  }
  return out;
}

function expandHome(path: string): string {
  return path === "~" || path.startsWith("~/") ? join(homedir(), path.slice(1)) : path;
}

/**
 * Decides from the effective client config (`ssh -G`, which resolves `Match` and `Include`
 * as OpenSSH does) whether the host needs the system ssh: a certificate (`CertificateFile`,
 * or `<identity>-cert.pub` beside a key), GSSAPI, a `ProxyCommand`, or a config file that
 * uses `Match exec`/`Include` (ssh2's config reader evaluates neither). Pure; exported for tests.
 */
export function decideFromConfig(
  effective: Map<string, string[]>,
  options: SshConnectorOptions,
  configText: string | undefined,
): AutoDecision {
  const first = (k: string) => effective.get(k)?.[0];
  const certs = (effective.get("certificatefile") ?? []).filter((c) => c.toLowerCase() !== "none");
  if (certs.length > 0) return { transport: "openssh", reason: `CertificateFile ${certs[0]}` };
  const identities = [
    ...(options.privateKeyPath ? [options.privateKeyPath] : []),
    ...(effective.get("identityfile") ?? []),
  ];
  for (const id of identities) {
    const cert = `${expandHome(id)}-cert.pub`;
    if (existsSync(cert)) return { transport: "openssh", reason: `certificate ${cert}` };
  }
  if (first("gssapiauthentication") === "yes") return { transport: "openssh", reason: "GSSAPIAuthentication yes" };
  const proxy = first("proxycommand");
  if (proxy && proxy.toLowerCase() !== "none") return { transport: "openssh", reason: `ProxyCommand ${proxy}` };
  if (configText && /^\s*Match\b[^\n]*\bexec\b/im.test(configText)) {
    return { transport: "openssh", reason: "the ssh config uses Match exec" };
  }
  if (configText && /^\s*Include\s/im.test(configText)) {
    return { transport: "openssh", reason: "the ssh config uses Include" };
  }
  return { transport: "ssh2", reason: "nothing in the ssh config needs the system ssh" };
}

/** Runs `ssh -G` for the connector's destination; undefined when ssh is missing or fails. */
export function effectiveConfig(
  sshPath: string,
  options: SshConnectorOptions,
): Promise<Map<string, string[]> | undefined> {
  const args = ["-G"];
  if (options.sshConfigPath === false) args.push("-F", "/dev/null");
  else if (options.sshConfigPath !== undefined) args.push("-F", options.sshConfigPath);
  if (options.port !== undefined) args.push("-p", String(options.port));
  if (options.username !== undefined) args.push("-l", options.username);
  if (options.privateKeyPath !== undefined) args.push("-i", options.privateKeyPath);
  if (options.proxyJump !== undefined) args.push("-o", `ProxyJump=${options.proxyJump}`);
  args.push("--", options.host);
  return new Promise((resolve) => {
    const child = execFile(sshPath, args, { timeout: 10_000 }, (err, stdout) =>
      resolve(err ? undefined : parseSshG(stdout)),
    );
    child.on("error", () => resolve(undefined));
  });
}

/** The config file `auto` inspects for `Match exec`/`Include` (the one ssh would read). */
export function configText(options: SshConnectorOptions): string | undefined {
  if (options.sshConfigPath === false) return undefined;
  const path = options.sshConfigPath ?? join(homedir(), ".ssh", "config");
  try {
    return readFileSync(path, "utf8");
  } catch {
    return undefined;
  }
}
