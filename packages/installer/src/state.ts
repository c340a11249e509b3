import type { Distribution } from "./sources.js";

/** The Python an endpoint was installed with. */
export interface PythonRecord {
  /** What was asked for (`--python`), `null` for "python3, else python". */
  requested: string | null;
  /** The interpreter's `sys.executable`. */
  executable: string;
  /** `major.minor.micro`. */
  version: string;
}

/** The venv, when there is one. */
export interface VenvRecord {
  systemSitePackages: boolean;
  /** The base interpreter it was created from. */
  base: string;
  /** Its Python version. */
  version: string;
}

/** One installed package source. */
export interface PackageRecord {
  /** `kind:source` — what must match for a later install to skip it. */
  key: string;
  kind: "spec" | "git" | "local";
  /** The spec, `url@ref#subdir`, or the client-side path. */
  source: string;
  /** What was actually installed: the git commit, the SHA-256 of the wheel or packed folder, or the spec. */
  resolved: string;
  /** The distributions pip reported as installed for it. */
  distributions: Distribution[];
  installedAt: string;
}

/**
 * `install-state.json` in the endpoint: what the installer did, so that the next install
 * skips every step whose inputs have not changed. Rewritten after each step that changed
 * something; `install-complete` is written after the last.
 */
export interface InstallState {
  format: 1;
  /** Agent version that wrote the state. */
  agentVersion: string;
  /** Folders 0755/0644 (a shared endpoint) rather than 0700/0600. */
  shared: boolean;
  /** The preamble lines written to `preamble.sh` (empty: no preamble). */
  preamble: string[];
  python: PythonRecord | null;
  /**
   * The venv the last install was asked for (`null`: `venv: false`). Kept while `venv` is
   * `null` because the venv is being (re)created, so an interrupted install is finished
   * with the same choice rather than without a venv.
   */
  wantVenv: { systemSitePackages: boolean } | null;
  /** The venv as created and checked; `null` when there is none (yet). */
  venv: VenvRecord | null;
  packages: PackageRecord[];
  updatedAt: string;
}

/** A fresh, empty state. */
export function emptyState(agentVersion: string): InstallState {
  return {
    format: 1,
    agentVersion,
    shared: false,
    preamble: [],
    python: null,
    wantVenv: { systemSitePackages: false },
    venv: null,
    packages: [],
    updatedAt: new Date().toISOString(),
  };
}

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

/** Parses `install-state.json`; `null` when it is not a state this version understands (start afresh). */
export function parseState(text: string): InstallState | null {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    return null;
  }
  if (!isObj(raw) || raw.format !== 1) return null;
  if (typeof raw.shared !== "boolean" || !Array.isArray(raw.preamble) || !Array.isArray(raw.packages)) return null;
  if (!raw.preamble.every((l) => typeof l === "string")) return null;
  const python = raw.python;
  if (
    python !== null &&
    !(isObj(python) && typeof python.executable === "string" && typeof python.version === "string")
  )
    return null;
  const venv = raw.venv;
  if (venv !== null && !(isObj(venv) && typeof venv.base === "string" && typeof venv.version === "string")) return null;
  // States written before `wantVenv` existed: the venv that was there is the one wanted.
  if (raw.wantVenv === undefined) {
    raw.wantVenv = isObj(venv) ? { systemSitePackages: venv.systemSitePackages === true } : null;
  }
  const want = raw.wantVenv;
  if (want !== null && !(isObj(want) && typeof want.systemSitePackages === "boolean")) return null;
  for (const p of raw.packages) {
    if (!isObj(p) || typeof p.key !== "string" || typeof p.resolved !== "string" || !Array.isArray(p.distributions))
      return null;
  }
  return raw as unknown as InstallState;
}

/** The state as written to the endpoint. */
export function formatState(state: InstallState): string {
  return `${JSON.stringify(state, null, 2)}\n`;
}

/** Content of the completion marker. */
export interface CompletionMarker {
  completedAt: string;
  agentVersion: string;
}
