import type { Stats } from "node:fs";
import { lstat, readdir, readFile, readlink, realpath, stat } from "node:fs/promises";
import { userInfo } from "node:os";
import { dirname, join } from "node:path";

/** A NEWT directory listing entry: every value is a string, as production answered. */
export interface NewtDirEntry {
  perms: string;
  hardlinks: string;
  user: string;
  group: string;
  size: string;
  date: string;
  name: string;
}

/** Why a URL path cannot be mapped into a system root. */
export class PathRejected extends Error {
  override name = "PathRejected";
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/**
 * Turns the raw (still percent-encoded) path after `/file/{sys}` into an absolute local
 * path and checks that it lies inside `root` (already a real path). `..` segments, NUL
 * bytes and encoded slashes are refused, so a URL can never name a file outside the root.
 */
export function mapUrlPath(root: string, rawPath: string): string {
  const segments: string[] = [];
  for (const raw of rawPath.split("/")) {
    if (raw === "") continue;
    let seg: string;
    try {
      seg = decodeURIComponent(raw);
    } catch {
      throw new PathRejected(400, `malformed percent-encoding in path segment ${JSON.stringify(raw)}`);
    }
    if (seg.includes("/") || seg.includes("\0")) throw new PathRejected(400, "path segment contains / or NUL");
    if (seg === "..") throw new PathRejected(403, "'..' is not allowed in file paths");
    if (seg === ".") continue;
    segments.push(seg);
  }
  const path = `/${segments.join("/")}`;
  if (!isInside(root, path)) throw new PathRejected(403, `${path} is outside this system's file area`);
  return path;
}

/** True when `path` is `root` or below it (both absolute, normalised). */
export function isInside(root: string, path: string): boolean {
  return path === root || path.startsWith(root.endsWith("/") ? root : `${root}/`);
}

/**
 * Refuses paths whose real location (symbolic links resolved) leaves the root: for an
 * existing path its own real path, else its parent's.
 */
export async function assertRealInside(root: string, path: string): Promise<void> {
  let real: string;
  try {
    real = await realpath(path);
  } catch {
    try {
      real = join(await realpath(dirname(path)), path.slice(path.lastIndexOf("/") + 1));
    } catch {
      return; // parent missing: the operation itself reports that
    }
  }
  if (!isInside(root, real)) throw new PathRejected(403, `${path} resolves outside this system's file area`);
}

let groupNames: Map<number, string> | undefined;
async function groupName(gid: number): Promise<string> {
  if (!groupNames) {
    groupNames = new Map();
    try {
      for (const line of (await readFile("/etc/group", "utf8")).split("\n")) {
        const [name, , id] = line.split(":");
        if (name && id) groupNames.set(Number(id), name);
      }
    } catch {
      // no /etc/group: numeric ids are shown, as ls does
    }
  }
  return groupNames.get(gid) ?? String(gid);
}

function userName(uid: number): string {
  const me = userInfo();
  return uid === me.uid ? me.username : String(uid);
}

function permString(st: Stats): string {
  const type = st.isDirectory() ? "d" : st.isSymbolicLink() ? "l" : st.isFIFO() ? "p" : st.isSocket() ? "s" : "-";
  const m = st.mode;
  const bit = (mask: number, c: string) => (m & mask ? c : "-");
  const x = (exec: number, special: number, set: string, unset: string) =>
    m & special ? (m & exec ? set : unset) : m & exec ? "x" : "-";
  return (
    type +
    bit(0o400, "r") +
    bit(0o200, "w") +
    x(0o100, 0o4000, "s", "S") +
    bit(0o040, "r") +
    bit(0o020, "w") +
    x(0o010, 0o2000, "s", "S") +
    bit(0o004, "r") +
    bit(0o002, "w") +
    x(0o001, 0o1000, "t", "T")
  );
}

const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/** `ls -la` style date: `Apr 15 10:59` within six months, else `Apr 15  2014`. */
function lsDate(mtime: Date, now: number): string {
  const month = MONTHS[mtime.getMonth()];
  const day = String(mtime.getDate()).padStart(2, " ");
  const recent = Math.abs(now - mtime.getTime()) < 182 * 24 * 3600 * 1000;
  const tail = recent
    ? `${String(mtime.getHours()).padStart(2, "0")}:${String(mtime.getMinutes()).padStart(2, "0")}`
    : ` ${mtime.getFullYear()}`;
  return `${month} ${day} ${tail}`;
}

async function entry(path: string, name: string, now: number): Promise<NewtDirEntry> {
  const st = await lstat(path);
  let shown = name;
  if (st.isSymbolicLink()) shown = `${name} -> ${await readlink(path)}`;
  return {
    perms: permString(st),
    hardlinks: String(st.nlink),
    user: userName(st.uid),
    group: await groupName(st.gid),
    size: String(st.size),
    date: lsDate(st.mtime, now),
    name: shown,
  };
}

/** Lists a folder (`.` and `..` first, then names sorted) or describes a single file. */
export async function listPath(path: string, now: number): Promise<NewtDirEntry[]> {
  const st = await stat(path);
  if (!st.isDirectory()) return [await entry(path, path.slice(path.lastIndexOf("/") + 1), now)];
  const names = (await readdir(path)).sort();
  const out = [await entry(path, ".", now), await entry(join(path, ".."), "..", now)];
  for (const name of names) out.push(await entry(join(path, name), name, now));
  return out;
}
