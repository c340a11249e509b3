import { existsSync } from "node:fs";
import { mkdir, readFile, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { hasErrorCode, isSremoteError } from "@sremote/core";
import { type NewtDouble, startNewtDouble } from "@sremote/testkit/newt-double";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { newtConnector } from "../src/index.js";
import { commandsRun, connectorFactory, filesUnder, PASSWORD, since, token, USER } from "./helpers.js";

// Real processes and servers on a shared machine: an explicit budget per test and hook,
// never vitest's 5 s default (a slow python3 start-up must not fail the suite).
vi.setConfig({ testTimeout: 60_000, hookTimeout: 60_000 });

// Integration tests: the connector against the NEWT double — a real HTTP server, real
// files and real processes.

let double: NewtDouble;
let home: string;
const make = connectorFactory(() => double);

beforeAll(async () => {
  double = await startNewtDouble({ commandTimeoutMs: 1500 });
  home = double.homeDir(USER);
});
afterEach(() => {
  double.clearFaults();
});
afterAll(async () => {
  await double.close();
});

async function rejection(p: Promise<unknown>): Promise<Error & { code?: string; retryable?: boolean }> {
  const r = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(r instanceof Error)) throw new Error("expected a rejection");
  return r as Error & { code?: string };
}

describe("authentication", () => {
  it("a wrong password gives AUTH_FAILED, and no file or command request is sent afterwards", async () => {
    const from = double.requestLog.length;
    const c = make({ credentials: { username: USER, password: "wrong-password" } });
    const err = await rejection(c.connect());
    expect(err.code).toBe("AUTH_FAILED");
    expect(err.message).toMatch(/refused the login of jdoe/);
    expect(err.message).not.toContain("wrong-password");
    for (const p of [
      c.getFile(`${home}/x`),
      c.putFile(`${home}/x`, new Uint8Array([1])),
      c.exec(["/bin/true"]),
      c.deleteFile(`${home}/x`),
      c.homeDir(),
    ]) {
      expect((await rejection(p)).code).toBe("AUTH_FAILED");
    }
    const sent = since(double, from);
    expect(sent.map((e) => e.route)).toEqual(["POST /auth"]);
    expect(existsSync(`${home}/x`)).toBe(false);
    expect((await c.status()).connected).toBe(false);
  });

  it("logs in lazily, finds the home folder with /bin/pwd and reports status via GET /login", async () => {
    const c = make();
    expect(await c.homeDir()).toBe(home);
    const st = await c.status();
    expect(st.connected).toBe(true);
    expect(st.detail).toMatch(/^jdoe@cori via http:\/\/127\.0\.0\.1:\d+\/newt, session valid for 1[12] h/);
    expect(st.info).toMatchObject({ machine: "cori", username: "jdoe" });
    expect(JSON.stringify(st)).not.toContain(PASSWORD);
    const from = double.requestLog.length;
    expect(await c.homeDir()).toBe(home); // cached: no request
    expect(since(double, from)).toHaveLength(0);
  });

  it("appends the one-time code to the password, and needs a fresh one to log in again", async () => {
    const d = await startNewtDouble({ users: [{ username: "mfa", password: "pw", otp: "123456" }] });
    try {
      const c = newtConnector({
        machine: "cori",
        baseUrl: d.baseUrl,
        credentials: { username: "mfa", password: "pw", otp: "123456" },
      });
      expect(await c.homeDir()).toBe(d.homeDir("mfa"));
      d.expireSessions();
      const err = await rejection(c.exec(["/bin/true"]));
      expect(err.code).toBe("AUTH_FAILED");
      expect(err.message).toMatch(/session expired.*fresh one-time code/);
      await c.close();
      let asked = 0;
      const c2 = newtConnector({
        machine: "cori",
        baseUrl: d.baseUrl,
        credentials: {
          username: "mfa",
          password: "pw",
          otp: async () => {
            asked++;
            return "123456";
          },
        },
      });
      await c2.connect();
      d.expireSessions();
      expect((await c2.exec(["/bin/true"])).exitCode).toBe(0);
      expect(asked).toBe(2);
      await c2.close();
    } finally {
      await d.close();
    }
  });

  it("re-authenticates once when the session expired, then repeats the refused request", async () => {
    const c = make();
    await c.connect();
    double.expireSessions();
    const t = token();
    const from = double.requestLog.length;
    const r = await c.exec(["/bin/echo", t]);
    expect(r).toEqual({ stdout: `${t}\n`, stderr: "", exitCode: 0, signal: null });
    expect(since(double, from).map((e) => [e.route, e.status])).toEqual([
      ["POST /command", 403],
      ["GET /login", 200],
      ["POST /auth", 200],
      ["POST /command", 200],
    ]);
    expect(commandsRun(double, t)).toHaveLength(1);
  });

  it("re-authenticates after the double's clock passes the session lifetime", async () => {
    const d = await startNewtDouble({ sessionLifetimeSeconds: 3600 });
    try {
      const c = newtConnector({
        machine: "cori",
        baseUrl: d.baseUrl,
        credentials: { username: USER, password: PASSWORD },
      });
      await c.connect();
      d.clock.advance(3601_000);
      expect(await c.homeDir()).toBe(d.homeDir(USER));
      expect(d.requestLog.filter((e) => e.route === "POST /auth")).toHaveLength(2);
      await c.close();
    } finally {
      await d.close();
    }
  });

  it("works with a given session id, and fails with AUTH_FAILED saying the session expired", async () => {
    const id = double.issueSession(USER);
    const from = double.requestLog.length;
    const c = make({ credentials: { sessionId: id } });
    expect(await c.homeDir()).toBe(home);
    double.expireSessions();
    const err = await rejection(c.getFile(`${home}/anything`));
    expect(err.code).toBe("AUTH_FAILED");
    expect(err.message).toMatch(/session expired or is no longer valid/);
    expect(err.message).not.toContain(id);
    expect(since(double, from).some((e) => e.route === "POST /auth")).toBe(false);
    await c.close();
    // A given session is not logged out on close (someone else may use it).
    expect(since(double, from).some((e) => e.route === "GET /logout")).toBe(false);
  });

  it("falls back to the password when the given session id is no longer valid", async () => {
    const c = make({
      credentials: { sessionId: "0123456789abcdef0123456789abcdef", username: USER, password: PASSWORD },
    });
    expect(await c.homeDir()).toBe(home);
  });

  it("reads credentials and the base URL from SREMOTE_NEWT_* variables", async () => {
    const c = newtConnector({
      machine: "cori",
      env: { SREMOTE_NEWT_URL: double.baseUrl, SREMOTE_NEWT_USER: USER, SREMOTE_NEWT_PASSWORD: PASSWORD },
    });
    try {
      expect(c.baseUrl).toBe(double.baseUrl);
      expect(await c.homeDir()).toBe(home);
    } finally {
      await c.close();
    }
    const s = newtConnector({
      machine: "cori",
      env: { SREMOTE_NEWT_URL: double.baseUrl, SREMOTE_NEWT_SESSION_ID: double.issueSession(USER) },
    });
    try {
      expect((await s.exec(["/bin/true"])).exitCode).toBe(0);
    } finally {
      await s.close();
    }
  });

  it("logs its own session out on close, and refuses work afterwards with CLOSED", async () => {
    const c = make();
    await c.connect();
    const from = double.requestLog.length;
    await Promise.all([c.close(), c.close()]);
    expect(since(double, from).map((e) => e.route)).toEqual(["GET /logout"]);
    expect((await rejection(c.homeDir())).code).toBe("CLOSED");
    expect(await c.status()).toMatchObject({ connected: false, detail: "closed" });
  });

  it("refuses bad options with clear UsageErrors and sends nothing", () => {
    const base = { machine: "cori", baseUrl: "http://127.0.0.1:1/newt" };
    const bad = (o: object) => () => newtConnector({ ...base, env: {}, ...o } as never);
    expect(bad({})).toThrow(/no credentials: pass credentials, or set SREMOTE_NEWT_USER/);
    expect(bad({ credentials: { username: "u" } })).toThrow(/no password \(set SREMOTE_NEWT_PASSWORD\)/);
    expect(bad({ machine: "Cori", credentials: { sessionId: "x" } })).toThrow(/machine/);
    expect(bad({ baseUrl: "http://newt.example.org/newt", credentials: { sessionId: "x" } })).toThrow(/plain http/);
    expect(bad({ baseUrl: "ftp://x/newt", credentials: { sessionId: "x" } })).toThrow(/http\(s\)/);
    expect(bad({ credentials: { sessionId: "a;b" } })).toThrow(/sessionId/);
    try {
      bad({ credentials: { username: "u" } })();
    } catch (e) {
      expect(isSremoteError(e) && e.code).toBe("INVALID_ARGUMENT");
    }
  });
});

describe("files", () => {
  it("round-trips binary data to paths with spaces, quotes, % and unicode, mode 0600 by default", async () => {
    const c = make();
    const dir = join(home, "files dir", "it's 100% é✓");
    await mkdir(dir, { recursive: true });
    const data = new Uint8Array(100_000);
    for (let i = 0; i < data.length; i++) data[i] = (i * 131) & 0xff;
    const p = join(dir, "a #b?.bin");
    await c.putFile(p, data);
    expect(new Uint8Array(await readFile(p))).toEqual(data);
    expect((await stat(p)).mode & 0o7777).toBe(0o600);
    expect(await c.getFile(p)).toEqual(data);
    await c.putFile(p, new Uint8Array([1, 2, 3]), { mode: 0o640 });
    expect((await stat(p)).mode & 0o7777).toBe(0o640);
    expect(await c.getFile(p)).toEqual(new Uint8Array([1, 2, 3]));
    await c.putFile(p, new Uint8Array(0));
    expect(await c.getFile(p)).toEqual(new Uint8Array(0));
  });

  it("rejects a missing parent folder with FILE_NOT_FOUND and creates nothing", async () => {
    const c = make();
    const p = join(home, "no-such-folder", "f.txt");
    const err = await rejection(c.putFile(p, new Uint8Array([1])));
    expect(err.code).toBe("FILE_NOT_FOUND");
    expect(err.message).toMatch(/folder .*no-such-folder does not exist/);
    expect(existsSync(join(home, "no-such-folder"))).toBe(false);
  });

  it("rejects a missing file with FILE_NOT_FOUND, whether NEWT answers 404 or 500", async () => {
    const c = make();
    expect((await rejection(c.getFile(join(home, "missing.bin")))).code).toBe("FILE_NOT_FOUND");
    const d = await startNewtDouble({ missingFileStatus: 500 });
    const c2 = newtConnector({
      machine: "cori",
      baseUrl: d.baseUrl,
      credentials: { username: USER, password: PASSWORD },
    });
    try {
      const h = d.homeDir(USER);
      expect((await rejection(c2.getFile(join(h, "missing.bin")))).code).toBe("FILE_NOT_FOUND");
      const dirErr = await rejection(c2.getFile(h));
      expect(dirErr.code).toBe("REMOTE_IO");
      expect(dirErr.message).toMatch(/is a folder/);
    } finally {
      await c2.close();
      await d.close();
    }
  });

  it("deletes with rm -f through a command; deleting a missing file succeeds", async () => {
    const c = make();
    const p = join(home, "to delete.txt");
    await writeFile(p, "x");
    await c.connect();
    const from = double.requestLog.length;
    await c.deleteFile(p);
    expect(existsSync(p)).toBe(false);
    await c.deleteFile(p);
    expect(since(double, from).map((e) => e.route)).toEqual(["POST /command", "POST /command"]);
    const err = await rejection(c.deleteFile(home));
    expect(err.code).toBe("REMOTE_IO");
    expect(err.message).toMatch(/Is a directory/);
  });

  it("with deleteMethod http, uses DELETE and falls back to rm -f when NEWT answers 501", async () => {
    for (const deleteSupport of ["supported", "unsupported"] as const) {
      const d = await startNewtDouble({ deleteSupport });
      const c = newtConnector({
        machine: "cori",
        baseUrl: d.baseUrl,
        credentials: { username: USER, password: PASSWORD },
        deleteMethod: "http",
      });
      try {
        const p = join(d.homeDir(USER), "gone.txt");
        await writeFile(p, "x");
        await c.deleteFile(p);
        expect(existsSync(p)).toBe(false);
        const routes = d.requestLog.filter((e) => e.route !== "POST /auth").map((e) => [e.route, e.status]);
        expect(routes).toEqual(
          deleteSupport === "supported"
            ? [["DELETE /file", 200]]
            : [
                ["DELETE /file", 501],
                ["POST /command", 200],
              ],
        );
      } finally {
        await c.close();
        await d.close();
      }
    }
  });

  it("refuses relative and dot-dot paths before sending anything", async () => {
    const c = make();
    const from = double.requestLog.length;
    await expect(c.getFile("relative/path")).rejects.toThrow(/absolute path/);
    await expect(c.putFile(`${home}/../x`, new Uint8Array())).rejects.toThrow(/'\.' or '\.\.'/);
    await expect(c.deleteFile("/")).rejects.toThrow(/not a file/);
    await expect(c.putFile(`${home}/x`, new Uint8Array(), { mode: 0o10000 })).rejects.toThrow(/mode/);
    await expect(c.exec([])).rejects.toMatchObject({ code: "INVALID_ARGUMENT" });
    expect(since(double, from)).toHaveLength(0);
  });
});

describe("exec", () => {
  it("reports real exit codes: false → 1, sh -c 'exit 42' → 42", async () => {
    const c = make();
    expect(await c.exec(["false"], { loginEnv: true })).toMatchObject({ exitCode: 1 });
    expect(await c.exec(["/bin/false"])).toEqual({ stdout: "", stderr: "", exitCode: 1, signal: null });
    expect(await c.exec(["sh", "-c", "exit 42"], { loginEnv: true })).toMatchObject({ exitCode: 42 });
    expect(await c.exec(["/bin/sh", "-c", "echo out; printf err >&2; exit 3"])).toEqual({
      stdout: "out\n",
      stderr: "err",
      exitCode: 3,
      signal: null,
    });
  });

  it("quotes every argv element, and applies cwd and env", async () => {
    const c = make();
    const words = ["a b", "'", '"', "$(touch /tmp/pwned-newt-exec)", "`id`", "; ls", "a\nb", "", "*", "é✓", "\\"];
    const r = await c.exec(["/usr/bin/printf", "%s\\0", ...words]);
    expect(r.stdout.split("\0").slice(0, -1)).toEqual(words);
    const cwd = join(home, "work dir");
    await mkdir(cwd, { recursive: true });
    const e = await c.exec(["/bin/sh", "-c", 'pwd; printf "%s" "$MY_VAR"'], { cwd, env: { MY_VAR: "v $HOME 'q'" } });
    expect(e.stdout).toBe(`${cwd}\nv $HOME 'q'`);
    const bad = await c.exec(["/bin/true"], { cwd: join(home, "no-such-dir") });
    expect(bad.exitCode).not.toBe(0);
    expect(bad.stderr).toMatch(/no-such-dir/);
    await expect(c.exec(["/bin/true"], { env: { "BAD NAME": "x" } })).rejects.toThrow(
      /invalid environment variable name/,
    );
  });

  it("runs in a login environment when asked (bare names and $HOME resolve)", async () => {
    const c = make();
    const r = await c.exec(["sh", "-c", 'echo "$HOME"'], { loginEnv: true });
    expect(r).toMatchObject({ stdout: `${home}\n`, exitCode: 0 });
    const last = double.requestLog.filter((e) => e.route === "POST /command").at(-1);
    expect(last?.form.loginenv).toBe("true");
  });

  it("emulates stdin with an uploaded temp file, creating the temp folder, and leaves nothing behind", async () => {
    const tmp = join(home, `stdin-tmp-${token()}`);
    const c = make({ tempDir: tmp });
    expect(existsSync(tmp)).toBe(false);
    const bytes = new Uint8Array([0, 1, 2, 10, 255, 0, 65]);
    const r = await c.exec(["/bin/sh", "-c", "od -An -tu1 | tr -s ' ' ' '"], { stdin: bytes });
    expect(r.stdout.trim()).toBe("0 1 2 10 255 0 65");
    expect((await stat(tmp)).mode & 0o777).toBe(0o700);
    expect((await c.exec(["/bin/cat"], { stdin: "héllo\n" })).stdout).toBe("héllo\n");
    // Only the command markers (exactly-once), removed by close().
    expect((await filesUnder(tmp)).filter((f) => !f.startsWith("once/"))).toEqual([]);
    const cat = await c.exec(["/bin/cat"]);
    expect(cat).toMatchObject({ stdout: "", exitCode: 0 });
    await c.close();
    expect(await filesUnder(tmp)).toEqual([]);
  });

  it("a command killed by NEWT's time limit is a ConnectorError saying the marker was missing", async () => {
    const c = make();
    const err = await rejection(c.exec(["/bin/sleep", "30"]));
    expect(err.code).toBe("COMMAND_FAILED");
    expect(err.message).toMatch(/exit marker is missing/);
    expect(err.name).toBe("ConnectorError");
    expect(err.retryable).toBe(false);
  });

  it("a killed command with stdin leaves no temp file behind", async () => {
    const c = make();
    await rejection(c.exec(["/bin/sh", "-c", "cat >/dev/null; sleep 30"], { stdin: "data" }));
    await c.close(); // removes the killed command's markers
    expect(await filesUnder(join(home, ".sremote", "tmp"))).toEqual([]);
  });

  it("honours an abort signal with ABORTED, and close() with CLOSED", async () => {
    const c = make();
    await c.connect();
    const controller = new AbortController();
    const p = c.exec(["/bin/sleep", "1"], { signal: controller.signal });
    setTimeout(() => controller.abort(), 100);
    expect(hasErrorCode(await rejection(p), "ABORTED")).toBe(true);
    const q = c.exec(["/bin/sleep", "1"]);
    setTimeout(() => void c.close(), 100);
    expect((await rejection(q)).code).toBe("CLOSED");
  });

  it("ends a timed-out or aborted command and its background children on the remote side", async () => {
    // A double without a short time limit of its own: only the connector can stop these.
    const d = await startNewtDouble();
    const c = newtConnector({
      machine: "cori",
      baseUrl: d.baseUrl,
      credentials: { username: USER, password: PASSWORD },
    });
    try {
      const h = d.homeDir(USER);
      await c.connect();
      const script = 'echo started > "$1"; (sleep 2; echo late > "$2") & sleep 2; echo late > "$3"; wait';
      const marks = (tag: string) =>
        ["started", "child", "self"].map((m) => join(h, `${tag}-${m}`)) as [string, string, string];
      const [s1, c1, l1] = marks("timed");
      const [s2, c2, l2] = marks("aborted");
      const controller = new AbortController();
      const timed = rejection(c.exec(["sh", "-c", script, "sh", s1, c1, l1], { timeoutMs: 1000 }));
      const aborted = rejection(c.exec(["sh", "-c", script, "sh", s2, c2, l2], { signal: controller.signal }));
      for (let i = 0; i < 100 && !existsSync(s2); i++) await new Promise((r) => setTimeout(r, 20));
      controller.abort();
      expect((await timed).code).toBe("TIMEOUT");
      expect((await aborted).code).toBe("ABORTED");
      await new Promise((r) => setTimeout(r, 2500));
      expect([s1, s2].map((p) => existsSync(p))).toEqual([true, true]);
      expect([c1, l1, c2, l2].map((p) => existsSync(p))).toEqual([false, false, false, false]);
      expect(d.runningCommands).toBe(0);
      // close() ends the commands it leaves behind too.
      const s3 = join(h, "closed-started");
      const pending = rejection(c.exec(["sh", "-c", 'echo x > "$1"; sleep 20', "sh", s3]));
      for (let i = 0; i < 100 && !existsSync(s3); i++) await new Promise((r) => setTimeout(r, 20));
      expect(d.runningCommands).toBe(1);
      await c.close();
      expect((await pending).code).toBe("CLOSED");
      for (let i = 0; i < 100 && d.runningCommands > 0; i++) await new Promise((r) => setTimeout(r, 20));
      expect(d.runningCommands).toBe(0);
    } finally {
      await c.close();
      await d.close();
    }
  });

  it("times out with TIMEOUT and does not run the command again", async () => {
    const c = make();
    await c.connect();
    const t = token();
    const err = await rejection(c.exec(["/bin/sh", "-c", `sleep 0.6; echo ${t}`], { timeoutMs: 200 }));
    expect(err.code).toBe("TIMEOUT");
    await new Promise((r) => setTimeout(r, 800));
    expect(commandsRun(double, t)).toHaveLength(1);
  });
});
