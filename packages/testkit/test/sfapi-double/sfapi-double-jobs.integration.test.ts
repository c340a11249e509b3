import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { type SfapiDouble, startSfapiDouble } from "../../src/sfapi-double/index.js";
import { accessToken, api, pollTask, processGroupGone } from "./helpers.js";

// Real servers and processes on a shared machine: an explicit budget, never vitest's 5 s default.
vi.setConfig({ testTimeout: 60_000, hookTimeout: 60_000 });

// Slurm batch jobs (`/compute/jobs`) as real background processes, driven with fetch.

type Row = Record<string, string>;
let double: SfapiDouble;
let token: string;
let home: string;

beforeAll(async () => {
  double = await startSfapiDouble({
    clients: [{ clientId: "jdoeredclient" }, { clientId: "jdoegreenclie", color: "green" }],
    jobPendingMs: 300,
  });
  token = await accessToken(double, "jdoeredclient");
  home = double.homeDir();
});
afterAll(async () => {
  await double.close();
});

async function submit(fields: Record<string, string | string[]>, t = token, d = double) {
  const form = new URLSearchParams();
  for (const [k, v] of Object.entries(fields)) for (const x of [v].flat()) form.append(k, x);
  const res = await api(d, "/compute/jobs/perlmutter", t, { method: "POST", body: form });
  return { res, body: (await res.json()) as { task_id: string; status: string } };
}

async function jobIdOf(taskId: string, d = double, t = token): Promise<string> {
  const task = await pollTask(d, t, taskId);
  const result = JSON.parse(task.result as string) as { status: string; jobid: string };
  expect(result.status).toBe("ok");
  return result.jobid;
}

async function rows(query: string, d = double, t = token) {
  const res = await api(d, `/compute/jobs/perlmutter${query}`, t);
  return (await res.json()) as { status: string; output: Row[]; error: string | null };
}

/** Polls sacct (cached=false) until the job's state satisfies `ok` (bounded: 15 s). */
async function waitState(id: string, ok: (state: string) => boolean): Promise<Row> {
  for (let i = 0; i < 750; i++) {
    const [row] = (await rows(`/${id}?sacct=true&cached=false`)).output;
    if (row && ok(row.state as string)) return row;
    await sleep(20);
  }
  throw new Error(`job ${id} never reached the awaited state`);
}

describe("batch jobs", () => {
  it("script text: PENDING → RUNNING → FAILED with its exit code; output in slurm-<id>.out", async () => {
    const { res, body } = await submit({ job: "#!/bin/bash\n#SBATCH -J textjob\necho hello; sleep 0.5; exit 3\n" });
    expect(res.status).toBe(200);
    expect(body.status).toBe("OK");
    const id = await jobIdOf(body.task_id);
    const pending = (await rows(`?cached=false&kwargs=jobid=${id}`)).output;
    expect(pending).toEqual([expect.objectContaining({ jobid: id, state: "PENDING", st: "PD", name: "textjob" })]);
    await waitState(id, (s) => s === "RUNNING");
    const done = await waitState(id, (s) => !["PENDING", "RUNNING"].includes(s));
    expect(done).toMatchObject({ state: "FAILED", exitcode: "3:0", jobname: "textjob", user: "jdoe" });
    expect(await readFile(join(home, `slurm-${id}.out`), "utf8")).toBe("hello\n");
    // squeue no longer lists a finished job; sacct does.
    expect(await rows(`/${id}?cached=false`)).toMatchObject({ status: "ERROR", output: [] });
  });

  it("a script path with args runs in the home and completes", async () => {
    const script = join(home, "job.sh");
    await writeFile(script, '#!/bin/bash\nprintf "%s|" "$@" > args.txt\n');
    const { body } = await submit({ job: script, isPath: "true", args: ["a b", "c"] });
    const id = await jobIdOf(body.task_id);
    expect(await waitState(id, (s) => s === "COMPLETED")).toMatchObject({ exitcode: "0:0" });
    expect(await readFile(join(home, "args.txt"), "utf8")).toBe("a b|c|");
  });

  it("a missing script path is a task result with status error; a missing job field is 422", async () => {
    const { body } = await submit({ job: join(home, "absent.sh"), isPath: "true" });
    const task = await pollTask(double, token, body.task_id);
    expect(JSON.parse(task.result as string)).toMatchObject({ status: "error", error: expect.stringMatching(/open/) });
    expect((await submit({ isPath: "false" })).res.status).toBe(422);
  });

  it("DELETE cancels a running job: its process group is killed and sacct says CANCELLED by <uid>", async () => {
    const { body } = await submit({ job: "sleep 30 & sleep 30; wait" });
    const id = await jobIdOf(body.task_id);
    await waitState(id, (s) => s === "RUNNING");
    const pid = double.jobs.find((j) => j.id === id)?.pid as number;
    expect(pid).toEqual(expect.any(Number));
    const del = await api(double, `/compute/jobs/perlmutter/${id}`, token, { method: "DELETE" });
    const cancelTask = (await del.json()) as { task_id: string };
    expect(JSON.parse((await pollTask(double, token, cancelTask.task_id)).result as string)).toEqual({
      status: "ok",
      error: null,
    });
    const row = await waitState(id, (s) => s.startsWith("CANCELLED"));
    expect(row.state).toMatch(/^CANCELLED by \d+$/);
    expect(double.jobs.find((j) => j.id === id)?.state).toBe("CANCELLED");
    expect(await processGroupGone(pid)).toBe(true);
  });

  it("filters by kwargs (jobid list, user) and lags behind in the cache unless cached=false", async () => {
    await using lagging = await startSfapiDouble({ jobCacheMs: 60_000 });
    const t = await accessToken(lagging);
    const { body } = await submit({ job: "sleep 5" }, t, lagging);
    const id = await jobIdOf(body.task_id, lagging, t);
    expect((await rows("", lagging, t)).output).toEqual([]);
    expect((await rows("?cached=false", lagging, t)).output.map((r) => r.jobid)).toEqual([id]);
    expect((await rows(`?cached=false&kwargs=jobid=1,${id}&kwargs=user=jdoe`, lagging, t)).output).toHaveLength(1);
    expect((await rows("?cached=false&kwargs=user=nobody", lagging, t)).output).toEqual([]);
    // close() ends the running job.
    const pid = lagging.jobs[0]?.pid as number;
    await lagging.close();
    expect(await processGroupGone(pid)).toBe(true);
  });

  it("a client that is not red may list jobs but not submit or cancel (403)", async () => {
    const green = await accessToken(double, "jdoegreenclie");
    expect((await submit({ job: "true" }, green)).res.status).toBe(403);
    expect((await api(double, "/compute/jobs/perlmutter/1", green, { method: "DELETE" })).status).toBe(403);
    expect((await rows("?sacct=true&cached=false", double, green)).status).toBe("OK");
  });
});
