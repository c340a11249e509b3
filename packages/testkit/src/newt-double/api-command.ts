/** `POST /command/<machine>`: a real process per command, as NEWT ran them. */

import { knownMachine } from "./auth.js";
import type { CommandOutcome } from "./commands.js";
import type { NewtRequestLogEntry } from "./double.js";
import { ShellWordsError, splitShellWords } from "./shell-words.js";
import { type DoubleState, errorReply, json, type Reply } from "./state.js";

export function commandEnv(st: DoubleState, username: string, machine: string): NodeJS.ProcessEnv {
  return {
    HOME: st.home(username, machine),
    USER: username,
    LOGNAME: username,
    SHELL: "/bin/sh",
    PATH: st.commandPath,
    LANG: "C.UTF-8",
    ...st.commandEnv,
  };
}

export async function command(
  st: DoubleState,
  entry: NewtRequestLogEntry,
  method: string,
  machineSeg: string | undefined,
  form: Record<string, string>,
  username: string,
): Promise<Reply> {
  const machine = knownMachine(st, machineSeg);
  if (method !== "POST") return errorReply(501, "Not Implemented");
  const executable = form.executable;
  if (executable === undefined || executable === "") return errorReply(400, "Missing executable");
  const loginEnv = form.loginenv === "true";
  let argv: string[];
  if (loginEnv) {
    argv = ["/bin/sh", "-lc", executable];
  } else {
    try {
      argv = splitShellWords(executable);
    } catch (err) {
      if (err instanceof ShellWordsError)
        return json(200, { output: "", error: `cannot parse command: ${err.message}` });
      throw err;
    }
    const first = argv[0];
    if (first === undefined || !first.startsWith("/")) {
      return json(200, {
        output: "",
        error: `NEWT requires all commands are issued using a full executable path: ${first ?? ""}`,
      });
    }
  }
  const run = st.runner.run(argv, {
    cwd: st.home(username, machine),
    env: commandEnv(st, username, machine),
    timeoutMs: st.commandTimeoutMs,
  });
  const outcome: CommandOutcome = await run.done;
  if (run.started) {
    entry.command = { argv, exitCode: outcome.exitCode, signal: outcome.signal, timedOut: outcome.timedOut };
  }
  if (outcome.spawnError !== undefined) return json(200, { output: "", error: outcome.spawnError });
  const error = outcome.timedOut
    ? `${outcome.stderr}newt-double: command killed after ${st.commandTimeoutMs} ms\n`
    : outcome.stderr;
  return json(200, { output: outcome.stdout, error });
}
