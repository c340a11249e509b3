import { createRequire } from "node:module";
import { Command, CommanderError, Option } from "commander";
import { callCommand } from "./commands/call.js";
import { doctorCommand } from "./commands/doctor.js";
import { registerInstallCommands } from "./commands/install.js";
import { mapCommand } from "./commands/map.js";
import { EXIT } from "./exit-codes.js";
import type { CliIO } from "./io.js";
import { addTargetOptions, collect, TARGET_HELP } from "./target-options.js";

/** Set by scripts/bundle-bin.mjs in the bundled bin (its ../package.json is not the package's). */
declare const SREMOTE_CLI_VERSION: string | undefined;

function cliVersion(): string {
  if (typeof SREMOTE_CLI_VERSION === "string") return SREMOTE_CLI_VERSION;
  return (createRequire(import.meta.url)("../package.json") as { version: string }).version;
}

const OUTPUT_LIMIT_HELP =
  "per-stream cap on captured stdout/stderr in bytes (k, M, G allowed; default 8M); a cut is reported on stderr";
const SLURM_HELP =
  'run the agent on compute nodes through Slurm: key=value pairs, e.g. "partition=debug,time=5,nodes=2" (keys: partition, account, qos, time, nodes, cpus-per-task, constraint, conf)';

/** The options `call` and `map` share: environment, requirements, carrier, limits, Slurm. */
function addCallOptions(command: Command, text: { what: string; timeout: string }): Command {
  return command
    .option("--env <K=V>", `environment variable for ${text.what} (repeatable)`, collect, [])
    .option("--env-default <K=V>", "environment variable set only where unset (repeatable)", collect, [])
    .option("--path-append <dir>", "folder appended to PATH (repeatable)", collect, [])
    .option("--require <module[spec]>", "required module with an optional PEP 440 specifier (repeatable)", collect, [])
    .addOption(new Option("--mode <mode>", "carrier").choices(["auto", "session", "file"]).default("auto"))
    .option("--timeout <ms>", text.timeout)
    .option("--cwd <dir>", `working folder of ${text.what === "the call" ? "the call" : "the calls"}`)
    .option("--output-limit <bytes>", OUTPUT_LIMIT_HELP)
    .option("--slurm <spec>", SLURM_HELP);
}

/**
 * Runs the `sremote` command line and returns its exit status (never calls process.exit).
 */
export async function main(argv: string[], io: CliIO = process, signal?: AbortSignal): Promise<number> {
  let status: number = EXIT.ok;
  const program = new Command("sremote")
    .description("Call functions of Python modules on remote machines.")
    .version(cliVersion())
    .exitOverride()
    .configureOutput({
      writeOut: (s) => io.stdout.write(s),
      writeErr: (s) => io.stderr.write(s),
    })
    .showHelpAfterError("(run with --help for usage)");

  addTargetOptions(
    addCallOptions(
      program
        .command("call")
        .description(
          "call <module>.<function> on <target>; arguments are JSON when valid JSON, else strings (use -- before negative numbers)",
        )
        .argument("<target>", TARGET_HELP)
        .argument("<function>", "module.function, or module:Class.method")
        .argument("[args...]", "positional arguments")
        .option("--kw <key=value>", "keyword argument (repeatable)", collect, []),
      { what: "the call", timeout: "fail with exit status 124 after this many milliseconds" },
    ).option(
      "--json",
      "print one JSON object: {ok, value, stdout, stderr, truncated, durationMs} or {ok:false, error}",
      false,
    ),
  ).action(async (target: string, fn: string, args: string[], opts) => {
    status = await callCommand(target, fn, args, opts, io, signal);
  });

  addTargetOptions(
    addCallOptions(
      program
        .command("map")
        .description(
          "call <module>.<function> once per line of --inputs (JSON: an array of positional arguments, an object of keyword arguments, or one value); prints one JSON line per input, in order; exit 1 if any failed",
        )
        .argument("<target>", TARGET_HELP)
        .argument("<function>", "module.function, or module:Class.method")
        .requiredOption("--inputs <file>", "JSON lines, one input each (blank lines skipped); - reads stdin")
        .option("--concurrency <n>", "calls in flight (default: twice the sessions)")
        .option("--sessions <n>", "agent sessions to spread calls over (default: --slurm's nodes, else 1)"),
      { what: "every call", timeout: "per-input timeout in milliseconds (that input fails with TIMEOUT)" },
    ),
  ).action(async (target: string, fn: string, opts) => {
    status = await mapCommand(target, fn, opts, io, signal);
  });

  addTargetOptions(
    program
      .command("doctor")
      .description(
        "report layout, agent version, Python, codec, packages and permission problems of <target>, each with its fix (changes nothing)",
      )
      .argument("<target>", TARGET_HELP)
      .option("--json", "print the report as JSON", false),
  ).action(async (target: string, opts) => {
    status = await doctorCommand(target, opts, io);
  });

  registerInstallCommands(
    program,
    io,
    (s) => {
      status = s;
    },
    signal,
  );

  try {
    await program.parseAsync(argv, { from: "user" });
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.code === "commander.helpDisplayed" || err.code === "commander.version" || err.code === "commander.help") {
        return EXIT.ok;
      }
      return EXIT.usage;
    }
    throw err;
  }
  return status;
}
