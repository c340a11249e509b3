import { randomBytes } from "node:crypto";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { agentDir } from "@sremote/agent";
import { newtConnector } from "@sremote/connector-newt";
import { sshConnector } from "@sremote/connector-ssh";
import type { Connector } from "@sremote/core";
import { SYSTEM_PYTHON } from "@sremote/testkit";
import { DEFAULT_NEWT_USER, type NewtDouble, startNewtDouble } from "@sremote/testkit/newt-double";
import { sshConnectorOptions, sshdMissing, startSshd } from "@sremote/testkit/sshd";
import { RemoteClient, type RemoteClientOptions } from "../src/index.js";
import { fixturesDir, localClient, python } from "./helpers.js";

/** A running client against one kind of target, for the end-to-end suite. */
export interface E2EEnv {
  client: RemoteClient;
  /** The calls' working folder (holds sremote_testmod.py). */
  workDir: string;
  /** Files left in the client's temp folder. */
  leftovers(): Promise<string[]>;
  close(): Promise<void>;
}

/** One connector × carrier combination the end-to-end suite runs on. */
export interface E2ETarget {
  name: string;
  mode: "session" | "file";
  /** The Python the agent runs under on that target (tests that need numpy check it). */
  python: string;
  /** What this machine lacks to run the target (the suite is skipped with that reason), or null. */
  missing: string | null;
  setup(options?: Partial<RemoteClientOptions>): Promise<E2EEnv>;
}

function localTarget(mode: "session" | "file"): E2ETarget {
  return {
    name: `local ${mode}`,
    mode,
    python,
    missing: null,
    async setup(options = {}) {
      const { client, leftovers, dispose } = localClient({ mode, ...options });
      return {
        client,
        workDir: fixturesDir,
        leftovers: async () => leftovers(),
        close: async () => {
          await client.close();
          dispose();
        },
      };
    },
  };
}

/**
 * A client on the NEWT double as its default user, as the end-to-end suite runs it: the file
 * carrier, the agent run from the package (not installed) and the test fixtures as the calls'
 * working folder; `tmpDir` is the client's temp folder in that user's home.
 */
export function newtDoubleClient(
  double: NewtDouble,
  options: Partial<RemoteClientOptions> = {},
): { client: RemoteClient; tmpDir: string } {
  const tmpDir = join(double.homeDir(DEFAULT_NEWT_USER.username), ".sremote", "tmp");
  const client = new RemoteClient({
    connector: newtConnector({
      machine: "cori",
      baseUrl: double.baseUrl,
      credentials: { username: DEFAULT_NEWT_USER.username, password: DEFAULT_NEWT_USER.password },
    }),
    python,
    mode: "file",
    autoInstallAgent: false,
    layout: { endpointDir: agentDir(), tmpDir, workDir: fixturesDir },
    ...options,
  });
  return { client, tmpDir };
}

/** NEWT has no streams: the file carrier, through the NEWT double (real HTTP, real processes). */
function newtTarget(): E2ETarget {
  return {
    name: "newt file",
    mode: "file",
    python,
    missing: null,
    async setup(options = {}) {
      const double = await startNewtDouble();
      const { client, tmpDir } = newtDoubleClient(double, options);
      return {
        client,
        workDir: fixturesDir,
        leftovers: async () => {
          try {
            return readdirSync(tmpDir);
          } catch {
            return [];
          }
        },
        close: async () => {
          await client.close();
          await double.close();
        },
      };
    },
  };
}

/** Copies the test fixtures (modules, a dist-info) to a remote folder through the connector. */
async function uploadFixtures(connector: Connector, remoteDir: string, localDir = fixturesDir): Promise<void> {
  const mk = await connector.exec(["mkdir", "-p", remoteDir]);
  if (mk.exitCode !== 0) throw new Error(`mkdir ${remoteDir}: ${mk.stderr}`);
  for (const name of readdirSync(localDir)) {
    const local = join(localDir, name);
    if (name === "__pycache__") continue;
    if (statSync(local).isDirectory()) await uploadFixtures(connector, `${remoteDir}/${name}`, local);
    else await connector.putFile(`${remoteDir}/${name}`, readFileSync(local), { mode: 0o644 });
  }
}

/**
 * A real OpenSSH sshd on loopback, a dedicated test account (as root), the agent uploaded
 * by the client itself over SFTP into a fresh endpoint, Debian's Python on the remote side.
 */
function sshTarget(mode: "session" | "file", transport: "ssh2" | "openssh" = "ssh2"): E2ETarget {
  return {
    name: transport === "ssh2" ? `ssh ${mode}` : `ssh ${mode} (${transport}, certificate login)`,
    mode,
    python: SYSTEM_PYTHON,
    missing: sshdMissing(),
    async setup(options = {}) {
      // The openssh transport logs in with a CA-signed user certificate on an account with no
      // authorized_keys at all, as NERSC's sshproxy users do.
      const sshd = await startSshd(transport === "openssh" ? { userCertificate: true, authorizedKeys: false } : {});
      const connector = sshConnector({ ...sshConnectorOptions(sshd), transport });
      const root = `${sshd.home}/e2e-${randomBytes(4).toString("hex")}`;
      const workDir = `${root}/work`;
      const tmpDir = `${root}/tmp`;
      await uploadFixtures(connector, workDir);
      const client = new RemoteClient({
        connector,
        python: SYSTEM_PYTHON,
        mode,
        closeConnector: false,
        layout: { endpointDir: `${root}/endpoint`, tmpDir, workDir },
        ...options,
      });
      return {
        client,
        workDir,
        leftovers: async () => {
          const r = await connector.exec(["ls", "-A", tmpDir]);
          return r.stdout.split("\n").filter((l) => l !== "");
        },
        close: async () => {
          await client.close();
          await connector.exec(["rm", "-rf", root]).catch(() => undefined);
          await connector.close();
          await sshd.stop();
        },
      };
    },
  };
}

/** Every target of the end-to-end suite. */
export const e2eTargets: E2ETarget[] = [
  localTarget("session"),
  localTarget("file"),
  newtTarget(),
  sshTarget("session"),
  sshTarget("file"),
  sshTarget("session", "openssh"),
  sshTarget("file", "openssh"),
];
