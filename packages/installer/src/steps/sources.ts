import { basename } from "node:path";
import { shQuote } from "@sremote/core";
import { describeExit } from "../command-failures.js";
import { InstallError, logTail } from "../errors.js";
import { canBuildWheels } from "../python-probe.js";
import { wrap } from "../remote-commands.js";
import { describeSource, distributionsPresent, type GitPackage, type PackageSource, sourceKey } from "../sources.js";
import { type InstallRun, type ProbedRun, SHORT_TIMEOUT, wrapOptions } from "./context.js";

/** The fix of every "cannot build offline" failure. */
export const BUILD_HELP =
  "give the venv wheel-building tools: --system-site-packages (uses the system's setuptools and wheel, e.g. Debian's python3-wheel), --local /path/to/wheel-*.whl before this package, or --index to let pip fetch them; or build a wheel on this machine and pass it with --local";

/** A git repository, local folder or sdist: built into a wheel on the remote. */
export function isSourceBuild(r: InstallRun, source: PackageSource): boolean {
  if (source.kind === "git") return true;
  const kind = r.inputs.locals.get(source)?.kind;
  return kind === "folder" || kind === "sdist";
}

/** The package index for one source: the `index` option, else pip's for specs only. */
export function indexFor(r: InstallRun, source: PackageSource): boolean | string {
  return r.options.index ?? source.kind === "spec";
}

/**
 * `sources`: resolves git refs (`git ls-remote` on the remote) and checks that sources can be
 * built offline. Changes nothing. Returns the commit of every git package.
 */
export async function checkSources(r: ProbedRun): Promise<Map<PackageSource, string>> {
  const sources = r.inputs.sources;
  const commits = new Map<PackageSource, string>();
  if (sources.length === 0) return commits;
  await r.recorder.run("sources", "checking the package sources", async () => {
    const found: string[] = [];
    for (const source of sources) {
      if (source.kind !== "git") continue;
      let commit: string;
      try {
        commit = await resolveGitRef(r, source);
      } catch (err) {
        const kept = installedCommit(r, source, err);
        if (kept === null) throw err;
        commit = kept;
        r.recorder.emit({
          type: "warning",
          step: "sources",
          message: `cannot reach ${source.url} (${(err as InstallError).headline}); keeping the installed commit ${commit.slice(0, 12)} — the ref was not re-checked`,
        });
      }
      commits.set(source, commit);
      found.push(`${describeSource(source)} → ${commit.slice(0, 12)}`);
    }
    // Sources built offline need setuptools and wheel somewhere: fail now rather than half-way.
    const offlineBuilds = sources.filter((s) => isSourceBuild(r, s) && indexFor(r, s) === false);
    if (offlineBuilds.length > 0) {
      const { base, venvInfo, venvReasons } = r.python;
      const baseCan = base.pip && canBuildWheels(base.setuptools, base.wheel);
      const venvCan =
        venvReasons.length > 0 || !venvInfo
          ? r.plan.systemSitePackages && canBuildWheels(base.setuptools, base.wheel)
          : canBuildWheels(venvInfo.setuptools, venvInfo.wheel);
      const bringsTools = sources.some(
        (s) => s.kind === "local" && /^(wheel|setuptools)-[^/]*\.whl$/.test(basename(s.path)),
      );
      if (!venvCan && !baseCan && !bringsTools) {
        throw new InstallError(
          "NOT_SET_UP",
          `cannot build ${offlineBuilds.map(describeSource).join(", ")} offline: neither the venv nor ${base.executable} (setuptools ${base.setuptools ?? "missing"}, wheel ${base.wheel ? "present" : "missing"}) can build wheels`,
          { step: "sources", fix: BUILD_HELP },
        );
      }
    }
    return { changed: false, message: found.length > 0 ? found.join("; ") : `${sources.length} package(s) to check` };
  });
  return commits;
}

/**
 * The commit to keep when `git ls-remote` could not reach a git package's repository:
 * the recorded one, when the same URL, ref and subfolder are installed and their
 * distributions are still in a venv that stays. `null` (fail) when the package is new,
 * would be reinstalled anyway (--upgrade, --force, a new venv) or the error is not about
 * reaching the repository.
 */
function installedCommit(r: ProbedRun, source: GitPackage, err: unknown): string | null {
  if (!(err instanceof InstallError) || err.code !== "COMMAND_FAILED") return null;
  const { venvInfo, venvReasons } = r.python;
  if (r.options.upgrade || r.options.force || venvReasons.length > 0 || !venvInfo) return null;
  const recorded = r.plan.state.packages.find((p) => p.key === sourceKey(source));
  if (!recorded || recorded.distributions.length === 0 || !/^[0-9a-f]{40,64}$/.test(recorded.resolved)) return null;
  return distributionsPresent(recorded.distributions, venvInfo.distributions) ? recorded.resolved : null;
}

/** `git ls-remote` on the remote: the commit a branch, tag or HEAD names. */
async function resolveGitRef(r: ProbedRun, source: GitPackage): Promise<string> {
  const subject = describeSource(source);
  if (!r.python.git) {
    throw new InstallError("NOT_SET_UP", `git is not installed on the remote; it is needed to clone ${source.url}`, {
      step: "sources",
      fix: "install git there (apt-get install git, or --preamble 'module load git'), or clone the repository on this machine and pass the folder with --local",
    });
  }
  const res = await r.remote.run(wrap(["git", "ls-remote", source.url], wrapOptions(r, false)), {
    step: "sources",
    subject,
    timeoutMs: SHORT_TIMEOUT,
  });
  if (res.exitCode !== 0) {
    // git refuses repositories another account owns (CVE-2022-24765): trusting one is the user's call.
    const dubious = /detected dubious ownership in repository at '([^'\n]+)'/.exec(res.stderr);
    if (dubious) {
      throw new InstallError(
        "PERMISSION_DENIED",
        `git on the remote refuses ${source.url}: the repository belongs to another account (git's safe.directory check)`,
        {
          step: "sources",
          fix: `if you trust the repository's owner, run on the remote as this account: git config --global --add safe.directory ${shQuote(dubious[1] as string)}; or clone it on this machine and pass the folder with --local`,
          log: logTail(res.stderr, 10),
        },
      );
    }
    throw new InstallError(
      "COMMAND_FAILED",
      `git cannot read the repository ${source.url} from the remote (${describeExit(res)})`,
      {
        step: "sources",
        fix: "check the URL and that the remote account can reach and read it (git ls-remote <url> there)",
        log: logTail(res.stderr || res.stdout, 10),
      },
    );
  }
  const refs = new Map<string, string>();
  for (const line of res.stdout.split("\n")) {
    const [sha, name] = line.trim().split(/\s+/);
    if (sha && name) refs.set(name, sha);
  }
  const ref = source.ref;
  if (ref === undefined) {
    const head = refs.get("HEAD");
    if (head) return head;
    throw new InstallError("INVALID_ARGUMENT", `${source.url} has no HEAD: name a branch or tag (url@branch)`, {
      step: "sources",
    });
  }
  for (const name of [`refs/tags/${ref}^{}`, `refs/tags/${ref}`, `refs/heads/${ref}`, ref]) {
    const sha = refs.get(name);
    if (sha) return sha;
  }
  if (/^[0-9a-f]{40}$/i.test(ref)) return ref.toLowerCase();
  const names = [...refs.keys()]
    .filter((n) => n.startsWith("refs/heads/") || (n.startsWith("refs/tags/") && !n.endsWith("^{}")))
    .map((n) => n.replace(/^refs\/(heads|tags)\//, ""))
    .slice(0, 20);
  throw new InstallError("INVALID_ARGUMENT", `${source.url} has no branch or tag ${JSON.stringify(ref)}`, {
    step: "sources",
    fix: `use one of: ${names.join(", ") || "(none)"}; or a full 40-character commit id`,
  });
}
