import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { homedir, tmpdir } from "node:os";
import { join } from "node:path";
import { agentDir } from "@sremote/agent";
import type { RemoteClientOptions } from "@sremote/client";
import { type Connector, parseTarget, type Target, UsageError } from "@sremote/core";
import { resolvePython } from "./python-path.js";

export { resolvePython };

/** Connection flags shared by every command that takes a target. */
export interface ConnectionFlags {
  /** Python executable on the remote side. */
  python?: string | undefined;
  /** NEWT base URL (default `SREMOTE_NEWT_URL`, else NERSC's). */
  newtUrl?: string | undefined;
  /** Superfacility API base URL (default `SREMOTE_SFAPI_URL`, else NERSC's). */
  sfapiUrl?: string | undefined;
  /** SFAPI token URL (default `SREMOTE_SFAPI_TOKEN_URL`, else NERSC's). */
  tokenUrl?: string | undefined;
  /** SFAPI client key file (default `SREMOTE_SFAPI_KEY_FILE`). */
  keyFile?: string | undefined;
  /** SSH private key file. */
  identity?: string | undefined;
  /** SSH known_hosts file (default `~/.ssh/known_hosts`). */
  knownHosts?: string | undefined;
  /** ssh config file (default `~/.ssh/config` when present). */
  sshConfig?: string | undefined;
  /** Name of the environment variable holding the SSH password (never the password itself). */
  passwordEnv?: string | undefined;
  /** SSH implementation: `ssh2` (default), `openssh` (the system ssh client) or `auto`. */
  transport?: string | undefined;
}

const SSH_TRANSPORTS = ["ssh2", "openssh", "auto"] as const;

/** `--transport`: one of {@link SSH_TRANSPORTS}, or undefined when not given. */
export function parseTransport(text: string | undefined): (typeof SSH_TRANSPORTS)[number] | undefined {
  if (text === undefined) return undefined;
  const kind = SSH_TRANSPORTS.find((k) => k === text);
  if (!kind) throw new UsageError(`--transport expects ssh2, openssh or auto, got ${JSON.stringify(text)}`);
  return kind;
}

/** A connector plus the client options that go with the target. */
export interface OpenedTarget {
  target: Target;
  connector: Connector;
  clientOptions: Partial<RemoteClientOptions>;
  /** Removes what opening the target created locally (temp folders). */
  cleanup(): Promise<void>;
}

/** True when `endpointDir` holds an install's venv or its recorded `python` file. */
function hasInstalledPython(endpointDir: string): boolean {
  return existsSync(join(endpointDir, "env", "bin", "python")) || existsSync(join(endpointDir, "python"));
}

/**
 * Builds the connector and client options for a target string. Each connector package is
 * loaded only for its own kind of target: a `local:` call never loads ssh2 or undici, which
 * were most of the CLI's start-up time.
 */
export async function openTarget(text: string, flags: ConnectionFlags = {}): Promise<OpenedTarget> {
  const target = parseTarget(text);
  switch (target.kind) {
    case "local": {
      const { localConnector } = await import("@sremote/connector-local");
      const connector = localConnector();
      if (target.endpointDir) {
        // An installed endpoint picks its own Python (its venv, else the one install
        // recorded); SREMOTE_PYTHON would override that choice, so it is set only when asked
        // for or when the folder has no install.
        const python = flags.python ?? (hasInstalledPython(target.endpointDir) ? undefined : await resolvePython());
        return {
          target,
          connector,
          clientOptions: {
            python,
            layout: { endpointDir: target.endpointDir, tmpDir: join(target.endpointDir, "tmp"), workDir: homedir() },
          },
          cleanup: async () => {},
        };
      }
      // No folder: run the agent straight from the installed @sremote/agent package.
      const python = flags.python ?? (await resolvePython());
      const tmpDir = await mkdtemp(join(tmpdir(), "sremote-"));
      return {
        target,
        connector,
        clientOptions: {
          python,
          autoInstallAgent: false,
          layout: { endpointDir: agentDir(), tmpDir, workDir: process.cwd() },
        },
        cleanup: () => rm(tmpDir, { recursive: true, force: true }),
      };
    }
    case "ssh": {
      const transport = parseTransport(flags.transport);
      let password: string | undefined;
      if (flags.passwordEnv !== undefined) {
        password = process.env[flags.passwordEnv];
        if (password === undefined || password === "") {
          throw new UsageError(`--password-env ${flags.passwordEnv}: that environment variable is not set`);
        }
      }
      const { sshConnector } = await import("@sremote/connector-ssh");
      const connector = sshConnector({
        host: target.host,
        port: target.port,
        username: target.user,
        privateKeyPath: flags.identity,
        knownHostsPath: flags.knownHosts,
        sshConfigPath: flags.sshConfig,
        password,
        transport,
      });
      return {
        target,
        connector,
        clientOptions: flags.python ? { python: flags.python } : {},
        cleanup: async () => {},
      };
    }
    case "newt": {
      // Credentials come from SREMOTE_NEWT_USER / SREMOTE_NEWT_PASSWORD (/ _OTP) or
      // SREMOTE_NEWT_SESSION_ID — never from the command line.
      const { newtConnector } = await import("@sremote/connector-newt");
      const connector = newtConnector({ machine: target.machine, baseUrl: flags.newtUrl });
      return {
        target,
        connector,
        clientOptions: flags.python ? { python: flags.python } : {},
        cleanup: async () => {},
      };
    }
    case "sfapi": {
      // The client key (or a ready token) comes from a file or the environment — never from
      // the command line itself.
      const env = process.env;
      const keyFile = flags.keyFile ?? (env.SREMOTE_SFAPI_KEY_FILE || undefined);
      const accessToken = env.SREMOTE_SFAPI_TOKEN || undefined;
      if (!keyFile && !accessToken) {
        throw new UsageError(
          "sfapi:// needs an SFAPI client: --key-file PATH (or $SREMOTE_SFAPI_KEY_FILE; the key file Iris gives, client id on the first line, then the PEM), or a ready access token in $SREMOTE_SFAPI_TOKEN",
        );
      }
      const { sfapiConnector } = await import("@sremote/connector-sfapi");
      const connector = sfapiConnector({
        machine: target.machine,
        apiUrl: flags.sfapiUrl ?? (env.SREMOTE_SFAPI_URL || undefined),
        tokenUrl: flags.tokenUrl ?? (env.SREMOTE_SFAPI_TOKEN_URL || undefined),
        ...(keyFile ? { keyFile } : { accessToken }),
      });
      return {
        target,
        connector,
        clientOptions: flags.python ? { python: flags.python } : {},
        cleanup: async () => {},
      };
    }
    default:
      throw new UsageError(`unsupported target kind in ${JSON.stringify(text)}`, { code: "INVALID_TARGET" });
  }
}
