import { createHash } from "node:crypto";
import { lstat, readdir, readFile, readlink } from "node:fs/promises";
import { join } from "node:path";
import { UsageError } from "@sremote/core";

/** A folder packed as a POSIX (pax) tar archive. */
export interface PackedFolder {
  /** The archive. */
  data: Uint8Array;
  /** SHA-256 of the archive, which depends only on paths, contents, symlinks and exec bits. */
  sha256: string;
  /** Regular files packed. */
  files: number;
}

/** Names never packed: version-control data, caches, virtual environments. */
export const PACK_EXCLUDES: readonly string[] = [
  ".git",
  ".hg",
  ".svn",
  "__pycache__",
  ".tox",
  ".nox",
  ".venv",
  ".mypy_cache",
  ".pytest_cache",
  ".ruff_cache",
  "node_modules",
];

// Fixed metadata keeps the archive (and so its hash) a function of the content alone;
// 2020-01-01 rather than 0 because zip (wheels) cannot store dates before 1980.
const MTIME = 1_577_836_800;
const BLOCK = 512;
const MAX_SIZE = 8 ** 11 - 1;

const encoder = new TextEncoder();

function octal(value: number, width: number): string {
  return `${value.toString(8).padStart(width - 1, "0")}\0`;
}

function header(fields: { name: string; mode: number; size: number; type: string; linkname?: string }): Uint8Array {
  const h = new Uint8Array(BLOCK);
  const put = (offset: number, width: number, text: string) => {
    const bytes = encoder.encode(text);
    h.set(bytes.subarray(0, width), offset);
  };
  put(0, 100, fields.name);
  put(100, 8, octal(fields.mode, 8));
  put(108, 8, octal(0, 8));
  put(116, 8, octal(0, 8));
  put(124, 12, octal(fields.size, 12));
  put(136, 12, octal(MTIME, 12));
  put(148, 8, "        ");
  put(156, 1, fields.type);
  put(157, 100, fields.linkname ?? "");
  put(257, 6, "ustar\0");
  put(263, 2, "00");
  let sum = 0;
  for (const b of h) sum += b;
  put(148, 8, `${sum.toString(8).padStart(6, "0")}\0 `);
  return h;
}

function padded(data: Uint8Array): Uint8Array[] {
  const rest = data.byteLength % BLOCK;
  return rest === 0 ? [data] : [data, new Uint8Array(BLOCK - rest)];
}

function paxRecord(key: string, value: string): string {
  // "<len> key=value\n" where <len> counts its own digits too.
  const body = ` ${key}=${value}\n`;
  const n = encoder.encode(body).byteLength;
  let len = n + String(n).length;
  if (String(len).length !== String(n).length) len = n + String(len).length;
  return `${len}${body}`;
}

function entry(name: string, mode: number, type: string, data: Uint8Array, linkname?: string): Uint8Array[] {
  const blocks: Uint8Array[] = [];
  const pax: string[] = [];
  const ascii = (s: string) => /^[\x20-\x7e]*$/.test(s);
  if (encoder.encode(name).byteLength > 100 || !ascii(name)) pax.push(paxRecord("path", name));
  if (linkname !== undefined && (encoder.encode(linkname).byteLength > 100 || !ascii(linkname))) {
    pax.push(paxRecord("linkpath", linkname));
  }
  if (pax.length > 0) {
    const body = encoder.encode(pax.join(""));
    blocks.push(header({ name: "././@PaxHeader", mode: 0o644, size: body.byteLength, type: "x" }), ...padded(body));
  }
  blocks.push(header({ name, mode, size: data.byteLength, type, linkname }), ...padded(data));
  return blocks;
}

/**
 * Packs `root` into a tar archive that Python's `tarfile` (and any POSIX tar) extracts:
 * folders, regular files (exec bit kept), symbolic links; entries sorted, owners and times
 * fixed. Names in {@link PACK_EXCLUDES} and `*.pyc` files are left out.
 *
 * @throws UsageError for a file too large for the archive or an unreadable folder.
 */
export async function packFolder(root: string): Promise<PackedFolder> {
  const blocks: Uint8Array[] = [];
  let files = 0;
  const walk = async (dir: string, prefix: string): Promise<void> => {
    const names = (await readdir(dir)).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    for (const name of names) {
      if (PACK_EXCLUDES.includes(name) || name.endsWith(".pyc") || name.endsWith(".pyo")) continue;
      const abs = join(dir, name);
      const rel = prefix === "" ? name : `${prefix}/${name}`;
      const info = await lstat(abs);
      if (info.isDirectory()) {
        blocks.push(...entry(`${rel}/`, 0o755, "5", new Uint8Array(0)));
        await walk(abs, rel);
      } else if (info.isSymbolicLink()) {
        blocks.push(...entry(rel, 0o777, "2", new Uint8Array(0), await readlink(abs)));
      } else if (info.isFile()) {
        if (info.size > MAX_SIZE) throw new UsageError(`${abs} is too large to upload (${info.size} bytes)`);
        const data = await readFile(abs);
        blocks.push(...entry(rel, info.mode & 0o111 ? 0o755 : 0o644, "0", data));
        files += 1;
      }
    }
  };
  try {
    await walk(root, "");
  } catch (err) {
    if (err instanceof UsageError) throw err;
    throw new UsageError(`cannot pack ${root}: ${(err as Error).message}`, { cause: err });
  }
  blocks.push(new Uint8Array(BLOCK * 2));
  const total = blocks.reduce((n, b) => n + b.byteLength, 0);
  const data = new Uint8Array(total);
  let at = 0;
  for (const b of blocks) {
    data.set(b, at);
    at += b.byteLength;
  }
  return { data, sha256: createHash("sha256").update(data).digest("hex"), files };
}
