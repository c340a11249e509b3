import { randomBytes } from "node:crypto";
import { mkdir, readFile, symlink, writeFile } from "node:fs/promises";
import { request as httpRequest } from "node:http";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { type SfapiDouble, startSfapiDouble } from "../../src/sfapi-double/index.js";
import {
  accessToken,
  api,
  filePath,
  getTask,
  pollTask,
  postCommand,
  processGroupGone,
  runToEnd,
  waitForTaskView,
} from "./helpers.js";

// Real servers and processes on a shared machine: an explicit budget, never vitest's 5 s default.
vi.setConfig({ testTimeout: 60_000, hookTimeout: 60_000 });

// Commands as tasks over real processes, and files over real folders, driven with fetch.

let double: SfapiDouble;
let token: string;
let home: string;

beforeAll(async () => {
  double = await startSfapiDouble({
    clients: [{ clientId: "jdoeredclient" }, { clientId: "asmithclient1", username: "asmith" }],
    commandTimeoutMs: 20_000,
  });
  token = await accessToken(double, "jdoeredclient");
  home = double.homeDir("jdoe");
});
afterAll(async () => {
  await double.close();
});
afterEach(() => {
  double.clearFaults();
  double.setTaskDelay(0);
});

const fileUrl = (kind: "upload" | "download" | "ls", abs: string) =>
  `/utilities/${kind}/${filePath("perlmutter", abs)}`;

async function uploadBytes(abs: string, bytes: Uint8Array, url = fileUrl("upload", abs)) {
  const form = new FormData();
  form.append("file", new Blob([bytes]), "ignored-name.bin");
  const res = await api(double, url, token, { method: "PUT", body: form });
  return { res, body: (await res.json()) as { status: string; output: string | null; error: string | null } };
}

async function download(url: string, t = token) {
  const res = await api(double, url, t);
  return {
    res,
    body: (await res.json()) as { status: string; file: string | null; is_binary: boolean; error: string | null },
  };
}

describe("commands as tasks", () => {
  it("a task is new while queued and while running, then completed with output, error and exit code", async () => {
    double.setTaskDelay(300);
    const { res, body } = await postCommand(double, token, "bash -c 'echo out; echo err >&2; sleep 0.5'");
    expect(res.status).toBe(200);
    expect(body).toMatchObject({ status: "OK", error: null, task_id: expect.any(String) });
    const id = body.task_id as string;
    expect(await getTask(double, token, id)).toMatchObject({ id, status: "new" });
    expect(double.tasks.find((t) => t.id === id)?.phase).toBe("queued");
    const running = await waitForTaskView(double, id, (p) => p !== "queued");
    expect(running.phase).toBe("running");
    expect(running.pid).toEqual(expect.any(Number));
    expect((await getTask(double, token, id)).status).toBe("new");
    const done = await pollTask(double, token, id);
    expect(done.status).toBe("completed");
    expect(typeof done.result).toBe("string");
    expect(JSON.parse(done.result as string)).toEqual({ status: "ok", output: "out\n", error: "err\n", exit_code: 0 });
  });

  it("a running task may show its output so far as result (exit_code null) while still new", async () => {
    const { body } = await postCommand(double, token, "bash -c 'echo early; sleep 1; echo late'");
    const id = body.task_id as string;
    const partial = await pollTask(double, token, id, (t) => t.result !== null);
    expect(partial.status).toBe("new");
    expect(JSON.parse(partial.result as string)).toMatchObject({ output: "early\n", exit_code: null });
    const done = await pollTask(double, token, id);
    expect(JSON.parse(done.result as string)).toMatchObject({ output: "early\nlate\n", exit_code: 0 });
    await using quiet = await startSfapiDouble({ partialResults: false });
    const t = await accessToken(quiet);
    const started = await postCommand(quiet, t, "bash -c 'echo early; sleep 0.5'");
    await waitForTaskView(quiet, started.body.task_id as string, (p) => p === "running");
    await pollTask(quiet, t, started.body.task_id as string, (x) => {
      if (x.status === "new") expect(x.result).toBeNull();
      return x.status !== "new";
    });
  });

  it("a command that fails: task completed, result status error with its exit code and stderr", async () => {
    const { task, result } = await runToEnd(double, token, `bash -lc 'echo failing >&2; exit 3'`);
    expect(task.status).toBe("completed");
    expect(result).toEqual({ status: "error", output: "", error: "failing\n", exit_code: 3 });
  });

  it("splits executable with POSIX word rules and no shell: $HOME stays literal; cwd and HOME are the home", async () => {
    expect((await runToEnd(double, token, "echo $HOME 'a  b' \"c d\"")).result.output).toBe("$HOME a  b c d\n");
    expect((await runToEnd(double, token, `bash -c 'printf %s "$HOME"; echo; pwd'`)).result.output).toBe(
      `${home}\n${home}\n`,
    );
  });

  it("a missing program is a completed task with exit code 127; an unparsable line is refused at once", async () => {
    const { result } = await runToEnd(double, token, "/no/such/program arg");
    expect(result).toMatchObject({ status: "error", exit_code: 127, error: expect.stringMatching(/No such file/) });
    const { res, body } = await postCommand(double, token, "echo 'unterminated");
    expect(res.status).toBe(200);
    expect(body).toMatchObject({ status: "ERROR", task_id: null, error: expect.stringMatching(/quote/) });
    const missing = await api(double, "/utilities/command/perlmutter", token, { method: "POST", body: "" });
    expect(missing.status).toBe(422);
  });

  it("missingExecutable 'failed' makes a missing program a failed task; the time limit is exit 137", async () => {
    await using strict = await startSfapiDouble({ missingExecutable: "failed", commandTimeoutMs: 300 });
    const t = await accessToken(strict);
    const missing = await postCommand(strict, t, "/no/such/program");
    const failed = await pollTask(strict, t, missing.body.task_id as string);
    expect(failed.status).toBe("failed");
    expect(failed.result).toMatch(/No such file/);
    const slow = await runToEnd(strict, t, "sleep 5");
    expect(slow.task.status).toBe("completed");
    expect(slow.result).toMatchObject({
      status: "error",
      exit_code: 137,
      error: expect.stringMatching(/killed after/),
    });
  });

  it("DELETE /tasks/{id} of a running command kills its process group and reports cancelled", async () => {
    const { body } = await postCommand(double, token, "bash -c 'sleep 30 & sleep 30; wait'");
    const id = body.task_id as string;
    const view = await waitForTaskView(double, id, (p) => p === "running");
    const pid = view.pid as number;
    expect(() => process.kill(-pid, 0)).not.toThrow();
    const del = await api(double, `/tasks/${id}`, token, { method: "DELETE" });
    expect(del.status).toBe(200);
    expect((await pollTask(double, token, id)).status).toBe("cancelled");
    // Killed by the cancel, not by the double's time limit.
    expect(double.tasks.find((t) => t.id === id)).toMatchObject({ signal: "SIGKILL", timedOut: false });
    expect(await processGroupGone(pid)).toBe(true);
  });

  it("DELETE of a queued task cancels it before its process starts", async () => {
    double.setTaskDelay(5_000);
    const marker = join(home, "queued-ran");
    const { body } = await postCommand(double, token, `touch ${marker}`);
    const id = body.task_id as string;
    expect((await api(double, `/tasks/${id}`, token, { method: "DELETE" })).status).toBe(200);
    expect((await getTask(double, token, id)).status).toBe("cancelled");
    const view = double.tasks.find((t) => t.id === id);
    expect(view?.phase).toBe("cancelled");
    expect(view?.pid).toBeUndefined();
    await expect(readFile(marker)).rejects.toThrow();
  });

  it("tasks are private to their user: another user's task is 404, and GET /tasks lists only one's own", async () => {
    const { body } = await postCommand(double, token, "true");
    const other = await accessToken(double, "asmithclient1");
    expect((await api(double, `/tasks/${body.task_id}`, other)).status).toBe(404);
    expect((await api(double, `/tasks/${body.task_id}`, other, { method: "DELETE" })).status).toBe(404);
    expect((await api(double, "/tasks/999999", token)).status).toBe(404);
    const list = (await (await api(double, "/tasks", other)).json()) as { tasks: unknown[] };
    expect(list.tasks).toEqual([]);
    const mine = (await (await api(double, "/tasks", token)).json()) as { tasks: { id: string }[] };
    expect(mine.tasks.map((t) => t.id)).toContain(body.task_id);
  });

  it("close() ends running commands (their process groups) and queued tasks, and is idempotent", async () => {
    const d = await startSfapiDouble();
    const t = await accessToken(d);
    const running = await postCommand(d, t, "bash -c 'sleep 30 & sleep 30; wait'");
    const view = await waitForTaskView(d, running.body.task_id as string, (p) => p === "running");
    d.setTaskDelay(10_000);
    const queued = await postCommand(d, t, "true");
    await Promise.all([d.close(), d.close()]);
    expect(d.runningCommands).toBe(0);
    expect(await processGroupGone(view.pid as number)).toBe(true);
    expect(d.tasks.find((x) => x.id === queued.body.task_id)?.phase).toBe("cancelled");
  });

  it("an unknown machine is 404", async () => {
    expect((await postCommand(double, token, "true", "cori")).res.status).toBe(404);
  });
});

describe("files", () => {
  it("upload then download (binary=true, base64) gives back every byte value exactly", async () => {
    const bytes = Buffer.concat([Buffer.from(Array.from({ length: 256 }, (_, i) => i)), randomBytes(4096)]);
    const path = join(home, "round trip.bin");
    const up = await uploadBytes(path, bytes);
    expect(up.res.status).toBe(200);
    expect(up.body.status).toBe("OK");
    expect(Buffer.compare(await readFile(path), bytes)).toBe(0);
    const { body } = await download(`${fileUrl("download", path)}?binary=true`);
    expect(body).toMatchObject({ status: "OK", is_binary: true, error: null });
    expect(Buffer.compare(Buffer.from(body.file as string, "base64"), bytes)).toBe(0);
  });

  it("accepts {machine}/abs and %2F-encoded paths besides {machine}//abs; binary=false gives text", async () => {
    await writeFile(join(home, "t.txt"), "héllo\n");
    const abs = join(home, "t.txt");
    for (const url of [
      `/utilities/download/perlmutter${abs}`,
      `/utilities/download/perlmutter/${encodeURIComponent(abs)}`,
    ]) {
      expect((await download(url)).body).toMatchObject({ status: "OK", file: "héllo\n", is_binary: false });
    }
  });

  it("overwrites, does not create parents, and reports missing paths and folders as 200 status ERROR", async () => {
    const path = join(home, "over.txt");
    await uploadBytes(path, Buffer.from("first, longer"));
    await uploadBytes(path, Buffer.from("second"));
    expect(await readFile(path, "utf8")).toBe("second");
    const noParent = await uploadBytes(join(home, "no-such-dir", "x"), Buffer.from("x"));
    expect(noParent.res.status).toBe(200);
    expect(noParent.body).toMatchObject({ status: "ERROR", error: expect.stringMatching(/No such file or directory/) });
    const missing = await download(`${fileUrl("download", join(home, "absent"))}?binary=true`);
    expect(missing.res.status).toBe(200);
    expect(missing.body).toMatchObject({ status: "ERROR", error: expect.stringMatching(/No such file or directory/) });
    const folder = await download(`${fileUrl("download", home)}?binary=true`);
    expect(folder.body).toMatchObject({ status: "ERROR", error: expect.stringMatching(/Is a directory/) });
  });

  it("ls lists . and .. for folders and one full-path entry for a file", async () => {
    await mkdir(join(home, "lsdir"), { recursive: true });
    await writeFile(join(home, "lsdir", "f"), "12345");
    const dir = (await (await api(double, fileUrl("ls", join(home, "lsdir")), token)).json()) as {
      status: string;
      entries: { name: string; size: number; hardlinks: number; perms: string }[];
    };
    expect(dir.status).toBe("OK");
    expect(dir.entries.map((e) => e.name)).toEqual([".", "..", "f"]);
    expect(dir.entries[2]).toMatchObject({ size: 5, hardlinks: 1, perms: expect.stringMatching(/^-rw/) });
    const file = (await (await api(double, fileUrl("ls", join(home, "lsdir", "f")), token)).json()) as typeof dir;
    expect(file.entries.map((e) => e.name)).toEqual([join(home, "lsdir", "f")]);
    const missing = (await (await api(double, fileUrl("ls", join(home, "nope")), token)).json()) as typeof dir;
    expect(missing).toMatchObject({ status: "ERROR", error: expect.stringMatching(/No such file/) });
  });

  it("confines paths to the machine's file area: outside paths, .. and symlinks out are 403, nothing written", async () => {
    expect((await download(`${fileUrl("download", "/etc/passwd")}?binary=true`)).res.status).toBe(403);
    await symlink("/etc", join(home, "etc-link"));
    expect((await download(`${fileUrl("download", join(home, "etc-link", "passwd"))}?binary=true`)).res.status).toBe(
      403,
    );
    const outside = join(double.rootDir(), "..", "escaped.txt");
    expect((await uploadBytes(outside, Buffer.from("x"))).res.status).toBe(403);
    // Raw `..` segments (fetch would resolve them, so this request is written by hand).
    for (const raw of [`${home}/../../../../../../escaped.txt`, `${home}/%2E%2E/%2E%2E/x`]) {
      const status = await new Promise<number>((resolve, reject) => {
        const url = new URL(double.baseUrl);
        const req = httpRequest(
          {
            host: url.hostname,
            port: url.port,
            path: `${url.pathname}/utilities/download/perlmutter/${raw}?binary=true`,
            headers: { authorization: `Bearer ${token}` },
          },
          (res) => {
            res.resume();
            resolve(res.statusCode ?? 0);
          },
        );
        req.on("error", reject);
        req.end();
      });
      expect(status).toBe(403);
    }
    await expect(readFile(join(double.rootDir(), "..", "escaped.txt"))).rejects.toThrow();
    expect((await download(`/utilities/download/cori/${home}?binary=true`)).res.status).toBe(404);
  });

  it("a download larger than maxDownloadBytes is 200 status ERROR", async () => {
    await using small = await startSfapiDouble({ maxDownloadBytes: 10 });
    const t = await accessToken(small);
    const path = join(small.homeDir(), "big");
    await writeFile(path, "01234567890");
    const res = await api(small, `/utilities/download/${filePath("perlmutter", path)}?binary=true`, t);
    expect(await res.json()).toMatchObject({ status: "ERROR", error: expect.stringMatching(/larger/) });
  });
});
