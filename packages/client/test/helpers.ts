import { execFileSync } from "node:child_process";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { agentDir } from "@sremote/agent";
import { localConnector } from "@sremote/connector-local";
import { RemoteClient, type RemoteClientOptions } from "../src/index.js";

export const fixturesDir = fileURLToPath(new URL("./fixtures", import.meta.url));

/** The real interpreter behind the first python3 on PATH (no shim per call). */
export const python = execFileSync("python3", ["-c", "import sys; print(sys.executable)"], { encoding: "utf8" }).trim();

/** True when the process `pid` still exists (and is not a zombie). */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    const stat = execFileSync("ps", ["-o", "stat=", "-p", String(pid)], { encoding: "utf8" }).trim();
    return stat !== "" && !stat.startsWith("Z");
  } catch {
    return false;
  }
}

/** A client on the local connector running the agent from the package, with a private temp folder. */
export function localClient(options: Partial<RemoteClientOptions> = {}): {
  client: RemoteClient;
  tmpDir: string;
  leftovers(): string[];
  dispose(): void;
} {
  const tmpDir = mkdtempSync(join(tmpdir(), "sremote-client-test-"));
  const client = new RemoteClient({
    connector: localConnector(),
    python,
    autoInstallAgent: false,
    layout: { endpointDir: agentDir(), tmpDir, workDir: fixturesDir },
    ...options,
  });
  return {
    client,
    tmpDir,
    leftovers: () => readdirSync(tmpDir),
    dispose: () => rmSync(tmpDir, { recursive: true, force: true }),
  };
}
