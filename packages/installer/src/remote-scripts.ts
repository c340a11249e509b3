import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { UsageError } from "@sremote/core";

/**
 * The remote side of the installer: small POSIX `sh` and Python scripts in this package's
 * `scripts/` folder (linted there with shellcheck and pyflakes), passed as argv
 * (`sh -c SCRIPT sh ARG…`, `python -c SCRIPT ARG…`). User data only ever travels as
 * arguments, never inside the script text. Each file documents its arguments, output and
 * exit statuses in its leading comment block, which is not sent.
 *
 * The files are read when first needed from `../scripts/` relative to this module, which is
 * the package's `scripts/` folder both from the TypeScript sources and from `dist/`; when
 * this code was bundled into another file (the `sremote` bin is), from the installed
 * `@sremote/installer` package found from there. An app bundled into one file without
 * node_modules must ship that folder as `../scripts/` relative to the bundle file (copy
 * `node_modules/@sremote/installer/scripts/`).
 */
export const SCRIPT_NAMES = [
  "attach.sh",
  "build.sh",
  "doctor.sh",
  "extract.py",
  "free-space.sh",
  "lock.py",
  "probe.sh",
  "pyinfo.py",
  "share.sh",
  "survey.sh",
  "uninstall.sh",
  "venvinfo.py",
  "wrap.sh",
] as const;

/** The name of one of the installer's remote scripts (a file in `scripts/`). */
export type RemoteScriptName = (typeof SCRIPT_NAMES)[number];

const loaded = new Map<RemoteScriptName, string>();

/**
 * The text of a remote script as it is sent: the file without its leading comment block
 * (documentation and lint directives) and without its final newline.
 *
 * @throws UsageError when the file cannot be read (a bundle that did not ship `scripts/`).
 */
export function remoteScript(name: RemoteScriptName): string {
  const cached = loaded.get(name);
  if (cached !== undefined) return cached;
  const file = fileURLToPath(new URL(`../scripts/${name}`, import.meta.url));
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    try {
      const pkg = createRequire(import.meta.url).resolve("@sremote/installer/package.json");
      text = readFileSync(join(dirname(pkg), "scripts", name), "utf8");
    } catch {
      throw new UsageError(
        `cannot read the installer's remote script ${file}: an app bundled into one file must ship node_modules/@sremote/installer/scripts/ as ../scripts/ relative to the bundle file`,
        { cause: err },
      );
    }
  }
  const script = stripHeader(text);
  loaded.set(name, script);
  return script;
}

/** The script without its leading comment lines (and the blank lines after them) and final newline. */
export function stripHeader(text: string): string {
  const lines = text.split("\n");
  let i = 0;
  while (i < lines.length && (lines[i] as string).startsWith("#")) i++;
  while (i < lines.length && (lines[i] as string).trim() === "") i++;
  return lines.slice(i).join("\n").replace(/\n$/, "");
}

/** Exit status of `wrap.sh` when the preamble failed. */
export const PREAMBLE_FAILED = 97;
/** Exit status of `survey.sh` for a non-empty folder that is not an endpoint. */
export const SURVEY_FOREIGN = 11;
/** Exit status of `uninstall.sh` for a folder that is not an endpoint (nothing removed). */
export const UNINSTALL_NOT_ENDPOINT = 11;
/** Exit status of `attach.sh` when the endpoint folder is missing. */
export const ATTACH_MISSING = 12;
/** `build.sh` exit statuses. */
export const BUILD_EXIT = { clone: 30, subdir: 31, notProject: 32, wheel: 33 } as const;
