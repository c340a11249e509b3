import { stat } from "node:fs/promises";
import { resolve } from "node:path";
import { UsageError } from "@sremote/core";

/** A pip requirement spec (`"numpy>=1.24"`, `"qdo==0.7"`), installed from the configured index or find-links. */
export interface SpecPackage {
  kind: "spec";
  spec: string;
}

/**
 * A git repository cloned **on the remote** (which needs `git`), optionally at a branch, tag
 * or commit, optionally from a subfolder (the seed's repos kept their package under `py/`;
 * without `subdir`, `py/` is used when the repository root is not a Python project).
 */
export interface GitPackage {
  kind: "git";
  url: string;
  ref?: string | undefined;
  subdir?: string | undefined;
}

/** A folder (a Python project), a wheel or an sdist on the client, uploaded and installed. */
export interface LocalPackage {
  kind: "local";
  path: string;
}

/** Something to install into the endpoint's venv. */
export type PackageSource = SpecPackage | GitPackage | LocalPackage;

/** What {@link InstallOptions.packages} accepts: a source, or a string taken as a pip spec. */
export type PackageInput = PackageSource | string;

const REF = /^[A-Za-z0-9._+/-]+$/;
const SCHEMES = new Set(["file", "http", "https", "ssh", "git"]);

function bad(message: string): never {
  throw new UsageError(message);
}

function checkText(what: string, text: string): void {
  if (typeof text !== "string" || text.trim() === "") bad(`${what} must be a non-empty string`);
  if (/[\0\r\n]/.test(text)) bad(`${what} must be one line without NUL bytes: ${JSON.stringify(text)}`);
  if (text.startsWith("-")) bad(`${what} must not start with "-" (it would be read as an option): ${text}`);
}

/**
 * Parses `url[@ref][#subdir]` (also pip's `git+url@ref#subdirectory=dir`): `file:///srv/repo@main#py`,
 * `https://host/org/repo.git@v1.2`, `git@host:org/repo.git@main`.
 *
 * @throws UsageError (`INVALID_ARGUMENT`) for a malformed URL, ref or subfolder.
 */
export function parseGitSource(text: string): GitPackage {
  checkText("git URL", text);
  let rest = text.trim().replace(/^git\+/, "");
  let subdir: string | undefined;
  const hash = rest.indexOf("#");
  if (hash >= 0) {
    const fragment = rest.slice(hash + 1);
    rest = rest.slice(0, hash);
    for (const part of fragment.split("&")) {
      if (part === "" || part.startsWith("egg=")) continue;
      subdir = part.startsWith("subdirectory=") ? part.slice("subdirectory=".length) : part;
    }
  }
  // The ref is after the last "@" of the path part (not of user@host).
  let pathStart = 0;
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(rest);
  if (scheme) {
    if (!SCHEMES.has((scheme[1] as string).toLowerCase())) {
      bad(`git URL ${JSON.stringify(text)}: unsupported scheme ${scheme[1]} (use file, https, http, ssh or git)`);
    }
    const slash = rest.indexOf("/", scheme[0].length);
    pathStart = slash < 0 ? rest.length : slash;
  } else if (!rest.startsWith("/")) {
    const scp = /^[^/:]+:/.exec(rest);
    if (!scp) bad(`git URL ${JSON.stringify(text)}: expected scheme://…, user@host:path or an absolute path`);
    pathStart = scp[0].length;
  }
  let ref: string | undefined;
  const at = rest.lastIndexOf("@");
  if (at >= pathStart && at > 0) {
    ref = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!REF.test(ref) || ref.startsWith("-") || ref.includes("..")) {
      bad(`git URL ${JSON.stringify(text)}: bad branch, tag or commit ${JSON.stringify(ref)}`);
    }
  }
  if (rest === "" || /\s/.test(rest)) bad(`git URL ${JSON.stringify(text)}: empty or contains spaces`);
  if (subdir !== undefined) subdir = checkSubdir(text, subdir);
  return { kind: "git", url: rest, ref, subdir };
}

function checkSubdir(source: string, subdir: string): string | undefined {
  const clean = subdir.replace(/^\.\/+/, "").replace(/\/+$/, "");
  if (clean === "" || clean === ".") return undefined;
  if (clean.startsWith("/") || clean.split("/").includes("..") || /[\0\r\n]/.test(clean)) {
    bad(`${JSON.stringify(source)}: the subfolder must be a relative path inside the repository, got ${subdir}`);
  }
  return clean;
}

/** Checks and normalises one package input. */
export function normalizePackage(input: PackageInput): PackageSource {
  if (typeof input === "string") {
    checkText("package spec", input);
    return { kind: "spec", spec: input.trim() };
  }
  if (typeof input !== "object" || input === null) bad(`a package must be a string or a source object`);
  switch (input.kind) {
    case "spec":
      checkText("package spec", input.spec);
      return { kind: "spec", spec: input.spec.trim() };
    case "git": {
      checkText("git URL", input.url);
      const parsed = parseGitSource(input.url);
      const ref = input.ref ?? parsed.ref;
      if (ref !== undefined && (!REF.test(ref) || ref.startsWith("-") || ref.includes(".."))) {
        bad(`git package ${input.url}: bad branch, tag or commit ${JSON.stringify(ref)}`);
      }
      const subdir = input.subdir !== undefined ? checkSubdir(input.url, input.subdir) : parsed.subdir;
      return { kind: "git", url: parsed.url, ref, subdir };
    }
    case "local":
      if (typeof input.path !== "string" || input.path === "" || input.path.includes("\0")) {
        bad("local package path must be a non-empty string");
      }
      return { kind: "local", path: resolve(input.path) };
    default:
      bad(`unknown package kind ${JSON.stringify((input as { kind?: unknown }).kind)}`);
  }
}

/** How a local package is installed. */
export type LocalKind = "folder" | "wheel" | "sdist";

const SDIST = /\.(tar\.gz|tgz|tar\.bz2|tar\.xz|zip)$/;

/**
 * Classifies a local package: a folder with `pyproject.toml`, `setup.py` or `setup.cfg`, a
 * `.whl`, or an sdist archive.
 *
 * @throws UsageError when the path does not exist or is none of these.
 */
export async function classifyLocal(path: string): Promise<LocalKind> {
  const info = await stat(path).catch(() => null);
  if (!info) bad(`local package ${path} does not exist on this machine`);
  if (info.isDirectory()) {
    for (const marker of ["pyproject.toml", "setup.py", "setup.cfg"]) {
      if (await stat(resolve(path, marker)).catch(() => null)) return "folder";
    }
    bad(`local package ${path} is not a Python project: it has no pyproject.toml, setup.py or setup.cfg`);
  }
  if (info.isFile()) {
    if (path.endsWith(".whl")) return "wheel";
    if (SDIST.test(path)) return "sdist";
    bad(`local package ${path} is neither a folder, a wheel (.whl) nor an sdist (.tar.gz, .zip)`);
  }
  bad(`local package ${path} is not a regular file or folder`);
}

/** A short human name for a source: the spec, `url@ref#subdir`, or the local path. */
export function describeSource(source: PackageSource): string {
  switch (source.kind) {
    case "spec":
      return source.spec;
    case "git":
      return `${source.url}${source.ref ? `@${source.ref}` : ""}${source.subdir ? `#${source.subdir}` : ""}`;
    case "local":
      return source.path;
  }
}

/** The state-file key of a source: what must match for an install to be skipped. */
export function sourceKey(source: PackageSource): string {
  return `${source.kind}:${describeSource(source)}`;
}

/** A distribution as pip names it. */
export interface Distribution {
  name: string;
  version: string;
}

/** Distributions from pip's `Successfully installed a-1.0 b-c-2.0` line. */
export function parseInstalled(output: string): Distribution[] {
  const out: Distribution[] = [];
  for (const line of output.split("\n")) {
    const m = /^Successfully installed (.+)$/.exec(line.trim());
    if (!m) continue;
    for (const word of (m[1] as string).split(/\s+/)) {
      const dash = word.lastIndexOf("-");
      if (dash > 0) out.push({ name: word.slice(0, dash), version: word.slice(dash + 1) });
    }
  }
  return out;
}

/** PEP 503 normalised distribution name. */
export function normalizeName(name: string): string {
  return name.toLowerCase().replace(/[-_.]+/g, "-");
}

/** The distribution name at the start of a pip spec (`"Foo[x]>=1"` → `"foo"`), when there is one. */
export function specName(spec: string): string | undefined {
  const m = /^([A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)\s*(?:\[|[<>=!~;@ ]|$)/.exec(spec.trim());
  return m ? normalizeName(m[1] as string) : undefined;
}

/**
 * True when every recorded distribution is installed at the same version (`installed`: name as
 * its metadata spells it → version, as the venv probe reports them).
 */
export function distributionsPresent(recorded: readonly Distribution[], installed: Record<string, string>): boolean {
  const entries = Object.entries(installed);
  return recorded.every((dist) =>
    entries.some(([name, version]) => normalizeName(name) === normalizeName(dist.name) && version === dist.version),
  );
}
