import { parseArgs } from "node:util";
import type { ConnectionFlags } from "@sremote/cli";
import { UsageError } from "@sremote/client";

/** The public QDO repository the original installer cloned. */
export const DEFAULT_QDO_URL = "https://bitbucket.org/berkeleylab/qdo.git";
export const DEFAULT_QDO_REF = "master";

/** What the command line asked for. */
export interface QdoClientOptions {
  /** `local:`, `local:/dir`, `ssh://user@host[:port]`, `newt://machine` or `sfapi://machine`. */
  target: string;
  connection: ConnectionFlags;
  qdo: {
    url: string;
    ref: string;
    /** The folder holding QDO's setup.py; `undefined`: the root, else `py/` (the installer decides). */
    subdir: string | undefined;
  };
  /** Let pip use the package index for QDO (build tools, dependencies); default: offline build. */
  index: boolean;
  /** Create the endpoint's venv with the system's site packages (setuptools, wheel). */
  systemSitePackages: boolean;
  /** Skip the install step and use whatever the endpoint already has. */
  noInstall: boolean;
  /** Per-call time limit. */
  timeoutMs: number;
  help: boolean;
}

export const HELP = `Usage: qdo-client [options] <target>

Installs QDO into the target's SRemote endpoint from its git repository, then runs the
original SRemote client flows: qdo.valid_queue_name with a list and with a dict, the three
error kinds, environment variables and a PATH entry read back with os.getenv, and a table
of call times. When the QDO source cannot be reached it says so, skips the QDO flows and
runs the rest (no stand-in QDO is ever used).

Targets:
  local:                  this machine; installs into ~/.sremote
  local:/dir              this machine, endpoint in /dir
  ssh://user@host[:port]  OpenSSH server (keys from --identity, ssh-agent or ~/.ssh)
  newt://machine          NERSC NEWT; credentials from SREMOTE_NEWT_USER and
                          SREMOTE_NEWT_PASSWORD (or SREMOTE_NEWT_SESSION_ID)
  sfapi://machine         NERSC Superfacility API; the client key from --key-file
                          (or SREMOTE_SFAPI_KEY_FILE), or a token in SREMOTE_SFAPI_TOKEN

Options:
  --qdo-url URL           QDO's git repository (default ${DEFAULT_QDO_URL})
  --qdo-ref REF           branch, tag or commit (default ${DEFAULT_QDO_REF})
  --qdo-subdir DIR        folder of the Python package in the repository
                          (default: the root, else py/)
  --index                 let pip use the package index when installing QDO (build
                          tools, dependencies); default: build offline
  --system-site-packages  give the endpoint's venv the system's packages (e.g. Debian's
                          python3-wheel, to build QDO offline)
  --no-install            do not install; use the QDO the endpoint already has
  --python PATH           Python on the remote that the endpoint's venv is made from
                          (default python3); calls run in that venv, or in this
                          Python when QDO could not be installed
  --identity FILE         SSH private key
  --known-hosts FILE      SSH known_hosts file (default ~/.ssh/known_hosts)
  --ssh-config FILE       ssh config file (default ~/.ssh/config when present)
  --password-env VAR      name of the environment variable holding the SSH password
  --newt-url URL          NEWT base URL (default SREMOTE_NEWT_URL, else NERSC's)
  --key-file FILE         SFAPI client key file (Iris: client id, then the PEM)
  --sfapi-url URL         SFAPI base URL (default SREMOTE_SFAPI_URL, else NERSC's)
  --token-url URL         SFAPI token URL (default SREMOTE_SFAPI_TOKEN_URL, else NERSC's)
  --timeout-ms N          time limit of one call (default 120000)
  -h, --help              this text

Exit status: 0 when every flow that ran behaved as expected (expected errors included),
1 when one did not, 2 for a usage error.
`;

/** Parses argv (without node and the script). @throws UsageError for bad options. */
export function parseOptions(argv: readonly string[]): QdoClientOptions {
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse(argv);
  } catch (err) {
    throw new UsageError(err instanceof Error ? err.message : String(err));
  }
  const { values, positionals } = parsed;
  const help = values.help === true;
  if (!help && positionals.length !== 1) {
    throw new UsageError(
      positionals.length === 0
        ? "a target is needed: local:, local:/dir, ssh://user@host[:port], newt://machine or sfapi://machine (see --help)"
        : `one target only, got ${positionals.length}: ${positionals.join(" ")}`,
    );
  }
  const timeoutMs = values["timeout-ms"] === undefined ? 120_000 : Number(values["timeout-ms"]);
  if (!Number.isInteger(timeoutMs) || timeoutMs <= 0) {
    throw new UsageError(`--timeout-ms must be a positive integer, got ${values["timeout-ms"]}`);
  }
  return {
    target: positionals[0] ?? "",
    connection: {
      python: values.python,
      identity: values.identity,
      knownHosts: values["known-hosts"],
      sshConfig: values["ssh-config"],
      passwordEnv: values["password-env"],
      newtUrl: values["newt-url"],
      keyFile: values["key-file"],
      sfapiUrl: values["sfapi-url"],
      tokenUrl: values["token-url"],
    },
    qdo: {
      url: values["qdo-url"] ?? DEFAULT_QDO_URL,
      ref: values["qdo-ref"] ?? DEFAULT_QDO_REF,
      subdir: values["qdo-subdir"],
    },
    index: values.index === true,
    systemSitePackages: values["system-site-packages"] === true,
    noInstall: values["no-install"] === true,
    timeoutMs,
    help,
  };
}

function parse(argv: readonly string[]) {
  return parseArgs({
    args: [...argv],
    allowPositionals: true,
    strict: true,
    options: {
      "qdo-url": { type: "string" },
      "qdo-ref": { type: "string" },
      "qdo-subdir": { type: "string" },
      index: { type: "boolean" },
      "system-site-packages": { type: "boolean" },
      "no-install": { type: "boolean" },
      python: { type: "string" },
      identity: { type: "string" },
      "known-hosts": { type: "string" },
      "ssh-config": { type: "string" },
      "password-env": { type: "string" },
      "newt-url": { type: "string" },
      "key-file": { type: "string" },
      "sfapi-url": { type: "string" },
      "token-url": { type: "string" },
      "timeout-ms": { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
}
