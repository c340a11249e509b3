import { createHash } from "node:crypto";
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { PROTOCOL_VERSION, UsageError } from "@sremote/core";
import { AGENT_PACKAGE_VERSION } from "./version.js";

/**
 * The agent's version: `version` of this package's package.json, equal to the Python
 * `__version__` (both written by scripts/sync-agent-version.mjs, tied by a test). A constant,
 * not a read of package.json, so that a bundled app that never ships package.json works.
 */
export const AGENT_VERSION: string = AGENT_PACKAGE_VERSION;

/** The wire protocol major version the agent speaks (`hello.agent.protocol`): core's `PROTOCOL_VERSION`. */
export const AGENT_PROTOCOL_VERSION: number = PROTOCOL_VERSION;

/** Name of the manifest `syncAgent` writes in the endpoint folder, after every agent file. */
export const AGENT_MANIFEST_NAME = "agent-manifest.json";

/** The environment variable that points at the agent's files (see {@link agentDir}). */
export const AGENT_DIR_ENV = "SREMOTE_AGENT_DIR";

/**
 * The absolute folder holding `interpreter.sh` and `sremote_agent/`:
 * 1. `$SREMOTE_AGENT_DIR` when set — for bundled apps (esbuild, webpack, pkg…), where this
 *    package's own folder is not on disk: copy `node_modules/@sremote/agent/interpreter.sh`
 *    and `…/sremote_agent/` next to the bundle and point the variable (or the client's and
 *    installer's `agentDir` option) at that folder;
 * 2. otherwise this package's root, both from the TypeScript sources and from `dist/`.
 */
export function agentDir(): string {
  const fromEnv = process.env[AGENT_DIR_ENV];
  if (fromEnv) return fromEnv.replace(/\/+$/, "") || "/";
  let here: string | undefined;
  try {
    here = typeof import.meta.url === "string" ? import.meta.url : undefined;
  } catch {
    here = undefined;
  }
  if (!here) {
    throw new UsageError(
      `cannot locate the SRemote agent's files from this bundle: set ${AGENT_DIR_ENV} (or the agentDir option) to a folder holding interpreter.sh and sremote_agent/ (copied from node_modules/@sremote/agent)`,
    );
  }
  return fileURLToPath(new URL("..", here)).replace(/\/$/, "");
}

/** One file of the agent, as it is laid out in an endpoint. */
export interface AgentFile {
  /** POSIX path relative to the endpoint folder (`interpreter.sh`, `sremote_agent/codec.py`). */
  path: string;
  /** Absolute local path of the packaged file. */
  absPath: string;
  /** SHA-256 of the content, lower-case hex. */
  sha256: string;
  /** Size in bytes. */
  size: number;
}

/** What an endpoint holds: written by `syncAgent` as {@link AGENT_MANIFEST_NAME}. */
export interface AgentManifest {
  /** The agent's version ({@link AGENT_VERSION} of the package that uploaded it). */
  version: string;
  /** The protocol it speaks. */
  protocol: number;
  /** SHA-256 of every agent file, by endpoint-relative POSIX path. */
  files: Record<string, string>;
}

const PACKAGE_DIR = "sremote_agent";

const cache = new Map<string, Promise<AgentFile[]>>();

async function listAgentFiles(root: string): Promise<AgentFile[]> {
  let names: string[];
  try {
    names = (await readdir(join(root, PACKAGE_DIR))).filter((n) => n.endsWith(".py")).sort();
  } catch (err) {
    throw new UsageError(
      `the SRemote agent's files are not in ${root} (no ${PACKAGE_DIR}/ folder): set ${AGENT_DIR_ENV} or the agentDir option to a folder holding interpreter.sh and ${PACKAGE_DIR}/ (copied from node_modules/@sremote/agent)`,
      { cause: err },
    );
  }
  const paths = ["interpreter.sh", ...names.map((n) => `${PACKAGE_DIR}/${n}`)];
  return Promise.all(
    paths.map(async (path) => {
      const absPath = join(root, ...path.split("/"));
      const data = await readFile(absPath).catch((err: unknown) => {
        throw new UsageError(`the SRemote agent's file ${absPath} cannot be read (${AGENT_DIR_ENV}, agentDir)`, {
          cause: err,
        });
      });
      return { path, absPath, sha256: createHash("sha256").update(data).digest("hex"), size: data.byteLength };
    }),
  );
}

/**
 * The agent's files (`interpreter.sh`, then `sremote_agent/*.py` sorted), with their hashes,
 * from `dir` (default {@link agentDir}).
 *
 * @throws UsageError when the folder does not hold the agent's files.
 */
export function agentFiles(dir: string = agentDir()): Promise<AgentFile[]> {
  let files = cache.get(dir);
  if (!files) {
    files = listAgentFiles(dir).catch((err: unknown) => {
      cache.delete(dir);
      throw err;
    });
    cache.set(dir, files);
  }
  return files.then((list) => list.map((f) => ({ ...f })));
}

/** The manifest describing the agent in `dir` (default {@link agentDir}). */
export async function agentManifest(dir?: string): Promise<AgentManifest> {
  const files: Record<string, string> = {};
  for (const f of await agentFiles(dir)) files[f.path] = f.sha256;
  return { version: AGENT_VERSION, protocol: AGENT_PROTOCOL_VERSION, files };
}

/** Parses manifest text; `null` when it is not a valid manifest. */
export function parseAgentManifest(text: string): AgentManifest | null {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    return null;
  }
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) return null;
  const { version, protocol, files } = raw as Record<string, unknown>;
  if (typeof version !== "string" || typeof protocol !== "number") return null;
  if (typeof files !== "object" || files === null || Array.isArray(files)) return null;
  const out: Record<string, string> = {};
  for (const [path, sha] of Object.entries(files)) {
    if (typeof sha !== "string") return null;
    out[path] = sha;
  }
  return { version, protocol, files: out };
}
