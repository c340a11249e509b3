import type { DoctorReport as InstallerDoctorReport } from "@sremote/installer";
import { EXIT, exitCodeFor } from "../exit-codes.js";
import { type CliIO, redactingIO } from "../io.js";
import { printable } from "../progress.js";
import { type ConnectionFlags, openTarget } from "../targets.js";
import { reportError } from "./call.js";

/** What `sremote doctor` prints with `--json`: the installer's report plus the target and connector. */
export interface DoctorReport extends InstallerDoctorReport {
  target: string;
  connector: { name: string; connected: boolean; detail?: string | undefined };
}

/**
 * `sremote doctor <target>`: read-only checks of a target (the installer's `doctor()`).
 * Exit status 0 when healthy, 3 when a problem was found, else as for any command.
 */
export async function doctorCommand(
  targetText: string,
  opts: ConnectionFlags & { json: boolean },
  rawIO: CliIO,
): Promise<number> {
  const password = opts.passwordEnv ? process.env[opts.passwordEnv] : undefined;
  const io = redactingIO(rawIO, password ? [password] : []);
  let opened: Awaited<ReturnType<typeof openTarget>> | undefined;
  try {
    opened = await openTarget(targetText, opts);
    const { connector, clientOptions, target } = opened;
    // local: names its layout (a folder, or the client's own packaged agent); other targets
    // are found the way calls find them, through ~/.sremote/.location.
    const packaged = target.kind === "local" && !target.endpointDir;
    const { doctor } = await import("@sremote/installer");
    const found = await doctor(connector, {
      layout: target.kind === "local" ? clientOptions.layout : undefined,
      agentFromPackage: packaged,
      python: packaged ? clientOptions.python : opts.python,
      target: targetText,
    });
    const status = await connector.status();
    const report: DoctorReport = {
      target: targetText,
      connector: { name: connector.name, connected: status.connected, detail: status.detail },
      ...found,
    };
    if (opts.json) io.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
    else io.stdout.write(renderDoctor(report));
    return report.problems.length === 0 ? EXIT.ok : EXIT.setup;
  } catch (err) {
    reportError(err, io, opts.json);
    return exitCodeFor(err);
  } finally {
    await opened?.connector.close().catch(() => {});
    await opened?.cleanup().catch(() => {});
  }
}

/** Distributions listed by name in the text report (a system Python may have hundreds). */
const PACKAGES_SHOWN = 12;

/** The report as aligned text: one fact a line, then each problem with its fix. */
export function renderDoctor(r: DoctorReport): string {
  const p = r.python ?? {};
  const state = r.install.state;
  const lines = [
    `target     ${r.target} (${r.connector.name}${r.connector.detail ? `, ${r.connector.detail}` : ""})`,
    `endpoint   ${r.layout.endpointDir}  [${r.layout.source}]${r.install.shared ? "  shared" : ""}${r.install.owner === false ? "  (another account's)" : ""}`,
    `temp       ${r.layout.tmpDir}${r.permissions.tmpPrivate === false ? "  (not private)" : ""}`,
    `workdir    ${r.layout.workDir}`,
    `agent      ${r.agent.installedVersion ?? "not installed"} (client ${r.agent.clientVersion})${r.agent.upToDate || r.agent.installedVersion === null ? "" : "  ← differs"}`,
  ];
  if (r.python === null) {
    lines.push("python     not started (no agent to start it with)");
  } else {
    lines.push(
      `python     ${String(p.python ?? "?")} ${String(p.implementation ?? "")} at ${String(p.executable ?? "?")}`,
      `codec      ${r.codec ?? "?"}${r.codec === "pure" ? `  (pure Python; for speed: ${r.layout.source === "package" ? "pip install msgpack for this Python" : `sremote install ${r.target} --package msgpack`})` : ""}`,
    );
  }
  if (r.layout.source !== "package") {
    lines.push(
      `install    ${state ? (r.install.complete ? `complete (${state.updatedAt})` : "incomplete") : "none"}${r.install.venv ? ", venv" : ""}`,
    );
  }
  if (r.recorded.length > 0) {
    for (const [i, pkg] of r.recorded.entries()) {
      const dists = pkg.distributions.map((d) => `${d.name} ${d.version}`).join(", ");
      lines.push(
        `${i === 0 ? "installed  " : "           "}${pkg.source}${dists ? ` → ${dists}` : ""}${pkg.present ? "" : "  (missing)"}`,
      );
    }
  }
  if (r.packages.length > 0) {
    const shown = r.packages.slice(0, PACKAGES_SHOWN).map((d) => `${d.name} ${d.version}`);
    const more = r.packages.length - shown.length;
    lines.push(
      `packages   ${r.packages.length}: ${shown.join(", ")}${more > 0 ? `, … ${more} more (--json lists all)` : ""}`,
    );
  }
  for (const problem of r.problems) lines.push(`problem    ${problem.problem}`, `  fix      ${problem.fix}`);
  if (r.problems.length === 0) lines.push("ok");
  return `${lines.map(printable).join("\n")}\n`;
}
