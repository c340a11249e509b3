// ssh2 ships no types: this package's own declarations, referenced so that programs
// compiling these sources from another package (the @sremote/source condition) see them.
import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { ConnectorError, UsageError } from "@sremote/core";
import ssh2, { type AuthHandlerMiddleware as AuthHandler, type AnyAuthMethod as AuthMethodAttempt } from "ssh2";
import type { ResolvedHost } from "./config.js";
import type { KeyboardInteractivePrompt, SshConnectorOptions, SshLogger } from "./options.js";

/** One way of authenticating, described without its secret. */
export interface AuthStep {
  /** What the error message lists: `publickey (/home/u/.ssh/id_ed25519)`, `password`… */
  label: string;
  /** The SSH method name the server must allow. */
  method: "publickey" | "password" | "keyboard-interactive";
  attempt: AuthMethodAttempt;
}

/** Authentication steps for one host, tried in OpenSSH's order, and what was tried. */
export interface AuthPlan {
  steps: AuthStep[];
  handler: AuthHandler;
  /** Labels of the steps actually offered to the server. */
  tried: string[];
  /** Methods the server said it accepts (from the last failure), when known. */
  serverMethods(): string[] | undefined;
  /** An error raised by a step itself (a keyboard-interactive callback that threw). */
  stepError(): Error | undefined;
  /** OpenSSH user certificates (`<identity>-cert.pub`) found beside the keys: ssh2 cannot use them. */
  certificates: string[];
}

function keyBuffer(key: string | Uint8Array): Buffer {
  return typeof key === "string" ? Buffer.from(key, "utf8") : Buffer.from(key);
}

/** Parses a private key, telling "wrong passphrase" from "not a key". */
function checkKey(data: Buffer, passphrase: string | undefined, where: string, host: ResolvedHost): void {
  const parsed = ssh2.utils.parseKey(data, passphrase);
  if (parsed instanceof Error) {
    const encrypted = /encrypted|passphrase|bad decrypt/i.test(parsed.message);
    throw new ConnectorError(
      "AUTH_FAILED",
      "ssh",
      encrypted
        ? `cannot decrypt private key ${where} for ${host.username}@${host.hostname}: ${passphrase === undefined ? "it needs a passphrase" : "wrong passphrase"}`
        : `cannot read private key ${where}: ${parsed.message}`,
      { details: { user: host.username, host: host.hostname, key: where } },
    );
  }
}

async function readIdentity(path: string): Promise<Buffer | undefined> {
  try {
    return await readFile(path);
  } catch {
    return undefined;
  }
}

const DEFAULT_IDENTITIES = ["id_ed25519", "id_ecdsa", "id_rsa"];

/**
 * Builds the authentication plan for one host: agent keys, the explicit private key, the
 * config's (or default) identity files, keyboard-interactive, password — OpenSSH's order.
 * Encrypted identity files from the config that the passphrase does not open are skipped
 * (logged); an explicit key that cannot be opened fails with `AUTH_FAILED` at once.
 */
export async function buildAuthPlan(
  host: ResolvedHost,
  options: SshConnectorOptions,
  isTarget: boolean,
  logger: SshLogger | undefined,
): Promise<AuthPlan> {
  const steps: AuthStep[] = [];
  const username = host.username;
  if (host.agentSocket && !host.identitiesOnly) {
    steps.push({
      label: `publickey (agent ${host.agentSocket})`,
      method: "publickey",
      attempt: { type: "agent", username, agent: host.agentSocket },
    });
  }
  if (options.privateKey !== undefined && options.privateKeyPath !== undefined) {
    throw new UsageError("ssh: give privateKey or privateKeyPath, not both");
  }
  if (options.privateKey !== undefined) {
    if (typeof options.privateKey !== "string" && !(options.privateKey instanceof Uint8Array)) {
      throw new UsageError("ssh: privateKey must be a string or bytes");
    }
    const data = keyBuffer(options.privateKey);
    checkKey(data, options.passphrase, "(privateKey option)", host);
    steps.push({
      label: "publickey (privateKey option)",
      method: "publickey",
      attempt: { type: "publickey", username, key: data, passphrase: options.passphrase },
    });
  }
  if (options.privateKeyPath !== undefined) {
    const data = await readFile(options.privateKeyPath).catch((err: NodeJS.ErrnoException) => {
      throw new UsageError(`ssh: cannot read privateKeyPath ${options.privateKeyPath}: ${err.code ?? err.message}`, {
        cause: err,
      });
    });
    checkKey(data, options.passphrase, options.privateKeyPath, host);
    steps.push({
      label: `publickey (${options.privateKeyPath})`,
      method: "publickey",
      attempt: { type: "publickey", username, key: data, passphrase: options.passphrase },
    });
  }
  const explicitKey = options.privateKey !== undefined || options.privateKeyPath !== undefined;
  const candidates =
    host.identityFiles.length > 0
      ? host.identityFiles
      : explicitKey
        ? []
        : DEFAULT_IDENTITIES.map((n) => `${process.env.HOME ?? ""}/.ssh/${n}`);
  for (const path of candidates) {
    if (path === options.privateKeyPath) continue;
    const data = await readIdentity(path);
    if (!data) {
      if (host.identityFiles.includes(path)) logger?.debug?.(`ssh: identity file ${path} not readable, skipped`);
      continue;
    }
    const parsed = ssh2.utils.parseKey(data, options.passphrase);
    if (parsed instanceof Error) {
      logger?.debug?.(`ssh: identity file ${path} skipped: it is encrypted or not a private key`);
      continue;
    }
    steps.push({
      label: `publickey (${path})`,
      method: "publickey",
      attempt: { type: "publickey", username, key: data, passphrase: options.passphrase },
    });
  }

  let stepError: Error | undefined;
  const callback = options.onKeyboardInteractive;
  const password = isTarget ? options.password : undefined;
  if (password !== undefined && typeof password !== "string") throw new UsageError("ssh: password must be a string");
  if (callback !== undefined && typeof callback !== "function") {
    throw new UsageError("ssh: onKeyboardInteractive must be a function");
  }
  if (callback || password !== undefined) {
    steps.push({
      label: callback ? "keyboard-interactive" : "keyboard-interactive (password)",
      method: "keyboard-interactive",
      attempt: {
        type: "keyboard-interactive",
        username,
        prompt: (name, instructions, _lang, prompts, finish) => {
          const list: KeyboardInteractivePrompt[] = prompts.map((p) => ({ prompt: p.prompt, echo: p.echo === true }));
          if (!callback) {
            // Without a callback, answer a lone password prompt with the password (PAM sites).
            const only = list.length === 1 && list[0] && /password/i.test(list[0].prompt) && !list[0].echo;
            finish(only && password !== undefined ? [password] : list.map(() => ""));
            return;
          }
          Promise.resolve()
            .then(() => callback(list, { host: host.hostname, port: host.port, username, name, instructions }))
            .then((answers) => {
              if (!Array.isArray(answers) || answers.some((a) => typeof a !== "string")) {
                throw new UsageError("ssh: onKeyboardInteractive must return one string per prompt");
              }
              finish(answers);
            })
            .catch((err: unknown) => {
              stepError = err instanceof Error ? err : new Error(String(err));
              finish(list.map(() => ""));
            });
        },
      },
    });
  }
  if (password !== undefined) {
    steps.push({ label: "password", method: "password", attempt: { type: "password", username, password } });
  }

  const tried: string[] = [];
  let serverMethods: string[] | undefined;
  let index = 0;
  const handler: AuthHandler = (methodsLeft, _partial, next) => {
    if (methodsLeft) serverMethods = methodsLeft;
    while (index < steps.length) {
      const step = steps[index++] as AuthStep;
      if (methodsLeft && !methodsLeft.includes(step.method)) continue;
      if (stepError) break;
      tried.push(step.label);
      next(step.attempt);
      return;
    }
    // ssh2 takes `false` for "no method left"; @types/ssh2 does not list it.
    (next as unknown as (method: false) => void)(false);
  };
  const certificates = [...(options.privateKeyPath ? [options.privateKeyPath] : []), ...candidates]
    .map((path) => `${path}-cert.pub`)
    .filter((cert, i, all) => all.indexOf(cert) === i && existsSync(cert));
  return { steps, handler, tried, serverMethods: () => serverMethods, stepError: () => stepError, certificates };
}

/**
 * What AUTH_FAILED says about the other transport: ssh2 has no OpenSSH certificates,
 * GSSAPI or ssh_config `Match exec`; the system ssh has them all.
 */
export function opensshHint(auth: AuthPlan): string {
  if (auth.certificates.length > 0) {
    return `. ssh2 cannot log in with OpenSSH certificates (found ${auth.certificates.join(", ")}): use transport: "openssh" (the system ssh client; CLI --transport openssh)`;
  }
  return `. If this account needs a certificate, Kerberos or an MFA prompt, use transport: "openssh" (the system ssh client)`;
}
