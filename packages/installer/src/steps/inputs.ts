import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import { basename } from "node:path";
import { UsageError } from "@sremote/core";
import type { InstallOptions } from "../install-options.js";
import { classifyLocal, type LocalKind, normalizePackage, type PackageSource } from "../sources.js";
import { packFolder } from "../tar.js";

const sha256 = (data: Uint8Array) => createHash("sha256").update(data).digest("hex");

/** A local package, read and hashed on the client before anything changes remotely. */
export interface PreparedLocal {
  kind: LocalKind;
  data: Uint8Array;
  sha256: string;
  /** File name to upload as (wheels must keep their name). */
  uploadName: string;
}

/** The options checked on the client, local packages read and hashed: before anything is sent. */
export interface InstallInputs {
  sources: PackageSource[];
  locals: Map<PackageSource, PreparedLocal>;
  preamble: string[] | undefined;
  python: string | undefined;
}

export async function checkInputs(options: InstallOptions): Promise<InstallInputs> {
  const sources = (options.packages ?? []).map(normalizePackage);
  let preamble: string[] | undefined;
  if (options.preamble !== undefined) {
    if (!Array.isArray(options.preamble)) throw new UsageError("preamble must be an array of shell lines");
    preamble = options.preamble.map((line, i) => {
      if (typeof line !== "string" || /[\0\r\n]/.test(line)) {
        throw new UsageError(`preamble line ${i + 1} must be one line of text without NUL bytes`);
      }
      return line;
    });
  }
  const python = options.python;
  if (
    python !== undefined &&
    (typeof python !== "string" || python.trim() === "" || /[\0\r\n]/.test(python) || python.startsWith("-"))
  ) {
    throw new UsageError(`python must be an interpreter name or an absolute path, got ${JSON.stringify(python)}`);
  }
  if (options.findLinks?.some((f) => typeof f !== "string" || f === "" || /[\0\r\n]/.test(f) || f.startsWith("-"))) {
    throw new UsageError("findLinks entries must be non-empty paths or URLs");
  }
  if (typeof options.index === "string" && !/^(https?|file):\/\/\S+$/.test(options.index)) {
    throw new UsageError(`index must be an http(s):// or file:// URL, got ${JSON.stringify(options.index)}`);
  }
  if (options.venv === false && sources.length > 0) {
    throw new UsageError("packages need the venv: drop venv: false (--no-venv) or the packages");
  }
  const locals = new Map<PackageSource, PreparedLocal>();
  for (const source of sources) {
    if (source.kind !== "local") continue;
    const kind = await classifyLocal(source.path);
    if (kind === "folder") {
      const packed = await packFolder(source.path);
      locals.set(source, { kind, data: packed.data, sha256: packed.sha256, uploadName: "src.tar" });
    } else {
      const data = await readFile(source.path);
      locals.set(source, { kind, data, sha256: sha256(data), uploadName: basename(source.path) });
    }
  }
  return { sources, locals, preamble, python };
}
