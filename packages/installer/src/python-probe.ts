/** What the probe learnt about one Python interpreter. */
export interface PythonInfo {
  /** `sys.executable`. */
  executable: string;
  /** `major.minor.micro`. */
  version: string;
  implementation: string;
  /** The `venv` module is importable. */
  venv: boolean;
  /** `ensurepip` is importable (Debian/Ubuntu ship it separately, in `python3.X-venv`). */
  ensurepip: boolean;
  pip: boolean;
  /** setuptools' version, `null` when not installed. */
  setuptools: string | null;
  /** The `wheel` package is importable. */
  wheel: boolean;
  /** The interpreter is itself inside a virtual environment. */
  inVenv: boolean;
}

/** What the probe learnt about the endpoint's venv. */
export interface VenvInfo {
  executable: string;
  version: string;
  pip: string | null;
  setuptools: string | null;
  wheel: boolean;
  /** Every installed distribution (name as its metadata spells it → version). */
  distributions: Record<string, string>;
}

/** One candidate interpreter as the probe saw it. */
export interface Candidate {
  /** As asked for (`python3`, `/opt/py/bin/python3`). */
  name: string;
  /** Where `command -v` found it; absent when it was not found. */
  path?: string | undefined;
  info?: PythonInfo | undefined;
  /** Exit status of the interpreter when it failed to report. */
  failed?: number | undefined;
}

/** Parsed output of the probe script. */
export interface ProbeOutput {
  candidates: Candidate[];
  venv: VenvInfo | null;
  /** Exit status of the venv's Python when it exists but failed to run. */
  venvFailed: number | null;
  /** Where git is on the remote PATH, `null` when it is not. */
  git: string | null;
}

/** Oldest Python the agent supports. */
export const MIN_PYTHON: readonly [number, number] = [3, 8];

/** Parses the probe script's output (see `PROBE_SH`). */
export function parseProbe(stdout: string): ProbeOutput {
  const out: ProbeOutput = { candidates: [], venv: null, venvFailed: null, git: null };
  let current: Candidate | undefined;
  for (const raw of stdout.split("\n")) {
    const line = raw.trimEnd();
    const space = line.indexOf(" ");
    const word = space < 0 ? line : line.slice(0, space);
    const rest = space < 0 ? "" : line.slice(space + 1);
    switch (word) {
      case "missing":
        out.candidates.push({ name: rest });
        current = undefined;
        break;
      case "candidate": {
        const at = rest.indexOf(" ");
        current = { name: at < 0 ? rest : rest.slice(0, at), path: at < 0 ? undefined : rest.slice(at + 1) };
        out.candidates.push(current);
        break;
      }
      case "info":
        if (current) {
          try {
            current.info = JSON.parse(rest) as PythonInfo;
          } catch {
            current.failed = -1;
          }
        }
        break;
      case "failed":
        if (current) current.failed = Number(rest);
        break;
      case "venv":
        try {
          out.venv = JSON.parse(rest) as VenvInfo;
        } catch {
          out.venvFailed = -1;
        }
        break;
      case "venv-failed":
        out.venvFailed = Number(rest);
        break;
      case "git":
        out.git = rest;
        break;
    }
  }
  return out;
}

/** Compares dotted versions numerically: true when `version` ≥ `min`. */
export function versionAtLeast(version: string, min: readonly number[]): boolean {
  const parts = version.split(".").map((p) => Number.parseInt(p, 10));
  for (let i = 0; i < min.length; i++) {
    const a = Number.isFinite(parts[i]) ? (parts[i] as number) : 0;
    const b = min[i] as number;
    if (a !== b) return a > b;
  }
  return true;
}

/**
 * True when an environment can build wheels offline (`--no-build-isolation`) with setuptools:
 * setuptools ≥ 70.1 has `bdist_wheel` built in; older ones need the `wheel` package.
 */
export function canBuildWheels(setuptools: string | null, wheel: boolean): boolean {
  if (setuptools === null) return false;
  return wheel || versionAtLeast(setuptools, [70, 1]);
}

/** `3.11` from `3.11.2`. */
export function minorVersion(version: string): string {
  return version.split(".").slice(0, 2).join(".");
}

/**
 * The JSON object `interpreter.sh --info` printed: its last line that parses as one. A shell
 * startup file may print a banner before it (`echo Welcome` in `.bashrc` runs for SSH
 * commands too), as the client tolerates before the agent's hello.
 */
export function parseAgentInfo(stdout: string): Record<string, unknown> | null {
  const lines = stdout.split("\n");
  for (let i = lines.length - 1; i >= 0; i--) {
    const line = (lines[i] as string).trim();
    if (!line.startsWith("{")) continue;
    try {
      const value: unknown = JSON.parse(line);
      if (typeof value === "object" && value !== null && !Array.isArray(value)) return value as Record<string, unknown>;
    } catch {
      // Not the agent's line: keep looking above it.
    }
  }
  return null;
}
