/**
 * `/utilities/{upload,download,ls}/{machine}/{path}` over the machine's real folder.
 * Operation failures (missing file, folder given for a file…) are **200** with
 * `status:"ERROR"`, as SFAPI answers; escapes out of the machine's file area are 403.
 */
import { readFile, stat, writeFile } from "node:fs/promises";
import { assertRealInside, listPath, mapUrlPath } from "../newt-double/files.js";
import { multipartBoundary, parseMultipart } from "../newt-double/multipart.js";
import { errnoCode, json, knownMachine, type Reply, type SfapiState, validationError } from "./state.js";

/** An SFAPI `DirectoryEntry`: numbers where the schema has numbers. */
export interface SfapiDirEntry {
  perms: string;
  hardlinks: number;
  user: string;
  group: string;
  size: number;
  date: string;
  name: string;
}

/**
 * Maps the raw URL path after `{machine}` to a local path inside `root`. Accepts the forms
 * clients send — `//abs` (the official client), `/abs`, and `%2F`-encoded slashes (a
 * generated client) — and refuses `..`, NUL bytes and anything outside the root.
 */
export function mapSfapiPath(root: string, rawPath: string): string {
  return mapUrlPath(root, rawPath.replace(/%2F/gi, "/"));
}

function osError(code: string | undefined, path: string): string {
  switch (code) {
    case "ENOENT":
    case "ENOTDIR":
      return `${path}: No such file or directory`;
    case "EISDIR":
      return `${path}: Is a directory`;
    case "EACCES":
    case "EPERM":
      return `${path}: Permission denied`;
    default:
      return `${path}: ${code ?? "error"}`;
  }
}

async function localPath(st: SfapiState, machineSeg: string | undefined, rawPath: string): Promise<string> {
  const machine = knownMachine(st, machineSeg);
  const root = st.roots.get(machine) as string;
  const path = mapSfapiPath(root, rawPath);
  await assertRealInside(root, path);
  return path;
}

export async function download(
  st: SfapiState,
  machineSeg: string | undefined,
  rawPath: string,
  query: Record<string, string>,
): Promise<Reply> {
  const path = await localPath(st, machineSeg, rawPath);
  const binary = query.binary === "true";
  const fail = (error: string) => json(200, { status: "ERROR", file: null, is_binary: binary, error });
  let size: number;
  try {
    const info = await stat(path);
    if (info.isDirectory()) return fail(osError("EISDIR", path));
    size = info.size;
  } catch (err) {
    return fail(osError(errnoCode(err), path));
  }
  if (size > st.maxDownloadBytes) {
    return fail(`${path}: file is ${size} bytes, larger than the ${st.maxDownloadBytes} bytes download allows`);
  }
  let data: Buffer;
  try {
    data = await readFile(path);
  } catch (err) {
    return fail(osError(errnoCode(err), path));
  }
  return json(200, {
    status: "OK",
    file: binary ? data.toString("base64") : data.toString("utf8"),
    is_binary: binary,
    error: null,
  });
}

export async function upload(
  st: SfapiState,
  machineSeg: string | undefined,
  rawPath: string,
  body: Buffer,
  contentType: string | undefined,
): Promise<Reply> {
  const path = await localPath(st, machineSeg, rawPath);
  const boundary = multipartBoundary(contentType);
  if (!boundary) return validationError(["body", "file"], "a multipart/form-data body is required");
  let parts: ReturnType<typeof parseMultipart>;
  try {
    parts = parseMultipart(body, boundary);
  } catch (err) {
    return validationError(["body"], `bad multipart body: ${(err as Error).message}`);
  }
  const part = parts.find((p) => p.name === "file");
  if (!part) return validationError(["body", "file"], "field required");
  try {
    // The path names the file itself; an existing folder is an error, a missing parent too.
    await writeFile(path, part.data);
  } catch (err) {
    return json(200, { status: "ERROR", output: null, error: osError(errnoCode(err), path) });
  }
  return json(200, { status: "OK", output: `uploaded ${part.data.length} bytes to ${path}`, error: null });
}

export async function ls(st: SfapiState, machineSeg: string | undefined, rawPath: string): Promise<Reply> {
  const path = await localPath(st, machineSeg, rawPath);
  let entries: Awaited<ReturnType<typeof listPath>>;
  let isFile = false;
  try {
    isFile = !(await stat(path)).isDirectory();
    entries = await listPath(path, st.clock.now());
  } catch (err) {
    return json(200, {
      status: "ERROR",
      entries: [],
      error: osError(errnoCode(err), path),
      file: null,
      is_binary: null,
    });
  }
  const out: SfapiDirEntry[] = entries.map((e) => ({
    ...e,
    hardlinks: Number(e.hardlinks),
    size: Number(e.size),
    // A file path yields one entry named by its full path, as SFAPI answers.
    name: isFile ? path : e.name,
  }));
  return json(200, { status: "OK", entries: out, error: null, file: null, is_binary: null });
}
