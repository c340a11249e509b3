import { AGENT_VERSION, agentManifest, readRemoteManifest } from "@sremote/agent";
import {
  type Connector,
  hasErrorCode,
  interpreterPath,
  type OperationOptions,
  posixJoin,
  type RemoteLayout,
} from "@sremote/core";
import { manifestMatches } from "./agent-check.js";
import { describeExit } from "./command-failures.js";
import { MARKER_FILE, PREAMBLE_FILE, STATE_FILE, VENV_DIR } from "./endpoint-files.js";
import { locateEndpoint } from "./endpoint-layout.js";
import { logTail } from "./errors.js";
import { runOperation } from "./operation.js";
import type { OperationCounts } from "./operation-counts.js";
import { readOptionalText } from "./paths.js";
import { parseAgentInfo, parseProbe } from "./python-probe.js";
import { COMMAND_ENV, wrap } from "./remote-commands.js";
import { remoteScript } from "./remote-scripts.js";
import { type Distribution, distributionsPresent } from "./sources.js";
import { type InstallState, type PackageRecord, parseState } from "./state.js";

/** Options of {@link doctor}. */
export interface DoctorOptions extends OperationOptions {
  /** Local folder holding the agent's files (default: `$SREMOTE_AGENT_DIR`, else the installed `@sremote/agent`); for bundled apps. */
  agentDir?: string | undefined;
  /** The layout to check instead of the user's `.location` (a target that carries one). */
  layout?: RemoteLayout | undefined;
  /**
   * The layout's endpoint is the client's own packaged agent (the CLI's `local:` without a
   * folder): there is no install to check, only Python.
   */
  agentFromPackage?: boolean | undefined;
  /** Python to report on (`SREMOTE_PYTHON` for `interpreter.sh --info`). */
  python?: string | undefined;
  /** How the user names the target, for the fix commands (default `<target>`). */
  target?: string | undefined;
  /** Run the commands in a login environment. */
  loginEnv?: boolean | undefined;
}

/** One problem and the command that fixes it. */
export interface DoctorProblem {
  problem: string;
  fix: string;
}

/** A package the installer recorded, and whether its distributions are still installed. */
export interface RecordedPackage extends PackageRecord {
  present: boolean;
}

/** What {@link doctor} found. */
export interface DoctorReport {
  homeDir: string;
  layout: RemoteLayout & { source: "location" | "default" | "given" | "package" };
  /** `~/.sremote/.location`. */
  locationPath: string;
  agent: { installedVersion: string | null; clientVersion: string; upToDate: boolean };
  /** `interpreter.sh --info` (the agent's `hello.agent`: python, implementation, executable, codec, numpy…). */
  python: Record<string, unknown> | null;
  /** `"c"` (msgpack's C extension) or `"pure"`, when Python ran. */
  codec: "c" | "pure" | null;
  install: {
    /** The last install finished (its completion marker exists). */
    complete: boolean;
    /** The installer's state file, `null` when none. */
    state: InstallState | null;
    /** The endpoint has a venv. */
    venv: boolean;
    shared: boolean | null;
    /** The endpoint belongs to this account. */
    owner: boolean | null;
  };
  /** Distributions installed where calls run (the venv, else the endpoint's Python). */
  packages: Distribution[];
  /** Packages the installer recorded. */
  recorded: RecordedPackage[];
  permissions: {
    /** Files and folders in the endpoint writable by group or others (at most 20). */
    groupOrWorldWritable: string[];
    /** The temp folder is mode 0700 and this account's; `null` when it does not exist yet. */
    tmpPrivate: boolean | null;
  };
  problems: DoctorProblem[];
  operations: OperationCounts;
}

function facts(stdout: string): { has: Set<string>; gw: string[]; flags: Set<string> } {
  const has = new Set<string>();
  const gw: string[] = [];
  const flags = new Set<string>();
  for (const line of stdout.split("\n")) {
    if (line.startsWith("has ")) has.add(line.slice(4));
    else if (line.startsWith("gw ")) gw.push(line.slice(3));
    else if (line.trim()) flags.add(line.trim());
  }
  return { has, gw, flags };
}

function sourceFlag(p: PackageRecord): string {
  const q = (s: string) => (/^[A-Za-z0-9_@%+=:,./-]+$/.test(s) ? s : `'${s.replaceAll("'", `'\\''`)}'`);
  if (p.kind === "git") return `--git ${q(p.source)}`;
  if (p.kind === "local") return `--local ${q(p.source)}`;
  return `--package ${q(p.source)}`;
}

/**
 * Checks an endpoint without changing anything: layout, agent version against the client's,
 * Python (version, codec), the venv and its packages, what the installer recorded, and
 * permissions. Each problem comes with the command that fixes it.
 *
 * @throws ConnectorError for transport failures only; everything found remotely is reported.
 */
export async function doctor(connector: Connector, options: DoctorOptions = {}): Promise<DoctorReport> {
  return runOperation("doctor", connector, options, async ({ connector: c, counts, signal }) => {
    const op = { signal };
    const target = options.target ?? "<target>";
    const install = `sremote install ${target}`;
    const problems: DoctorProblem[] = [];
    const run = (argv: string[], env: Record<string, string> = {}) =>
      c.exec(argv, { ...op, env: { ...COMMAND_ENV, ...env }, loginEnv: options.loginEnv ?? false, timeoutMs: 120_000 });
    const found = await locateEndpoint(c, { layout: options.layout }, op);
    const { homeDir, current } = found;
    if (found.source !== "given" && current.error) {
      problems.push({
        problem: `invalid ${current.path}: ${current.error.message}`,
        fix: `fix or delete ${current.path}, then ${install}`,
      });
    }
    const source =
      found.source === "given" || found.source === "dir"
        ? options.agentFromPackage
          ? "package"
          : "given"
        : found.source;
    const layout: DoctorReport["layout"] = { ...found.layout, source };
    const ep = layout.endpointDir;
    const packaged = layout.source === "package";

    const [manifest, local, stateText, survey] = await Promise.all([
      packaged
        ? null
        : readRemoteManifest(c, ep, op).catch((err) =>
            hasErrorCode(err, "FILE_NOT_FOUND") ? null : Promise.reject(err),
          ),
      agentManifest(options.agentDir),
      packaged ? null : readOptionalText(c, posixJoin(ep, STATE_FILE), op),
      run(["sh", "-c", remoteScript("doctor.sh"), "sh", ep, layout.tmpDir, layout.workDir]),
    ]);
    const f = facts(survey.stdout);
    const state = stateText === null ? null : parseState(stateText);
    const owner = f.flags.has("owner yes") ? true : f.flags.has("owner no") ? false : null;

    const upToDate = packaged || manifestMatches(manifest, local);
    const installedVersion = packaged ? AGENT_VERSION : (manifest?.version ?? null);
    if (!packaged && !f.has.has("endpoint")) {
      problems.push({ problem: `no endpoint at ${ep}`, fix: install });
    } else if (!upToDate) {
      problems.push({
        problem: manifest
          ? `agent ${manifest.version} in ${ep} differs from the client's ${AGENT_VERSION}`
          : `no agent in ${ep}`,
        fix:
          owner === false
            ? `ask the endpoint's owner to run sremote install on it (it belongs to another account)`
            : `${install}  (or make any call: the client uploads the agent itself)`,
      });
    }
    if (!packaged && f.has.has("endpoint") && state !== null && !f.has.has(MARKER_FILE)) {
      problems.push({ problem: `the last install into ${ep} did not finish`, fix: install });
    }

    // Python, as calls will see it.
    let python: Record<string, unknown> | null = null;
    if (packaged || f.has.has("interpreter.sh")) {
      const env: Record<string, string> = options.python ? { SREMOTE_PYTHON: options.python } : {};
      const info = await run(["sh", interpreterPath(layout), "--info", ep], env);
      if (info.exitCode === 0) {
        python = parseAgentInfo(info.stdout);
        if (!python) {
          problems.push({
            problem: `interpreter.sh --info printed no JSON: ${info.stdout.slice(0, 200)}`,
            fix: install,
          });
        }
      } else {
        problems.push({
          problem: `Python does not start through ${interpreterPath(layout)} (${describeExit(info)}): ${logTail(info.stderr, 5)}`,
          fix: info.exitCode === 4 ? `${install} --python /path/to/python3` : `${install} --force`,
        });
      }
    }
    const codec = python?.codec === "c" || python?.codec === "pure" ? python.codec : null;

    // Packages where calls run.
    let packages: Distribution[] = [];
    const venvPython = posixJoin(ep, `${VENV_DIR}/bin/python`);
    const listWith = f.has.has(`${VENV_DIR}/bin/python`)
      ? venvPython
      : typeof python?.executable === "string"
        ? python.executable
        : null;
    if (listWith) {
      const preamble = f.has.has(PREAMBLE_FILE) ? posixJoin(ep, PREAMBLE_FILE) : "";
      const r = await run(wrap([listWith, "-c", remoteScript("venvinfo.py")], { preamble, umask: "077" }));
      const parsed = parseProbe(r.stdout).venv;
      if (parsed) {
        packages = Object.entries(parsed.distributions)
          .map(([name, version]) => ({ name, version }))
          .sort((a, b) => a.name.localeCompare(b.name));
      }
    }
    const installed = Object.fromEntries(packages.map((x) => [x.name, x.version]));
    const recorded: RecordedPackage[] = (state?.packages ?? []).map((p) => ({
      ...p,
      present: distributionsPresent(p.distributions, installed),
    }));
    for (const p of recorded) {
      if (!p.present) {
        problems.push({
          problem: `${p.source} was installed (${p.distributions.map((x) => `${x.name} ${x.version}`).join(", ")}) but is missing now`,
          fix: `${install} ${sourceFlag(p)}`,
        });
      }
    }

    // Permissions.
    if (f.gw.length > 0) {
      problems.push({
        problem: `writable by group or others in ${ep}: ${f.gw.join(", ")}`,
        fix: owner === false ? `ask the endpoint's owner to run: chmod -R go-w ${ep}` : `chmod -R go-w ${ep}`,
      });
    }
    if (!packaged && owner === true && state?.shared === false && f.flags.has("endpoint-not-private")) {
      problems.push({ problem: `the private endpoint ${ep} is not mode 0700`, fix: `chmod 700 ${ep}` });
    }
    let tmpPrivate: boolean | null = null;
    if (!packaged && f.has.has("tmp")) {
      tmpPrivate = !f.flags.has("tmp-mode-wrong") && !f.flags.has("tmp-not-owned");
      if (f.flags.has("tmp-not-owned")) {
        problems.push({
          problem: `the temp folder ${layout.tmpDir} belongs to another account`,
          fix: `use a private one: sremote attach ${target} ${ep}  (temp folder ~/.sremote/tmp)`,
        });
      } else if (f.flags.has("tmp-mode-wrong")) {
        problems.push({
          problem: `the temp folder ${layout.tmpDir} is not mode 0700`,
          fix: `chmod 700 ${layout.tmpDir}`,
        });
      }
    }

    return {
      homeDir,
      layout,
      locationPath: current.path,
      agent: { installedVersion, clientVersion: AGENT_VERSION, upToDate },
      python,
      codec,
      install: {
        complete: f.has.has(MARKER_FILE),
        state,
        venv: f.has.has(`${VENV_DIR}/bin/python`),
        shared: state?.shared ?? null,
        owner,
      },
      packages,
      recorded,
      permissions: { groupOrWorldWritable: f.gw, tmpPrivate },
      problems,
      operations: { ...counts },
    };
  });
}
