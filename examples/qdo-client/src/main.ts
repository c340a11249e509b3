// SRemote QDO client example: installs QDO into any target's endpoint from its git
// repository, then runs the original tool's client flows (bin/client/ssh.py, newt.py).
// From the repository root: node scripts/pnpm.mjs --filter @sremote/example-qdo-client start -- local:
import { openTarget } from "@sremote/cli";
import { hasErrorCode, RemoteClient, type RemoteClientOptions } from "@sremote/client";
import { environmentFlows, errorFlows, type FlowContext, type FlowRecord, queueNameFlows } from "./flows.js";
import { installQdo, type QdoInstallOutcome } from "./install-qdo.js";
import { HELP, parseOptions, type QdoClientOptions } from "./options.js";
import { formatRecord, formatTimings, summarize } from "./report.js";

const print = (line = "") => console.log(line);
const section = (title: string) => print(`\n── ${title} ${"─".repeat(Math.max(0, 66 - title.length))}`);

async function run(options: QdoClientOptions): Promise<number> {
  const opened = await openTarget(options.target, options.connection);
  const { target, connector } = opened;
  print(`target   ${options.target} (${connector.name} connector)`);
  try {
    section(options.noInstall ? "QDO (--no-install)" : `install QDO from ${options.qdo.url} @ ${options.qdo.ref}`);
    // undefined: --no-install, the endpoint is used as it is.
    const outcome: QdoInstallOutcome | undefined = options.noInstall
      ? undefined
      : await installQdo(connector, options.qdo, {
          // local:/dir carries its layout. Elsewhere, and for local: without a folder (whose
          // client runs the packaged agent in place), the installer's default: ~/.sremote.
          layout: target.kind === "local" && target.endpointDir ? opened.clientOptions.layout : undefined,
          python: options.connection.python,
          index: options.index,
          systemSitePackages: options.systemSitePackages,
          print,
        });
    let installFailed = false;
    let clientOptions: Partial<RemoteClientOptions>;
    if (outcome === undefined) {
      print("QDO: not installing; using what the endpoint has");
      clientOptions = endpointOptions(opened.clientOptions, target.kind);
    } else if (outcome.kind === "installed") {
      print(
        `QDO: ${outcome.skipped ? "already installed" : "installed"} from ${options.qdo.url} @ ${options.qdo.ref}, package folder: ${outcome.folder}`,
      );
      // No python option: interpreter.sh then runs the endpoint's venv, where QDO now is.
      clientOptions = { layout: outcome.layout };
    } else {
      if (outcome.kind === "unreachable") {
        print(`QDO: cannot reach ${options.qdo.url}: ${outcome.reason}; skipping the QDO flows`);
      } else {
        installFailed = true;
        print(`QDO: install failed: ${outcome.reason}; skipping the QDO flows`);
        if (outcome.fix) print(`     fix: ${outcome.fix}`);
      }
      clientOptions = opened.clientOptions;
    }

    await using client = new RemoteClient({
      ...clientOptions,
      connector,
      closeConnector: false,
      timeoutMs: options.timeoutMs,
    });
    section("connect");
    const t0 = performance.now();
    const { layout, agent } = await client.connect();
    const connectMs = performance.now() - t0;
    print(`endpoint ${layout.endpointDir}`);
    if (agent) {
      print(
        `agent    ${agent.version} on ${agent.implementation} ${agent.python} (${agent.executable ?? "python"}) at ${agent.host}`,
      );
    }
    const carrier = connector.capabilities.spawn ? "session (one long-lived agent)" : "file (one Python per call)";
    print(`carrier  ${carrier}`);
    print(`connect  ${connectMs.toFixed(1)} ms (endpoint, agent files, agent start: not counted in the call times)`);

    let qdo = false;
    if (outcome === undefined || outcome.kind === "installed") {
      const version = await qdoVersion({ ...clientOptions, connector, closeConnector: false });
      qdo = version !== null;
      print(
        `QDO: ${qdo ? `importable in the endpoint${version ? ` (version ${version})` : ""}` : "not importable in the endpoint"}`,
      );
      if (!qdo && outcome !== undefined) installFailed = true;
    }

    const records: FlowRecord[] = [];
    const ctx: FlowContext = {
      client,
      qdo,
      otherClient: () =>
        new RemoteClient({ ...clientOptions, connector, closeConnector: false, timeoutMs: options.timeoutMs }),
      report: (record) => print(formatRecord(record)),
    };
    section("qdo.valid_queue_name");
    records.push(...(await queueNameFlows(ctx)));
    section("error kinds");
    records.push(...(await errorFlows(ctx)));
    section("environment and PATH");
    records.push(...(await environmentFlows(ctx)));

    section("call times");
    print(formatTimings(records));
    const summary = summarize(records);
    print();
    print(
      `${summary.ok} ok, ${summary.unexpected} unexpected, ${summary.skipped} skipped${summary.skipped > 0 ? " (need QDO)" : ""}${installFailed ? "; the QDO install failed" : ""}`,
    );
    return summary.unexpected === 0 && !installFailed ? 0 : 1;
  } finally {
    await connector.close();
    await opened.cleanup();
  }
}

/**
 * Client options that use an installed endpoint as it is: its venv's Python and, for
 * `local:` without a folder, the default endpoint rather than the packaged agent.
 */
function endpointOptions(opened: Partial<RemoteClientOptions>, kind: string): Partial<RemoteClientOptions> {
  if (kind !== "local") return { ...opened, python: undefined };
  return opened.autoInstallAgent === false ? {} : { layout: opened.layout };
}

/** QDO's version as the agent reports it (`""` when it has none), `null` when it cannot be imported. */
async function qdoVersion(options: RemoteClientOptions): Promise<string | null> {
  await using probe = new RemoteClient(options);
  probe.registerModule("qdo");
  try {
    return (await probe.call("os", "getpid")).modules.qdo ?? "";
  } catch (err) {
    if (hasErrorCode(err, "MODULES")) return null;
    throw err;
  }
}

async function main(argv: readonly string[]): Promise<number> {
  let options: QdoClientOptions;
  try {
    options = parseOptions(argv);
  } catch (err) {
    console.error(`qdo-client: ${err instanceof Error ? err.message : String(err)}\n(see --help)`);
    return 2;
  }
  if (options.help) {
    process.stdout.write(HELP);
    return 0;
  }
  try {
    return await run(options);
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    console.error(`qdo-client: ${message}`);
    return hasErrorCode(err, "INVALID_ARGUMENT") || hasErrorCode(err, "INVALID_TARGET") ? 2 : 1;
  }
}

// `pnpm start -- <args>` passes the "--" through: drop it.
const args = process.argv.slice(2);
process.exitCode = await main(args[0] === "--" ? args.slice(1) : args);
