import type { RemoteLayout } from "@sremote/client";
import type { Connector } from "@sremote/core";
import { type InstallError, type InstallEvent, install } from "@sremote/installer";

/** Where QDO comes from. */
export interface QdoSource {
  url: string;
  ref: string;
  /** `undefined`: the repository root, else its `py/` folder (the installer tries them in that order). */
  subdir: string | undefined;
}

/** How the QDO install ended. */
export type QdoInstallOutcome =
  /** QDO is in the endpoint's venv; `folder` says which part of the repository was installed. */
  | { kind: "installed"; layout: RemoteLayout; folder: string; skipped: boolean; durationMs: number }
  /** The repository could not be read or cloned: no QDO flows, and that is not a failure. */
  | { kind: "unreachable"; reason: string }
  /** Anything else went wrong (no venv support, a bad ref, a failed build): a real failure. */
  | { kind: "failed"; reason: string; fix?: string | undefined };

/** The installer's progress as plain lines. */
export function formatInstallEvent(event: InstallEvent): string | undefined {
  const subject = "subject" in event ? event.subject : undefined;
  const about = subject && !("message" in event && event.message.includes(subject)) ? ` [${subject}]` : "";
  switch (event.type) {
    case "step-start":
      return `install  ${event.step.padEnd(11)} … ${event.message}${about}`;
    case "step-end":
      return `install  ${event.step.padEnd(11)} ${event.outcome}: ${event.message} (${Math.round(event.durationMs)} ms)`;
    case "output":
      return `install  ${event.step.padEnd(11)}   | ${event.line}`;
    case "upload":
      return `install  ${event.step.padEnd(11)}   uploaded ${event.path} (${event.bytes} bytes)`;
    case "warning":
      return `install  ${event.step.padEnd(11)} warning: ${event.message}`;
  }
}

/**
 * Installs QDO from git into the target's endpoint (agent, Python, venv included), the way
 * the original's `do_install_git_module` did, printing the installer's events.
 */
export async function installQdo(
  connector: Connector,
  source: QdoSource,
  options: {
    layout: RemoteLayout | undefined;
    python: string | undefined;
    index: boolean;
    systemSitePackages: boolean;
    print: (line: string) => void;
  },
): Promise<QdoInstallOutcome> {
  let usedPy = false;
  let packageStep: "done" | "skipped" | undefined;
  try {
    const result = await install(connector, {
      layout: options.layout,
      python: options.python,
      index: options.index ? true : undefined,
      systemSitePackages: options.systemSitePackages ? true : undefined,
      packages: [{ kind: "git", url: source.url, ref: source.ref, subdir: source.subdir }],
      onProgress: (event) => {
        if (event.type === "output" && /using the subfolder py\//.test(event.line)) usedPy = true;
        if (event.type === "step-end" && event.step === "package" && event.outcome !== "failed") {
          packageStep = event.outcome;
        }
        const line = formatInstallEvent(event);
        if (line !== undefined) options.print(line);
      },
    });
    const skipped = packageStep === "skipped";
    const folder =
      source.subdir !== undefined
        ? `${source.subdir}/ (as asked)`
        : skipped
          ? "as at the previous install (unchanged since)"
          : usedPy
            ? "py/ (the repository root is not a Python project)"
            : "the repository root";
    return { kind: "installed", layout: result.layout, folder, skipped, durationMs: result.durationMs };
  } catch (err) {
    // Transport failures (refused, auth, host key), timeouts and bad options end the run.
    if (!(err instanceof Error) || err.name !== "InstallError") throw err;
    const failure = err as InstallError;
    if (isUnreachable(failure)) return { kind: "unreachable", reason: reasonOf(failure) };
    return { kind: "failed", reason: failure.message.split("\n")[0] ?? failure.message, fix: failure.fix };
  }
}

/**
 * The source could not be read: `git ls-remote` failed or git is missing (the installer
 * checks sources before changing anything), or the clone itself failed.
 */
function isUnreachable(e: InstallError): boolean {
  if (e.step === "sources")
    return e.code === "COMMAND_FAILED" || (e.code === "NOT_SET_UP" && /git is not/.test(e.message));
  return e.step === "package" && e.code === "COMMAND_FAILED" && /clon/i.test(e.message.split("\n")[0] ?? "");
}

/** One line: git's own first complaint (`fatal: …`) when it said something, else the installer's message. */
function reasonOf(err: InstallError): string {
  const lines = (err.log ?? "")
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l !== "");
  const said = lines.find((l) => /^(fatal|error):/i.test(l)) ?? lines[0];
  return said ?? err.message.split("\n")[0] ?? err.message;
}
