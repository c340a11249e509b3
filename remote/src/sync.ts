import { readFile } from "node:fs/promises";
import {
  type Connector,
  ConnectorError,
  deadline,
  hasErrorCode,
  isSremoteError,
  type OperationOptions,
  posixJoin,
} from "@sremote/core";
import { AGENT_MANIFEST_NAME, type AgentManifest, agentFiles, agentManifest, parseAgentManifest } from "./files.js";

/** Options of {@link syncAgent}. */
export interface SyncAgentOptions extends OperationOptions {
  /** Upload every file, whatever the remote manifest says. */
  force?: boolean | undefined;
  /**
   * A shared endpoint: folders 0755 and files 0644 (readable by everyone, writable by the
   * owner only). Default: private, folders 0700 and files 0600.
   */
  shared?: boolean | undefined;
  /** The folder holding the agent's files to upload (default `agentDir()`: `$SREMOTE_AGENT_DIR` or this package). */
  agentDir?: string | undefined;
  /** Called once per agent file, after it was uploaded or found unchanged. */
  onProgress?: ((e: { file: string; action: "upload" | "skip" }) => void) | undefined;
}

/** What {@link syncAgent} did. */
export interface SyncAgentResult {
  /** Endpoint-relative paths uploaded. */
  uploaded: string[];
  /** Endpoint-relative paths whose remote copy was already current. */
  unchanged: string[];
  /** The version in the remote manifest before the sync; `null` when there was none. */
  previousVersion: string | null;
}

/**
 * Reads `<endpointDir>/agent-manifest.json`. Returns `null` when it is missing or is not a
 * valid manifest (a damaged manifest only means "upload everything again").
 *
 * @throws ConnectorError for transport failures other than a missing file.
 */
export async function readRemoteManifest(
  connector: Connector,
  endpointDir: string,
  options: OperationOptions = {},
): Promise<AgentManifest | null> {
  let bytes: Uint8Array;
  try {
    bytes = await connector.getFile(posixJoin(endpointDir, AGENT_MANIFEST_NAME), options);
  } catch (err) {
    if (hasErrorCode(err, "FILE_NOT_FOUND")) return null;
    throw err;
  }
  return parseAgentManifest(new TextDecoder().decode(bytes));
}

async function run(connector: Connector, argv: string[], signal: AbortSignal): Promise<void> {
  const result = await connector.exec(argv, { signal });
  if (result.exitCode !== 0) {
    throw new ConnectorError(
      "COMMAND_FAILED",
      connector.name,
      `${argv.join(" ")} failed (${result.exitCode === null ? `signal ${result.signal}` : `exit status ${result.exitCode}`})${
        result.stderr.trim() ? `: ${result.stderr.trim()}` : ""
      }`,
      { details: { argv, exitCode: result.exitCode, signal: result.signal, stderr: result.stderr } },
    );
  }
}

function sameManifest(a: AgentManifest, b: AgentManifest): boolean {
  const ak = Object.keys(a.files);
  return (
    a.version === b.version &&
    a.protocol === b.protocol &&
    ak.length === Object.keys(b.files).length &&
    ak.every((k) => a.files[k] === b.files[k])
  );
}

/**
 * Brings the agent files in `endpointDir` up to date: creates the folders when something
 * must be uploaded, uploads only the files whose hash differs from the remote manifest,
 * then writes the manifest **last** (an interrupted sync is repaired by the next one).
 * Never deletes anything.
 *
 * @throws ConnectorError from the connector (`COMMAND_FAILED` when `mkdir`/`chmod` fail),
 *   TimeoutError / AbortError per `options`.
 */
export async function syncAgent(
  connector: Connector,
  endpointDir: string,
  options: SyncAgentOptions = {},
): Promise<SyncAgentResult> {
  const d = deadline(options);
  const what = `syncing the agent to ${endpointDir}`;
  try {
    const op = { signal: d.signal };
    const [files, local] = await Promise.all([agentFiles(options.agentDir), agentManifest(options.agentDir)]);
    const remote = await readRemoteManifest(connector, endpointDir, op);
    const stale = files.filter((f) => options.force || remote?.files[f.path] !== f.sha256);
    const fileMode = options.shared ? 0o644 : 0o600;
    if (stale.length > 0) {
      const folders = [posixJoin(endpointDir), posixJoin(endpointDir, "sremote_agent")];
      await run(connector, ["mkdir", "-p", "--", ...folders], d.signal);
      await run(connector, ["chmod", options.shared ? "755" : "700", "--", ...folders], d.signal);
    }
    const uploaded: string[] = [];
    const unchanged: string[] = [];
    for (const f of files) {
      d.throwIfDone(what);
      if (stale.includes(f)) {
        await connector.putFile(posixJoin(endpointDir, f.path), await readFile(f.absPath), { ...op, mode: fileMode });
        uploaded.push(f.path);
        options.onProgress?.({ file: f.path, action: "upload" });
      } else {
        unchanged.push(f.path);
        options.onProgress?.({ file: f.path, action: "skip" });
      }
    }
    if (options.force || remote === null || !sameManifest(remote, local)) {
      const text = `${JSON.stringify(local, null, 2)}\n`;
      await connector.putFile(posixJoin(endpointDir, AGENT_MANIFEST_NAME), new TextEncoder().encode(text), {
        ...op,
        mode: fileMode,
      });
    }
    return { uploaded, unchanged, previousVersion: remote?.version ?? null };
  } catch (err) {
    if (d.signal.aborted && !(isSremoteError(err) && (err.code === "TIMEOUT" || err.code === "ABORTED"))) {
      throw d.error(what);
    }
    throw err;
  } finally {
    d.dispose();
  }
}
