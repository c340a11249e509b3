import { createHash, createHmac, randomBytes } from "node:crypto";
import { appendFile, mkdir, readFile } from "node:fs/promises";
import { dirname } from "node:path";

/** One key line of a known_hosts file. */
export interface KnownHostEntry {
  /** The file it came from and its 1-based line number, for messages. */
  file: string;
  line: number;
  /** `@revoked` / `@cert-authority` marker, when present. */
  marker?: "revoked" | "cert-authority" | undefined;
  /** The host field as written: comma-separated patterns, or one `|1|salt|hash` entry. */
  hosts: string;
  /** Key type (`ssh-ed25519`, `ecdsa-sha2-nistp256`, `ssh-rsa`…). */
  keyType: string;
  /** Base64 of the public key blob. */
  key: string;
}

/** What known_hosts says about the key a server presented. */
export type HostKeyVerdict =
  | { status: "known"; entry: KnownHostEntry }
  | { status: "unknown"; otherTypes: string[] }
  | { status: "changed"; entries: KnownHostEntry[] }
  | { status: "revoked"; entry: KnownHostEntry };

/** Parses known_hosts text; comments, blank and malformed lines are skipped. */
export function parseKnownHosts(text: string, file: string): KnownHostEntry[] {
  const out: KnownHostEntry[] = [];
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const trimmed = (lines[i] ?? "").trim();
    if (trimmed === "" || trimmed.startsWith("#")) continue;
    const fields = trimmed.split(/\s+/);
    let marker: KnownHostEntry["marker"];
    if (fields[0]?.startsWith("@")) {
      const m = fields.shift();
      if (m === "@revoked") marker = "revoked";
      else if (m === "@cert-authority") marker = "cert-authority";
      else continue;
    }
    const [hosts, keyType, key] = fields;
    if (!hosts || !keyType || !key || !/^[A-Za-z0-9+/]+=*$/.test(key)) continue;
    out.push({ file, line: i + 1, marker, hosts, keyType, key });
  }
  return out;
}

/** The name OpenSSH looks up: `host` on port 22, `[host]:port` otherwise. */
export function knownHostName(host: string, port: number): string {
  return port === 22 ? host.toLowerCase() : `[${host.toLowerCase()}]:${port}`;
}

function globToRegExp(pattern: string): RegExp {
  const body = pattern
    .replace(/[.+^${}()|[\]\\]/g, "\\$&")
    .replaceAll("*", ".*")
    .replaceAll("?", ".");
  return new RegExp(`^${body}$`, "i");
}

function hashedMatches(field: string, name: string): boolean {
  const parts = field.split("|");
  if (parts.length !== 4 || parts[1] !== "1" || !parts[2] || !parts[3]) return false;
  const digest = createHmac("sha1", Buffer.from(parts[2], "base64")).update(name).digest("base64");
  return digest === parts[3];
}

/**
 * True when a known_hosts host field matches `name` (from {@link knownHostName}): hashed
 * entries, comma-separated patterns with `*` and `?`, and `!` negations (a matching
 * negation wins), as OpenSSH's `match_hostname` does.
 */
export function hostFieldMatches(field: string, name: string): boolean {
  if (field.startsWith("|")) return hashedMatches(field, name);
  let matched = false;
  for (const raw of field.split(",")) {
    const negated = raw.startsWith("!");
    const pattern = negated ? raw.slice(1) : raw;
    if (pattern === "" || !globToRegExp(pattern).test(name)) continue;
    if (negated) return false;
    matched = true;
  }
  return matched;
}

/** Decodes the key type (first SSH string) from a public key blob. */
export function keyTypeOf(blob: Uint8Array): string {
  const buf = Buffer.from(blob);
  if (buf.length < 4) return "unknown";
  const len = buf.readUInt32BE(0);
  if (len > 64 || buf.length < 4 + len) return "unknown";
  return buf.subarray(4, 4 + len).toString("latin1");
}

/** `SHA256:…` fingerprint of a public key blob, as `ssh-keygen -l` prints it. */
export function sha256Fingerprint(blob: Uint8Array): string {
  return `SHA256:${createHash("sha256").update(blob).digest("base64").replace(/=+$/, "")}`;
}

/** Checks `blob` against the entries for `name`. Revocations win, then matches, then changes. */
export function checkHostKey(entries: readonly KnownHostEntry[], name: string, blob: Uint8Array): HostKeyVerdict {
  const key = Buffer.from(blob).toString("base64");
  const type = keyTypeOf(blob);
  const revoked = entries.find((e) => e.marker === "revoked" && e.key === key);
  if (revoked) return { status: "revoked", entry: revoked };
  const forHost = entries.filter((e) => e.marker === undefined && hostFieldMatches(e.hosts, name));
  const same = forHost.find((e) => e.key === key);
  if (same) return { status: "known", entry: same };
  const changed = forHost.filter((e) => e.keyType === type);
  if (changed.length > 0) return { status: "changed", entries: changed };
  return { status: "unknown", otherTypes: [...new Set(forHost.map((e) => e.keyType))] };
}

/** Key types known_hosts holds for `name`, in file order (to prefer them in the handshake). */
export function knownKeyTypes(entries: readonly KnownHostEntry[], name: string): string[] {
  const types = entries.filter((e) => e.marker === undefined && hostFieldMatches(e.hosts, name)).map((e) => e.keyType);
  return [...new Set(types)];
}

/** A known_hosts line for `name` and `blob`; hashed (`|1|salt|hash`) when asked. */
export function formatKnownHostsLine(name: string, blob: Uint8Array, hash = false): string {
  const key = Buffer.from(blob).toString("base64");
  let host = name;
  if (hash) {
    const salt = randomBytes(20);
    host = `|1|${salt.toString("base64")}|${createHmac("sha1", salt).update(name).digest("base64")}`;
  }
  return `${host} ${keyTypeOf(blob)} ${key}`;
}

/** Reads and parses known_hosts files; missing files count as empty. */
export async function readKnownHosts(paths: readonly string[]): Promise<KnownHostEntry[]> {
  const all: KnownHostEntry[] = [];
  for (const path of paths) {
    let text: string;
    try {
      text = await readFile(path, "utf8");
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") continue;
      throw err;
    }
    all.push(...parseKnownHosts(text, path));
  }
  return all;
}

/** Appends a line to a known_hosts file, creating it (0600) and its folder (0700) when missing. */
export async function appendKnownHost(path: string, line: string): Promise<void> {
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  let prefix = "";
  try {
    const text = await readFile(path, "utf8");
    if (text.length > 0 && !text.endsWith("\n")) prefix = "\n";
  } catch {
    // New file.
  }
  await appendFile(path, `${prefix}${line}\n`, { mode: 0o600 });
}

/** ssh2's host key algorithms (Node 20 has ed25519), in its default order. */
const HOST_KEY_ALGORITHMS = [
  "ssh-ed25519",
  "ecdsa-sha2-nistp256",
  "ecdsa-sha2-nistp384",
  "ecdsa-sha2-nistp521",
  "rsa-sha2-512",
  "rsa-sha2-256",
  "ssh-rsa",
];

/**
 * Host key algorithms with those whose key type known_hosts already holds first, as
 * OpenSSH orders them: a host known by its RSA key is then not refused as "unknown"
 * because the server also has an ed25519 key the client would otherwise prefer.
 */
export function preferredHostKeyAlgorithms(knownTypes: readonly string[]): string[] {
  const first: string[] = [];
  for (const type of knownTypes) {
    const algos = type === "ssh-rsa" ? ["rsa-sha2-512", "rsa-sha2-256", "ssh-rsa"] : [type];
    for (const a of algos) if (HOST_KEY_ALGORITHMS.includes(a) && !first.includes(a)) first.push(a);
  }
  return [...first, ...HOST_KEY_ALGORITHMS.filter((a) => !first.includes(a))];
}
