import { AGENT_VERSION, agentManifest, readRemoteManifest } from "@sremote/agent";
import { discoverLayout, interpreterPath, type RemoteLayout } from "@sremote/core";
import { EXIT, exitCodeFor } from "../exit-codes.js";
import type { CliIO } from "../io.js";
import { type ConnectionFlags, openTarget } from "../targets.js";
import { reportError } from "./call.js";

/** What `sremote doctor` found. */
export interface DoctorReport {
  target: string;
  connector: { name: string; connected: boolean; detail?: string | undefined };
  layout: RemoteLayout & { source: "location" | "default" | "package" | "target" };
  agent: {
    installedVersion: string | null;
    clientVersion: string;
    upToDate: boolean;
  };
  python: Record<string, unknown> | null;
  problems: { problem: string; fix: string }[];
}

/** `sremote doctor <target>`: read-only checks of a target. Returns the exit status. */
export async function doctorCommand(
  targetText: string,
  opts: ConnectionFlags & { json: boolean },
  io: CliIO,
): Promise<number> {
  let opened: Awaited<ReturnType<typeof openTarget>> | undefined;
  try {
    opened = await openTarget(targetText, opts);
    const { connector, clientOptions } = opened;
    const problems: DoctorReport["problems"] = [];
    let layout: DoctorReport["layout"];
    if (clientOptions.layout) {
      layout = { ...clientOptions.layout, source: clientOptions.autoInstallAgent === false ? "package" : "target" };
    } else {
      const found = await discoverLayout(connector);
      layout = { ...found.layout, source: found.source };
    }
    const status = await connector.status();
    const [remote, local] = await Promise.all([
      readRemoteManifest(connector, layout.endpointDir).catch(() => null),
      agentManifest(),
    ]);
    const packaged = layout.source === "package";
    const installedVersion = packaged ? AGENT_VERSION : (remote?.version ?? null);
    const upToDate =
      packaged ||
      (remote !== null &&
        Object.keys(local.files).length === Object.keys(remote.files).length &&
        Object.entries(local.files).every(([k, v]) => remote.files[k] === v));
    if (!upToDate) {
      problems.push({
        problem: remote
          ? `agent ${remote.version} differs from the client's ${AGENT_VERSION}`
          : `no agent in ${layout.endpointDir}`,
        fix: `sremote install ${targetText}  (or make any call: the client uploads the agent itself)`,
      });
    }
    let python: Record<string, unknown> | null = null;
    if (installedVersion !== null) {
      const env: Record<string, string> = clientOptions.python ? { SREMOTE_PYTHON: clientOptions.python } : {};
      const info = await connector.exec(["sh", interpreterPath(layout), "--info", layout.endpointDir], {
        env,
        timeoutMs: 60_000,
      });
      if (info.exitCode === 0) {
        try {
          python = JSON.parse(info.stdout) as Record<string, unknown>;
        } catch {
          problems.push({
            problem: `interpreter.sh --info printed no JSON: ${info.stdout.slice(0, 200)}`,
            fix: `sremote install ${targetText}`,
          });
        }
      } else {
        problems.push({
          problem: `interpreter.sh --info failed (exit ${info.exitCode}): ${info.stderr.trim().slice(-500)}`,
          fix: `sremote install ${targetText}`,
        });
      }
    }
    const report: DoctorReport = {
      target: targetText,
      connector: { name: connector.name, connected: status.connected, detail: status.detail },
      layout,
      agent: { installedVersion, clientVersion: AGENT_VERSION, upToDate },
      python,
      problems,
    };
    if (opts.json) io.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
    else io.stdout.write(renderDoctor(report));
    return problems.length === 0 ? EXIT.ok : EXIT.setup;
  } catch (err) {
    reportError(err, io, opts.json);
    return exitCodeFor(err);
  } finally {
    await opened?.connector.close().catch(() => {});
    await opened?.cleanup().catch(() => {});
  }
}

function renderDoctor(r: DoctorReport): string {
  const p = r.python ?? {};
  const lines = [
    `target     ${r.target} (${r.connector.name}${r.connector.detail ? `, ${r.connector.detail}` : ""})`,
    `endpoint   ${r.layout.endpointDir}  [${r.layout.source}]`,
    `temp       ${r.layout.tmpDir}`,
    `workdir    ${r.layout.workDir}`,
    `agent      ${r.agent.installedVersion ?? "not installed"} (client ${r.agent.clientVersion})${r.agent.upToDate ? "" : "  ← differs"}`,
    `python     ${p.python ?? "?"} ${p.implementation ?? ""} at ${p.executable ?? "?"}`,
    `codec      ${p.codec ?? "?"}${p.codec === "pure" ? " (pure Python; apt/pip install msgpack for speed)" : ""}`,
    `numpy      ${p.numpy ?? "not installed"}`,
  ];
  for (const problem of r.problems) lines.push(`problem    ${problem.problem}\n  fix      ${problem.fix}`);
  if (r.problems.length === 0) lines.push("ok");
  return `${lines.join("\n")}\n`;
}
