import { existsSync } from "node:fs";
import { chmod, mkdtemp, rm } from "node:fs/promises";
import { RemoteClient, type RemoteClientOptions } from "@sremote/client";
import { type SshConnector, type SshConnectorOptions, sshConnector } from "@sremote/connector-ssh";
import { SSHD_PATH, type SshdFixture, sshConnectorOptions, startSshd } from "@sremote/testkit/sshd";
import { haveGit, isRoot, systemPythonReady } from "./helpers.js";

/**
 * The SSH tests log in as dedicated accounts with fresh, empty homes, which the sshd
 * fixture can only create as root. In CI (SREMOTE_TEST_STRICT=1) a missing prerequisite
 * fails the run instead of skipping the tests.
 */
export const sshReady = isRoot && existsSync(SSHD_PATH) && systemPythonReady && haveGit;
if (!sshReady && process.env.SREMOTE_TEST_STRICT === "1") {
  throw new Error(
    `the installer's SSH tests need root (for dedicated test accounts), ${SSHD_PATH}, git and /usr/bin/python3 with venv, pip, setuptools and wheel (SREMOTE_TEST_STRICT=1)`,
  );
}

/** One test account reached over a private sshd: a fresh, empty home. */
export interface SshAccount {
  sshd: SshdFixture;
  user: string;
  home: string;
  /** A connector logged in as the account (closed by `close`). */
  connector: SshConnector;
  /** Another connector to the same account (closed by `close`). */
  newConnector(extra?: Partial<SshConnectorOptions>): SshConnector;
  /** Calls `module.fn(...args)` through a fresh client that finds the endpoint by itself. */
  call(module: string, fn: string, args?: unknown[], options?: Partial<RemoteClientOptions>): Promise<unknown>;
  /**
   * A test-side folder under /tmp the account can read (mode 0755), for the repositories and
   * packages it installs from; removed by `close`. (Make what you put in it readable too.)
   */
  shared: string;
  close(): Promise<void>;
}

/** Starts a private sshd for `user` (created when missing, home wiped) and connects to it. */
export async function sshAccount(user: string): Promise<SshAccount> {
  const sshd = await startSshd({ user });
  // mkdtemp makes 0700 folders: open this one so that the account can read in it.
  const shared = await mkdtemp(`/tmp/${user}-`);
  await chmod(shared, 0o755);
  const made: SshConnector[] = [];
  const newConnector = (extra: Partial<SshConnectorOptions> = {}) => {
    const c = sshConnector({ ...sshConnectorOptions(sshd), ...extra });
    made.push(c);
    return c;
  };
  const connector = newConnector();
  return {
    sshd,
    user: sshd.user,
    home: sshd.home,
    connector,
    newConnector,
    async call(module, fn, args = [], options = {}) {
      const client = new RemoteClient({
        connector: newConnector(),
        autoInstallAgent: false,
        ...options,
      });
      try {
        return (await client.call(module, fn, args)).value;
      } finally {
        await client.close();
      }
    },
    shared,
    async close() {
      await Promise.all(made.map((c) => c.close().catch(() => undefined)));
      await sshd.stop();
      await rm(shared, { recursive: true, force: true });
    },
  };
}
