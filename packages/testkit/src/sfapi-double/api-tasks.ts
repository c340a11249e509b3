/**
 * `POST /utilities/command/{machine}` and `/tasks`: each command is an asynchronous task
 * that stays `new` while queued and while its real process runs, then ends `completed`
 * with `result` = a JSON **string** `{status, output, error, exit_code}`.
 */
import { constants } from "node:os";
import { ShellWordsError, splitShellWords } from "../newt-double/shell-words.js";
import type { SfapiFault } from "./faults.js";
import {
  ApiError,
  type Caller,
  detail,
  json,
  knownMachine,
  type Reply,
  type SfapiState,
  type TaskRecord,
  validationError,
} from "./state.js";
import type { SfapiRequestLogEntry, SfapiTaskView } from "./types.js";

export function commandEnv(st: SfapiState, username: string, machine: string): NodeJS.ProcessEnv {
  return {
    HOME: st.home(username, machine),
    USER: username,
    LOGNAME: username,
    SHELL: "/bin/bash",
    PATH: st.commandPath,
    LANG: "C.UTF-8",
    NERSC_HOST: machine,
    ...st.commandEnv,
  };
}

/** What the API shows of a task. */
export function taskJson(task: TaskRecord): Record<string, unknown> {
  return { id: task.view.id, status: task.view.status, result: task.result };
}

export function finishTask(
  task: TaskRecord,
  st: SfapiState,
  status: SfapiTaskView["status"],
  result: string | null,
): void {
  if (task.view.status !== "new") return;
  task.view.status = status;
  task.view.phase = status === "new" ? task.view.phase : status;
  task.view.endedAt = st.clock.now();
  task.result = result;
}

/** Registers a task (status `new`, phase `queued`) and notes it in the request's log entry. */
export function newTask(
  st: SfapiState,
  entry: SfapiRequestLogEntry,
  caller: Caller,
  machine: string,
  kind: SfapiTaskView["kind"],
  executable: string,
  argv: readonly string[],
): TaskRecord {
  const id = String(st.nextTask++);
  const task: TaskRecord = {
    view: {
      id,
      kind,
      machine,
      username: caller.username,
      clientId: caller.client.view.clientId,
      executable,
      argv,
      status: "new",
      phase: "queued",
      createdAt: st.clock.now(),
    },
    result: null,
  };
  st.tasks.set(id, task);
  entry.taskId = id;
  return task;
}

export function signalExit(signal: string | null): number | null {
  if (signal === null) return null;
  const n = (constants.signals as Record<string, number | undefined>)[signal];
  return n === undefined ? null : 128 + n;
}

/**
 * Shows output so far as the `result` of a task still `new`, as production may (sfapi_client
 * PR #90): `exit_code` is null until the end, and a client must wait for a terminal status.
 */
function partialOutput(task: TaskRecord): (stream: "stdout" | "stderr", chunk: Buffer) => void {
  const seen = { stdout: [] as Buffer[], stderr: [] as Buffer[] };
  return (stream, chunk) => {
    if (task.view.status !== "new") return;
    seen[stream].push(chunk);
    task.result = JSON.stringify({
      status: "ok",
      output: Buffer.concat(seen.stdout).toString("utf8"),
      error: Buffer.concat(seen.stderr).toString("utf8"),
      exit_code: null,
    });
  };
}

function start(st: SfapiState, task: TaskRecord): void {
  task.timer = undefined;
  if (task.view.status !== "new" || st.closed) return;
  const { machine, username, argv } = task.view;
  const run = st.runner.run(argv, {
    cwd: st.home(username, machine),
    env: commandEnv(st, username, machine),
    timeoutMs: st.commandTimeoutMs,
    onOutput: st.partialResults ? partialOutput(task) : undefined,
  });
  task.view.phase = "running";
  task.view.startedAt = st.clock.now();
  task.view.pid = run.pid;
  task.kill = run.kill;
  task.done = run.done.then((outcome) => {
    task.kill = undefined;
    task.view.exitCode = outcome.exitCode;
    task.view.signal = outcome.signal;
    task.view.timedOut = outcome.timedOut;
    if (task.cancelRequested) return finishTask(task, st, "cancelled", null);
    if (outcome.spawnError !== undefined) {
      const message = `${outcome.spawnError}\n`;
      if (st.missingExecutable === "failed") {
        finishTask(task, st, "failed", JSON.stringify({ status: "error", error: message }));
      } else {
        finishTask(
          task,
          st,
          "completed",
          JSON.stringify({ status: "error", output: "", error: message, exit_code: 127 }),
        );
      }
      return;
    }
    const exitCode = outcome.exitCode ?? signalExit(outcome.signal) ?? 1;
    const error = outcome.timedOut
      ? `${outcome.stderr}sfapi-double: command killed after ${st.commandTimeoutMs} ms\n`
      : outcome.stderr;
    finishTask(
      task,
      st,
      "completed",
      JSON.stringify({ status: exitCode === 0 ? "ok" : "error", output: outcome.stdout, error, exit_code: exitCode }),
    );
  });
}

/** `POST /utilities/command/{machine}`: accepts the task at once; the process starts after the task delay. */
export function postCommand(
  st: SfapiState,
  entry: SfapiRequestLogEntry,
  caller: Caller,
  machineSeg: string | undefined,
  form: Record<string, string>,
  fault: SfapiFault | undefined,
): Reply {
  const machine = knownMachine(st, machineSeg);
  const executable = form.executable;
  if (executable === undefined || executable === "") return validationError(["body", "executable"], "field required");
  let argv: string[];
  try {
    argv = splitShellWords(executable);
  } catch (err) {
    if (err instanceof ShellWordsError) {
      return json(200, { task_id: null, status: "ERROR", error: `cannot parse executable: ${err.message}` });
    }
    throw err;
  }
  if (argv.length === 0) return json(200, { task_id: null, status: "ERROR", error: "empty executable" });
  const task = newTask(st, entry, caller, machine, "command", executable, argv);
  const delay = st.taskDelayMs + (fault?.kind === "slow-task" ? fault.ms : 0);
  if (delay > 0) task.timer = setTimeout(() => start(st, task), delay);
  else start(st, task);
  return json(200, { task_id: task.view.id, status: "OK", error: null });
}

function ownTask(st: SfapiState, caller: Caller, id: string | undefined): TaskRecord {
  const task = id === undefined ? undefined : st.tasks.get(id);
  // Another user's task is as invisible as a missing one.
  if (!task || task.view.username !== caller.username) throw new ApiError(404, "Not Found");
  return task;
}

/** `GET /tasks`, `GET /tasks/{id}`, `DELETE /tasks/{id}`. */
export async function tasksRoute(
  st: SfapiState,
  method: string,
  caller: Caller,
  tail: readonly string[],
): Promise<Reply> {
  if (tail.length > 1) return detail(404, "Not Found");
  const id = tail[0];
  if (method === "GET" && id === undefined) {
    const mine = [...st.tasks.values()].filter((t) => t.view.username === caller.username);
    return json(200, { tasks: mine.map(taskJson) });
  }
  if (method === "GET") return json(200, taskJson(ownTask(st, caller, id)));
  if (method === "DELETE" && id !== undefined) {
    const task = ownTask(st, caller, id);
    if (task.view.status === "new") {
      task.cancelRequested = true;
      if (task.timer) clearTimeout(task.timer);
      task.timer = undefined;
      task.kill?.();
      await task.done;
      finishTask(task, st, "cancelled", null);
    }
    return json(200, { status: "OK", error: null, task_id: id });
  }
  return detail(405, "Method Not Allowed");
}

/** Cancels every queued task (on close); running ones are ended by the runner. */
export function dropQueuedTasks(st: SfapiState): void {
  for (const task of st.tasks.values()) {
    if (task.timer) {
      clearTimeout(task.timer);
      task.timer = undefined;
      finishTask(task, st, "cancelled", null);
    }
  }
}
