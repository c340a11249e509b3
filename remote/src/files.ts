import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

/** The agent's version: `version` of this package's package.json (equal to the Python `__version__`). */
export const AGENT_VERSION: string = (
  JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as { version: string }
).version;

/** The wire protocol major version the agent speaks (`hello.agent.protocol`). */
export const AGENT_PROTOCOL_VERSION = 1;

/** Name of the manifest `syncAgent` writes in the endpoint folder, after every agent file. */
export const AGENT_MANIFEST_NAME = "agent-manifest.json";

/**
 * The absolute folder holding `interpreter.sh` and `sremote_agent/` — the package root,
 * both when running from the TypeScript sources and from an installed package (`dist/`).
 */
export function agentDir(): string {
  return fileURLToPath(new URL("..", import.meta.url)).replace(/\/$/, "");
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

let cached: Promise<AgentFile[]> | undefined;

async function listAgentFiles(): Promise<AgentFile[]> {
  const root = agentDir();
  const names = (await readdir(join(root, PACKAGE_DIR))).filter((n) => n.endsWith(".py")).sort();
  const paths = ["interpreter.sh", ...names.map((n) => `${PACKAGE_DIR}/${n}`)];
  return Promise.all(
    paths.map(async (path) => {
      const absPath = join(root, ...path.split("/"));
      const data = await readFile(absPath);
      return { path, absPath, sha256: createHash("sha256").update(data).digest("hex"), size: data.byteLength };
    }),
  );
}

/** The agent's files (`interpreter.sh`, then `sremote_agent/*.py` sorted), with their hashes. */
export function agentFiles(): Promise<AgentFile[]> {
  cached ??= listAgentFiles().catch((err: unknown) => {
    cached = undefined;
    throw err;
  });
  return cached.then((files) => files.map((f) => ({ ...f })));
}

/** The manifest describing the packaged agent. */
export async function agentManifest(): Promise<AgentManifest> {
  const files: Record<string, string> = {};
  for (const f of await agentFiles()) files[f.path] = f.sha256;
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
