import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { expectCode } from "@sremote/testkit";
import { type SfapiDouble, startSfapiDouble } from "@sremote/testkit/sfapi-double";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { connectorFactory, since, tasksWith, token } from "./helpers.js";

vi.setConfig({ testTimeout: 60_000, hookTimeout: 60_000 });

let double: SfapiDouble;
const make = connectorFactory(() => double);

beforeAll(async () => {
  double = await startSfapiDouble();
});
afterAll(async () => {
  await double?.close();
});
afterEach(() => {
  double.clearFaults();
  double.setTaskDelay(0);
});

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe("faults", () => {
  it("429/503 bursts on task polls, downloads and the token endpoint end in success, each command run once", async () => {
    const c = make();
    const t = token();
    const file = join(double.homeDir(), `${t}.bin`);
    await writeFile(file, "payload");
    double.inject("POST /token", { kind: "status", status: 503, times: 2 });
    double.inject("GET /tasks", { kind: "status", status: 429, retryAfterSeconds: 0, times: 3 });
    double.inject("GET /tasks", { kind: "status", status: 503, times: 3 });
    double.inject("/utilities/download", { kind: "status", status: 503, times: 2 });
    expect((await c.exec(["echo", t])).stdout).toBe(`${t}\n`);
    expect(new TextDecoder().decode(await c.getFile(file))).toBe("payload");
    expect(tasksWith(double, t)).toHaveLength(1);
    expect(double.requestLog.filter((e) => e.fault !== undefined).length).toBe(10);
  });

  /** Command POSTs that ask "did it run?" (core's marker query). */
  const isQuestion = (r: { form: Readonly<Record<string, string>> }) => /\bnot-run\b/.test(r.form.executable ?? "");
  const mentions = (t: string) => (r: { form: Readonly<Record<string, string>> }) =>
    (r.form.executable ?? "").includes(t);

  it("a 503 on the command POST (nothing ran): SFAPI is asked, the command is sent again and runs once", async () => {
    const c = make();
    await c.connect();
    const t = token();
    double.inject("POST /utilities/command", { kind: "status", status: 503, times: 2, match: mentions(t) });
    expect((await c.exec(["echo", t])).stdout).toBe(`${t}\n`);
    expect(tasksWith(double, t)).toHaveLength(1);
    expect(double.requestLog.filter((e) => e.route === "POST /utilities/command" && isQuestion(e))).toHaveLength(2);
  });

  it("a 503 or a lost answer after the command POST was processed: the recorded answer is used, never re-sent", async () => {
    const c = make();
    await c.connect();
    for (const fault of [
      { kind: "status", status: 503, when: "after" },
      { kind: "reset", when: "after" },
    ] as const) {
      const t = token();
      double.inject("POST /utilities/command", { ...fault, match: mentions(t) });
      const r = await c.exec(["/bin/sh", "-c", `echo ${t}; echo e >&2; exit 4`]);
      expect(r, JSON.stringify(fault)).toEqual({ stdout: `${t}\n`, stderr: "e\n", exitCode: 4, signal: null });
      expect(tasksWith(double, t), JSON.stringify(fault)).toHaveLength(1);
    }
  });

  it("when whether it ran cannot be told, UNAVAILABLE, not retryable, and it ran at most once", async () => {
    const c = make({ retry: { attempts: 2, baseDelayMs: 1, maxDelayMs: 2 } });
    await c.connect();
    const t = token();
    double.inject("POST /utilities/command", { kind: "status", status: 503, when: "after", match: mentions(t) });
    double.inject("POST /utilities/command", { kind: "status", status: 503, times: 2, match: isQuestion });
    const err = await expectCode(c.exec(["echo", t]), "UNAVAILABLE");
    expect((err as { retryable?: boolean }).retryable).toBe(false);
    expect(err.message).toMatch(/whether it ran cannot be told/);
    expect(double.requestLog.filter((e) => e.route === "POST /utilities/command" && mentions(t)(e))).toHaveLength(1);
    expect(tasksWith(double, t)).toHaveLength(1);
  });

  it("a 429 on the command POST (refused before processing) is retried: the command runs once", async () => {
    const c = make();
    const t = token();
    double.inject("POST /utilities/command", { kind: "status", status: 429, times: 2 });
    expect((await c.exec(["echo", t])).stdout).toBe(`${t}\n`);
    expect(tasksWith(double, t)).toHaveLength(1);
  });

  it("abort and timeout delete the task; its process group is gone", async () => {
    const c = make();
    for (const how of ["abort", "timeout"] as const) {
      const t = token();
      const ac = new AbortController();
      const run = c.exec(["/bin/sh", "-c", `sleep 30 & echo ${t}; wait`], {
        signal: ac.signal,
        timeoutMs: how === "timeout" ? 800 : undefined,
      });
      while (tasksWith(double, t)[0]?.phase !== "running") await new Promise((r) => setTimeout(r, 20));
      if (how === "abort") ac.abort();
      await expectCode(run, how === "abort" ? "ABORTED" : "TIMEOUT");
      const task = tasksWith(double, t)[0];
      expect(task?.status).toBe("cancelled");
      expect(double.requestLog.some((e) => e.method === "DELETE" && e.path.endsWith(`/tasks/${task?.id}`))).toBe(true);
      expect(alive(task?.pid as number)).toBe(false);
    }
  });

  it("waits for a terminal status: a slow task's partial result is not taken for the answer", async () => {
    const c = make();
    const t = token();
    double.inject("POST /utilities/command", { kind: "slow-task", ms: 300 });
    const r = await c.exec(["/bin/sh", "-c", `echo ${t}-start; sleep 0.5; echo ${t}-end >&2; exit 3`]);
    expect(r).toMatchObject({ stdout: `${t}-start\n`, stderr: `${t}-end\n`, exitCode: 3 });
  });

  it("deletions ride along with the next command, and getFile never overtakes a queued deletion", async () => {
    const c = make({ batchWindowMs: 5_000 });
    const t = token();
    const a = join(double.homeDir(), `${t}-a`);
    const b = join(double.homeDir(), `${t}-b`);
    await c.putFile(a, new TextEncoder().encode("a"), { mode: 0o640 });
    await c.putFile(b, new TextEncoder().encode("b"));
    const from = double.requestLog.length;
    const deleted = c.deleteFiles?.([a]);
    const r = await c.exec(["/bin/sh", "-c", `stat -c %a "$0"; ls "$0" 2>&1 || true`, a]);
    await deleted;
    // The chmods and the deletion ran before the command, in the same task.
    expect(r.stdout).toMatch(/No such file/);
    expect(since(double, from).filter((e) => e.route === "POST /utilities/command")).toHaveLength(1);
    c.deleteFile(b).catch(() => {});
    await expectCode(c.getFile(b), "FILE_NOT_FOUND");
    await expect(readFile(b)).rejects.toThrow();
  });
});
