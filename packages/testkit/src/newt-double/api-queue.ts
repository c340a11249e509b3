/** `/queue`: batch jobs as real processes (submit, list, show, delete, completed jobs). */
import { commandEnv } from "./api-command.js";
import { knownMachine } from "./auth.js";
import { type DoubleState, errorReply, type Job, json, type Reply } from "./state.js";

function jobView(job: Job): Record<string, string> {
  return {
    jobid: job.id,
    status: job.state,
    name: job.name,
    user: job.user,
    queue: "debug",
    timeuse: "0:00",
    nodes: "1",
    procs: "1",
    memory: "",
    submittime: job.submitted.toISOString(),
    exitcode: job.exitCode === null ? "" : String(job.exitCode),
  };
}

export async function queue(
  st: DoubleState,
  method: string,
  segs: string[],
  form: Record<string, string>,
  query: Record<string, string>,
  username: string,
): Promise<Reply> {
  if (segs[0] === "completedjobs" && method === "GET") {
    const limit = Number(query.limit ?? "100");
    const done = [...st.jobs.values()].filter((j) => j.state === "C" && (!query.username || j.user === query.username));
    return json(200, done.slice(-limit).map(jobView));
  }
  const machine = knownMachine(st, segs[0]);
  const jobId = segs[1];
  if (method === "POST" && jobId === undefined) {
    const argv = form.jobfile
      ? ["/bin/sh", form.jobfile]
      : form.jobscript
        ? ["/bin/sh", "-c", form.jobscript]
        : undefined;
    if (!argv) return errorReply(400, "jobfile or jobscript is required");
    const id = String(st.nextJob++);
    const run = st.runner.run(argv, {
      cwd: st.home(username, machine),
      env: { ...commandEnv(st, username, machine), SLURM_JOB_ID: id },
      timeoutMs: st.commandTimeoutMs,
    });
    if (!run.started) return json(200, { status: "ERROR", error: "cannot start the job", jobid: "" });
    const job: Job = {
      id,
      user: username,
      machine,
      name: form.jobfile ? (form.jobfile.split("/").pop() ?? "job") : "script",
      submitted: new Date(st.clock.now()),
      state: "R",
      exitCode: null,
      kill: run.kill,
    };
    st.jobs.set(id, job);
    void run.done.then((o) => {
      job.state = "C";
      job.exitCode = o.exitCode;
    });
    return json(200, { status: "OK", error: "", jobid: id });
  }
  if (method === "GET" && jobId === undefined) {
    const mine = [...st.jobs.values()].filter((j) => j.machine === machine && (!query.user || j.user === query.user));
    return json(200, mine.map(jobView));
  }
  const job = jobId === undefined ? undefined : st.jobs.get(jobId);
  if (!job || job.machine !== machine)
    return json(404, { status: "ERROR", output: "", error: `Unknown job: ${jobId}` });
  if (method === "GET") return json(200, jobView(job));
  if (method === "DELETE") {
    if (job.state === "C") return json(200, { status: "ERROR", output: "", error: "job already completed" });
    job.kill();
    return json(200, { status: "OK", output: "", error: "" });
  }
  return errorReply(501, "Not Implemented");
}
