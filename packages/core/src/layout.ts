import { UsageError } from "./errors.js";

/** Where things live on the remote account. All paths are absolute. */
export interface RemoteLayout {
  /** The endpoint: `interpreter.sh`, the agent, the venv (default `~/.sremote`). */
  endpointDir: string;
  /** Private folder for request/response files, mode 0700 (default `~/.sremote/tmp`). */
  tmpDir: string;
  /** Working folder calls start in (default `~`). */
  workDir: string;
}

/**
 * The `.location` file (the seed's format): JSON with `sremote` (the endpoint folder),
 * exactly one of `absolute_tmp` / `relative_tmp` and exactly one of `absolute_pwd` /
 * `relative_pwd`. Relative paths are under the user's home. It lets a user point at a
 * shared endpoint while keeping private temp and working folders.
 */
export interface LocationFile {
  sremote: string;
  absolute_tmp?: string;
  relative_tmp?: string;
  absolute_pwd?: string;
  relative_pwd?: string;
}

/** Name of the endpoint folder under home, and of the self-discovery file inside it. */
export const DEFAULT_ENDPOINT_NAME = ".sremote";
export const LOCATION_FILE_NAME = ".location";
/** The agent's entry script inside the endpoint. */
export const INTERPRETER_NAME = "interpreter.sh";

/** Joins POSIX path pieces and normalises `.`/`..`/duplicate slashes. */
export function posixJoin(...parts: string[]): string {
  const joined = parts.filter((p) => p.length > 0).join("/");
  const absolute = joined.startsWith("/");
  const out: string[] = [];
  for (const seg of joined.split("/")) {
    if (seg === "" || seg === ".") continue;
    if (seg === "..") {
      if (out.length > 0 && out[out.length - 1] !== "..") out.pop();
      else if (!absolute) out.push("..");
      continue;
    }
    out.push(seg);
  }
  const body = out.join("/");
  return absolute ? `/${body}` : body || ".";
}

function assertHome(homeDir: string): void {
  if (typeof homeDir !== "string" || !homeDir.startsWith("/")) {
    throw new UsageError(`home folder must be an absolute POSIX path, got ${JSON.stringify(homeDir)}`);
  }
}

/** The default layout under `homeDir`: `~/.sremote`, `~/.sremote/tmp`, `~`. */
export function defaultLayout(homeDir: string): RemoteLayout {
  assertHome(homeDir);
  const endpointDir = posixJoin(homeDir, DEFAULT_ENDPOINT_NAME);
  return { endpointDir, tmpDir: posixJoin(endpointDir, "tmp"), workDir: posixJoin(homeDir) };
}

/** Where a user's `.location` file is looked for: `~/.sremote/.location`. */
export function locationFilePath(homeDir: string): string {
  assertHome(homeDir);
  return posixJoin(homeDir, DEFAULT_ENDPOINT_NAME, LOCATION_FILE_NAME);
}

/** Path of `interpreter.sh` in a layout. */
export function interpreterPath(layout: RemoteLayout): string {
  return posixJoin(layout.endpointDir, INTERPRETER_NAME);
}

const LOCATION_KEYS = new Set(["sremote", "absolute_tmp", "relative_tmp", "absolute_pwd", "relative_pwd"]);

function bad(source: string, why: string): never {
  throw new UsageError(`${source}: ${why}`, { code: "INVALID_LOCATION" });
}

function checkPath(source: string, key: string, value: unknown, absolute: boolean | "either"): string {
  if (typeof value !== "string" || value.length === 0) bad(source, `"${key}" must be a non-empty string`);
  if (value.includes("\0")) bad(source, `"${key}" contains a NUL byte`);
  if (absolute === true && !value.startsWith("/"))
    bad(source, `"${key}" must be an absolute path, got ${JSON.stringify(value)}`);
  if (absolute === false && value.startsWith("/"))
    bad(source, `"${key}" must be relative to the home folder, got ${JSON.stringify(value)}`);
  return value;
}

/**
 * Parses and validates the text of a `.location` file.
 *
 * @param source names the file in error messages.
 * @throws UsageError (`INVALID_LOCATION`) saying exactly what is wrong.
 */
export function parseLocationFile(text: string, source = LOCATION_FILE_NAME): LocationFile {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    bad(source, `not valid JSON (${(err as Error).message})`);
  }
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) bad(source, "must be a JSON object");
  const obj = raw as Record<string, unknown>;
  const unknown = Object.keys(obj).filter((k) => !LOCATION_KEYS.has(k));
  if (unknown.length > 0) bad(source, `unknown field(s) ${unknown.map((k) => JSON.stringify(k)).join(", ")}`);
  const loc: LocationFile = { sremote: checkPath(source, "sremote", obj.sremote, "either") };
  for (const what of ["tmp", "pwd"] as const) {
    const abs = obj[`absolute_${what}`];
    const rel = obj[`relative_${what}`];
    if (abs !== undefined && rel !== undefined)
      bad(source, `give only one of "absolute_${what}" and "relative_${what}"`);
    if (abs === undefined && rel === undefined)
      bad(source, `one of "absolute_${what}" or "relative_${what}" is required`);
    if (abs !== undefined) loc[`absolute_${what}`] = checkPath(source, `absolute_${what}`, abs, true);
    else loc[`relative_${what}`] = checkPath(source, `relative_${what}`, rel, false);
  }
  return loc;
}

function underHome(homeDir: string, p: string): string {
  if (p.startsWith("/")) return posixJoin(p);
  if (p === "~") return posixJoin(homeDir);
  return posixJoin(homeDir, p.startsWith("~/") ? p.slice(2) : p);
}

/** Resolves a `.location` file against the user's home into absolute paths. */
export function layoutFromLocation(location: LocationFile, homeDir: string): RemoteLayout {
  assertHome(homeDir);
  return {
    endpointDir: underHome(homeDir, location.sremote),
    tmpDir:
      location.absolute_tmp !== undefined
        ? posixJoin(location.absolute_tmp)
        : underHome(homeDir, location.relative_tmp ?? ""),
    workDir:
      location.absolute_pwd !== undefined
        ? posixJoin(location.absolute_pwd)
        : underHome(homeDir, location.relative_pwd ?? ""),
  };
}

function relativeTo(homeDir: string, p: string): string | undefined {
  const home = posixJoin(homeDir);
  if (p === home) return ".";
  return p.startsWith(`${home}/`) ? p.slice(home.length + 1) : undefined;
}

/** The `.location` content describing `layout`; paths under home are written relative. */
export function locationFromLayout(layout: RemoteLayout, homeDir: string): LocationFile {
  assertHome(homeDir);
  const loc: LocationFile = { sremote: posixJoin(layout.endpointDir) };
  const tmp = relativeTo(homeDir, layout.tmpDir);
  if (tmp !== undefined) loc.relative_tmp = tmp;
  else loc.absolute_tmp = posixJoin(layout.tmpDir);
  const pwd = relativeTo(homeDir, layout.workDir);
  if (pwd !== undefined) loc.relative_pwd = pwd;
  else loc.absolute_pwd = posixJoin(layout.workDir);
  return loc;
}

/** Serialises a `.location` file (validated first). */
export function formatLocationFile(location: LocationFile): string {
  const text = `${JSON.stringify(location, null, 2)}\n`;
  parseLocationFile(text, "location to write");
  return text;
}
