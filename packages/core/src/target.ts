import { UsageError } from "./errors.js";

/** The embedded local connector; `endpointDir` absent means "run the agent from the package". */
export interface LocalTarget {
  kind: "local";
  endpointDir?: string;
}
/** `ssh://[user@]host[:port]`. */
export interface SshTarget {
  kind: "ssh";
  host: string;
  user?: string;
  port?: number;
}
/** `newt://machine` — NERSC NEWT REST API. */
export interface NewtTarget {
  kind: "newt";
  machine: string;
}
/** `sfapi://machine` — NERSC Superfacility API. */
export interface SfapiTarget {
  kind: "sfapi";
  machine: string;
}
/** Where calls go, parsed from a target string. */
export type Target = LocalTarget | SshTarget | NewtTarget | SfapiTarget;

const HOST =
  /^(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*|\[[0-9A-Fa-f:.]+\])$/;
const USER = /^[A-Za-z0-9._][A-Za-z0-9._-]*\$?$/;
const MACHINE = /^[a-z0-9][a-z0-9_-]*$/;

function invalid(text: string, why: string): never {
  throw new UsageError(
    `invalid target ${JSON.stringify(text)}: ${why}. Expected local:[/endpoint/dir], ssh://[user@]host[:port], newt://machine or sfapi://machine`,
    { code: "INVALID_TARGET" },
  );
}

/**
 * Parses a target string into a typed {@link Target}.
 *
 * @throws UsageError (`INVALID_TARGET`) saying what is wrong and what is expected.
 */
export function parseTarget(text: string): Target {
  if (typeof text !== "string" || text.length === 0) invalid(String(text), "empty");
  if (text === "local" || text.startsWith("local:")) {
    const rest = text === "local" ? "" : text.slice("local:".length);
    if (rest === "") return { kind: "local" };
    if (!rest.startsWith("/")) invalid(text, "the endpoint folder of local: must be an absolute path");
    if (rest.includes("\0")) invalid(text, "NUL byte in path");
    return { kind: "local", endpointDir: rest.length > 1 ? rest.replace(/\/+$/, "") : rest };
  }
  const m = /^([a-z]+):\/\/(.*)$/.exec(text);
  if (!m) invalid(text, "unknown form");
  const scheme = m[1] as string;
  const rest = m[2] as string;
  if (scheme === "ssh") {
    const hm = /^(?:([^@/]+)@)?(\[[^\]]+\]|[^:/@]+)(?::(\d+))?\/?$/.exec(rest);
    if (!hm) invalid(text, "expected ssh://[user@]host[:port]");
    const [, user, host, port] = hm;
    if (user !== undefined && !USER.test(decodeURIComponent(user)))
      invalid(text, `bad user name ${JSON.stringify(user)}`);
    if (!host || !HOST.test(host)) invalid(text, `bad host name ${JSON.stringify(host)}`);
    const target: SshTarget = { kind: "ssh", host: host.startsWith("[") ? host.slice(1, -1) : host };
    if (user !== undefined) target.user = decodeURIComponent(user);
    if (port !== undefined) {
      const n = Number(port);
      if (!Number.isInteger(n) || n < 1 || n > 65535) invalid(text, `port must be 1-65535, got ${port}`);
      target.port = n;
    }
    return target;
  }
  if (scheme === "newt" || scheme === "sfapi") {
    const machine = rest.replace(/\/$/, "");
    if (!MACHINE.test(machine))
      invalid(text, `machine name must be lower-case letters, digits, - or _, got ${JSON.stringify(machine)}`);
    return { kind: scheme, machine };
  }
  invalid(text, `unknown scheme ${JSON.stringify(scheme)}`);
}

/** The canonical string form of a target (inverse of {@link parseTarget}). */
export function formatTarget(target: Target): string {
  switch (target.kind) {
    case "local":
      return target.endpointDir ? `local:${target.endpointDir}` : "local:";
    case "ssh": {
      const host = target.host.includes(":") ? `[${target.host}]` : target.host;
      return `ssh://${target.user ? `${encodeURIComponent(target.user)}@` : ""}${host}${target.port ? `:${target.port}` : ""}`;
    }
    case "newt":
    case "sfapi":
      return `${target.kind}://${target.machine}`;
  }
}
