import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdir, readFile, stat, symlink, writeFile } from "node:fs/promises";
import { request as httpRequest } from "node:http";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { type NewtDouble, splitShellWords, startNewtDouble } from "../../src/newt-double/index.js";

// Real processes and servers on a shared machine: an explicit budget per test and hook,
// never vitest's 5 s default (a slow python3 start-up must not fail the suite).
vi.setConfig({ testTimeout: 60_000, hookTimeout: 60_000 });

// Integration tests: a real HTTP server, real folders and real processes, spoken to with
// Node's fetch exactly as a NEWT client would.

let double: NewtDouble;
let cookie: string;
let home: string;

async function login(d: NewtDouble, username = "jdoe", password = "newt-double-password") {
  const res = await fetch(`${d.baseUrl}/auth`, {
    method: "POST",
    body: new URLSearchParams({ username, password }),
  });
  return { res, json: (await res.json()) as Record<string, unknown> };
}

function api(path: string, init: RequestInit & { cookie?: string | null } = {}) {
  const headers = new Headers(init.headers);
  const c = init.cookie === undefined ? cookie : init.cookie;
  if (c !== null) headers.set("cookie", `newt_sessionid=${c}`);
  return fetch(`${double.baseUrl}${path}`, { ...init, headers });
}

function run(executable: string, loginenv = false, c?: string | null) {
  return api(`/command/cori`, {
    method: "POST",
    body: new URLSearchParams({ executable, loginenv: String(loginenv) }),
    cookie: c,
  });
}

const fileUrl = (p: string) => `/file/cori${p.split("/").map(encodeURIComponent).join("/")}`;

beforeAll(async () => {
  double = await startNewtDouble({ commandTimeoutMs: 3000 });
  const { json } = await login(double);
  cookie = json.newt_sessionid as string;
  home = double.homeDir("jdoe");
});
afterAll(async () => {
  await double.close();
});
afterEach(() => double.clearFaults());

describe("authentication and sessions (req. 1, 2)", () => {
  it("answers a wrong password with 200 and auth:false, no cookie", async () => {
    const { res, json } = await login(double, "jdoe", "wrong");
    expect(res.status).toBe(200);
    expect(res.headers.get("set-cookie")).toBeNull();
    expect(json).toEqual({ auth: false, username: null, session_lifetime: 0, newt_sessionid: null });
  });

  it("logs in with a fresh 32-hex session id, cookie and lifetime", async () => {
    const { res, json } = await login(double);
    expect(json.auth).toBe(true);
    expect(json.username).toBe("jdoe");
    expect(json.session_lifetime).toBeGreaterThanOrEqual(43198);
    expect(json.newt_sessionid).toMatch(/^[0-9a-f]{32}$/);
    expect(json.newt_sessionid).not.toBe(cookie);
    expect(res.headers.get("set-cookie")).toBe(`newt_sessionid=${json.newt_sessionid}; Path=/; HttpOnly`);
  });

  it("accepts POST /login and trailing slashes, and reports sessions on GET /login and /auth/", async () => {
    const res = await fetch(`${double.baseUrl}/login/`, {
      method: "POST",
      body: new URLSearchParams({ username: "jdoe", password: "newt-double-password" }),
    });
    const id = ((await res.json()) as { newt_sessionid: string }).newt_sessionid;
    for (const p of ["/login", "/auth/", "/login/"]) {
      const s = (await (await api(p, { cookie: id })).json()) as Record<string, unknown>;
      expect(s).toMatchObject({ auth: true, username: "jdoe", newt_sessionid: id });
    }
    const garbage = (await (await api("/login", { cookie: "Loren Ipsum" })).json()) as Record<string, unknown>;
    expect(garbage.auth).toBe(false);
    const none = await api("/login", { cookie: null });
    expect(none.status).toBe(200);
    expect(((await none.json()) as { auth: boolean }).auth).toBe(false);
  });

  it("destroys a session on GET /logout and on DELETE /auth", async () => {
    for (const how of [
      { path: "/logout", method: "GET" },
      { path: "/auth", method: "DELETE" },
    ]) {
      const { json } = await login(double);
      const id = json.newt_sessionid as string;
      const out = (await (await api(how.path, { method: how.method, cookie: id })).json()) as { auth: boolean };
      expect(out.auth).toBe(false);
      expect(((await (await api("/login", { cookie: id })).json()) as { auth: boolean }).auth).toBe(false);
      expect((await run("/bin/true", false, id)).status).toBe(403);
    }
  });

  it("requires password+otp in MFA mode", async () => {
    let code = "123456";
    const d = await startNewtDouble({ users: [{ username: "mfa", password: "pw", otp: () => code }] });
    try {
      expect((await login(d, "mfa", "pw")).json.auth).toBe(false);
      expect((await login(d, "mfa", "pw123456")).json.auth).toBe(true);
      code = "654321";
      expect((await login(d, "mfa", "pw123456")).json.auth).toBe(false);
      expect((await login(d, "mfa", "pw654321")).json.auth).toBe(true);
    } finally {
      await d.close();
    }
  });

  it("expires sessions on the double's clock, and on demand", async () => {
    const d = await startNewtDouble({ sessionLifetimeSeconds: 60 });
    try {
      const id = (await login(d)).json.newt_sessionid as string;
      const status = async () =>
        (await (await fetch(`${d.baseUrl}/login`, { headers: { cookie: `newt_sessionid=${id}` } })).json()) as Record<
          string,
          unknown
        >;
      expect((await status()).session_lifetime).toBeGreaterThan(55);
      d.clock.advance(30_000);
      const half = (await status()).session_lifetime as number;
      expect(half).toBeLessThanOrEqual(30);
      expect(half).toBeGreaterThan(25);
      d.clock.advance(31_000);
      expect(await status()).toMatchObject({ auth: false, session_lifetime: 0 });
      const id2 = (await login(d)).json.newt_sessionid as string;
      d.expireSessions();
      const r = await fetch(`${d.baseUrl}/login`, { headers: { cookie: `newt_sessionid=${id2}` } });
      expect(((await r.json()) as { auth: boolean }).auth).toBe(false);
      expect(d.issueSession("jdoe")).toMatch(/^[0-9a-f]{32}$/);
    } finally {
      await d.close();
    }
  });
});

describe("protected endpoints (req. 3)", () => {
  it("answers 403 JSON without a valid session and runs nothing", async () => {
    const marker = join(home, "must-not-exist");
    const res = await run(`/usr/bin/touch ${marker}`, false, "garbage");
    expect(res.status).toBe(403);
    expect(await res.json()).toMatchObject({ status: "ERROR", error: "You must be logged in to access this." });
    expect((await api(fileUrl(join(home, "x")), { method: "PUT", body: "x", cookie: null })).status).toBe(403);
    expect(existsSync(marker)).toBe(false);
    expect(existsSync(join(home, "x"))).toBe(false);
  });

  it("can answer 401 instead", async () => {
    const d = await startNewtDouble({ unauthenticatedStatus: 401 });
    try {
      expect((await fetch(`${d.baseUrl}/command/cori`, { method: "POST" })).status).toBe(401);
    } finally {
      await d.close();
    }
  });
});

describe("files (req. 4–8)", () => {
  it("round-trips binary bytes through PUT and GET ?view=read, overwriting", async () => {
    const bytes = new Uint8Array(70_000);
    for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 7919) & 0xff;
    const p = join(home, "dir with space", "é✓ 'q'.bin");
    await mkdir(join(home, "dir with space"));
    const put = await api(fileUrl(p), { method: "PUT", body: bytes });
    expect(put.status).toBe(200);
    expect(await put.json()).toEqual({ status: "OK", location: p });
    expect(new Uint8Array(await readFile(p))).toEqual(bytes);
    const get = await api(`${fileUrl(p)}?view=read`);
    expect(get.status).toBe(200);
    expect(get.headers.get("content-type")).toBe("application/octet-stream");
    expect(new Uint8Array(await get.arrayBuffer())).toEqual(bytes);
    await api(fileUrl(p), { method: "PUT", body: "short" });
    expect(await readFile(p, "utf8")).toBe("short");
  });

  it("answers 500 JSON when the parent folder is missing, and 404 for missing files and folders", async () => {
    const put = await api(fileUrl(join(home, "no-such-dir", "f")), { method: "PUT", body: "x" });
    expect(put.status).toBe(500);
    expect(((await put.json()) as { error: string }).error).toMatch(/No such file or directory/);
    expect((await api(`${fileUrl(join(home, "missing"))}?view=read`)).status).toBe(404);
    expect((await api(`${fileUrl(home)}?view=read`)).status).toBe(404);
  });

  it("can answer 500 for missing downloads (NEWT 2.0)", async () => {
    const d = await startNewtDouble({ missingFileStatus: 500 });
    try {
      const id = d.issueSession("jdoe");
      const res = await fetch(`${d.baseUrl}/file/cori${d.homeDir("jdoe")}/nope?view=read`, {
        headers: { cookie: `newt_sessionid=${id}` },
      });
      expect(res.status).toBe(500);
    } finally {
      await d.close();
    }
  });

  it("refuses '..', paths outside the system root, symlink escapes and unknown systems", async () => {
    const raw = (path: string) =>
      new Promise<number>((resolve, reject) => {
        const u = new URL(double.baseUrl);
        const req = httpRequest(
          {
            host: u.hostname,
            port: u.port,
            path: `${u.pathname}${path}`,
            headers: { cookie: `newt_sessionid=${cookie}` },
          },
          (res) => {
            res.resume();
            resolve(res.statusCode ?? 0);
          },
        );
        req.on("error", reject);
        req.end();
      });
    expect(await raw(`/file/cori${home}/../../../../../../../../etc/passwd?view=read`)).toBe(403);
    expect(await raw(`/file/cori${home}/%2e%2e/x?view=read`)).toBe(403);
    expect(await raw(`/file/cori/etc/passwd?view=read`)).toBe(403);
    expect(await raw(`/file/nersc${home}/x?view=read`)).toBe(404);
    await symlink("/etc", join(home, "escape"));
    expect(await raw(`/file/cori${home}/escape/passwd?view=read`)).toBe(403);
  });

  it("lists folders with string-valued entries, . and .. first", async () => {
    const dir = join(home, "listing");
    await mkdir(dir);
    await writeFile(join(dir, "a.txt"), "12345");
    const res = await api(`${fileUrl(dir)}/`);
    const entries = (await res.json()) as Record<string, string>[];
    expect(entries.map((e) => e.name)).toEqual([".", "..", "a.txt"]);
    const a = entries[2] as Record<string, string>;
    expect(a).toMatchObject({ size: "5", hardlinks: "1", perms: expect.stringMatching(/^-rw/) });
    expect(entries[0]?.perms).toMatch(/^d/);
    for (const e of entries) for (const v of Object.values(e)) expect(typeof v).toBe("string");
    expect(a.date).toMatch(/^[A-Z][a-z]{2} [ \d]\d (\d\d:\d\d| \d{4})$/);
  });

  it("accepts multipart uploads into a folder", async () => {
    const form = new FormData();
    form.append("file", new Blob([new Uint8Array([0, 1, 2, 255])]), "up.bin");
    const res = await api(fileUrl(home), { method: "POST", body: form });
    expect(res.status).toBe(200);
    expect(new Uint8Array(await readFile(join(home, "up.bin")))).toEqual(new Uint8Array([0, 1, 2, 255]));
  });

  it("deletes files, or answers 501 when DELETE is configured unsupported", async () => {
    const p = join(home, "del.txt");
    await writeFile(p, "x");
    expect((await api(fileUrl(p), { method: "DELETE" })).status).toBe(200);
    expect(existsSync(p)).toBe(false);
    expect((await api(fileUrl(p), { method: "DELETE" })).status).toBe(404);
    const d = await startNewtDouble({ deleteSupport: "unsupported" });
    try {
      const f = join(d.homeDir("jdoe"), "keep");
      await writeFile(f, "x");
      const res = await fetch(`${d.baseUrl}/file/cori${f}`, {
        method: "DELETE",
        headers: { cookie: `newt_sessionid=${d.issueSession("jdoe")}` },
      });
      expect(res.status).toBe(501);
      expect(existsSync(f)).toBe(true);
    } finally {
      await d.close();
    }
  });
});

describe("commands (req. 9)", () => {
  it("splits words with quotes, runs in the real home with HOME set, and returns no exit code", async () => {
    const res = await run(`/usr/bin/printf '%s|' "a b" 'c'"d" e\\ f '$HOME' "it's"`);
    const body = (await res.json()) as Record<string, unknown>;
    expect(body).toEqual({ output: "a b|cd|e f|$HOME|it's|", error: "" });
    const pwd = (await (await run("/bin/pwd")).json()) as { output: string };
    expect(pwd.output).toBe(`${home}\n`);
    const env = (await (await run("/bin/sh -c 'echo $HOME; false'")).json()) as Record<string, string>;
    expect(env).toEqual({ output: `${home}\n`, error: "" });
  });

  it("captures stderr and refuses relative executables without a login environment", async () => {
    const res = (await (await run(`/bin/sh -c 'echo out; echo err >&2; exit 3'`)).json()) as Record<string, string>;
    expect(res).toEqual({ output: "out\n", error: "err\n" });
    const rel = (await (await run("echo hi")).json()) as Record<string, string>;
    expect(rel.output).toBe("");
    expect(rel.error).toMatch(/full executable path/);
    const missing = (await (await run("/bin/echoN x")).json()) as Record<string, string>;
    expect(missing.error).toMatch(/No such file/);
  });

  it("runs through /bin/sh -lc with loginenv=true (bare names and $VAR work)", async () => {
    const res = (await (await run("echo $HOME; pwd", true)).json()) as Record<string, string>;
    expect(res.output).toBe(`${home}\n${home}\n`);
    const last = double.requestLog.at(-1);
    expect(last?.command?.argv).toEqual(["/bin/sh", "-lc", "echo $HOME; pwd"]);
  });

  it("answers 400 without executable", async () => {
    const res = await api("/command/cori", { method: "POST", body: new URLSearchParams({ loginenv: "false" }) });
    expect(res.status).toBe(400);
  });

  it("kills the whole process group at its time limit", async () => {
    const pidFile = join(home, "bg.pid");
    const res = await run(`/bin/sh -c 'sleep 60 & echo $! > ${pidFile}; echo started; wait'`);
    const body = (await res.json()) as Record<string, string>;
    expect(body.output).toBe("started\n");
    expect(body.error).toMatch(/killed after 3000 ms/);
    const pid = Number(await readFile(pidFile, "utf8"));
    // The background sleep was in the group: it must be gone (or a zombie being reaped).
    let alive = true;
    for (let i = 0; i < 50 && alive; i++) {
      try {
        process.kill(pid, 0);
        const st = await readFile(`/proc/${pid}/stat`, "utf8").catch(() => "");
        alive = !/\) Z /.test(st) && st !== "";
        if (alive) await new Promise((r) => setTimeout(r, 100));
      } catch {
        alive = false;
      }
    }
    expect(alive).toBe(false);
    expect(double.requestLog.at(-1)?.command?.timedOut).toBe(true);
  }, 20_000);
});

describe("status and queue (req. 10, 11)", () => {
  it("reports systems up or down without a session", async () => {
    expect(await (await api("/status", { cookie: null })).json()).toEqual([{ system: "cori", status: "up" }]);
    double.setMachineStatus("cori", "down");
    expect(await (await api("/status/cori/", { cookie: null })).json()).toEqual({ system: "cori", status: "down" });
    double.setMachineStatus("cori", "up");
    expect((await api("/status/perlmutter", { cookie: null })).status).toBe(404);
  });

  it("runs a job script in the background and reports R then C", async () => {
    const out = join(home, "job.out");
    const res = await api("/queue/cori", {
      method: "POST",
      body: new URLSearchParams({ jobscript: `sleep 0.3; echo done > ${out}` }),
    });
    const { status, jobid } = (await res.json()) as { status: string; jobid: string };
    expect(status).toBe("OK");
    expect((await (await api(`/queue/cori/${jobid}`)).json()) as { status: string }).toMatchObject({ status: "R" });
    let state = "R";
    for (let i = 0; i < 100 && state !== "C"; i++) {
      await new Promise((r) => setTimeout(r, 100));
      state = ((await (await api(`/queue/cori/${jobid}`)).json()) as { status: string }).status;
    }
    expect(state).toBe("C");
    expect(await readFile(out, "utf8")).toBe("done\n");
    const list = (await (await api("/queue/cori/?user=jdoe")).json()) as { jobid: string }[];
    expect(list.map((j) => j.jobid)).toContain(jobid);
    expect((await api("/queue/cori/999999")).status).toBe(404);
  });
});

describe("fault injection and the request log (req. 12)", () => {
  it("answers an injected status without processing the request, for the armed number of times", async () => {
    const f = join(home, "fault-status");
    double.inject("POST /command", { kind: "status", status: 503, times: 2 });
    expect((await run(`/usr/bin/touch ${f}`)).status).toBe(503);
    expect((await run(`/usr/bin/touch ${f}`)).status).toBe(503);
    expect(existsSync(f)).toBe(false);
    expect((await run(`/usr/bin/touch ${f}`)).status).toBe(200);
    expect(existsSync(f)).toBe(true);
    const entries = double.requestLog.filter((e) => e.form.executable === `/usr/bin/touch ${f}`);
    expect(entries.map((e) => [e.status, e.fault, e.command !== undefined])).toEqual([
      [503, "status 503", false],
      [503, "status 503", false],
      [200, undefined, true],
    ]);
  });

  it("resets before processing (nothing runs) or after (the command ran, the answer is lost)", async () => {
    const before = join(home, "reset-before");
    double.inject("POST /command", { kind: "reset", when: "before" });
    await expect(run(`/usr/bin/touch ${before}`)).rejects.toThrow();
    expect(existsSync(before)).toBe(false);
    const after = join(home, "reset-after");
    double.inject("/command", { kind: "reset", when: "after" });
    await expect(run(`/usr/bin/touch ${after}`)).rejects.toThrow();
    expect(existsSync(after)).toBe(true);
    expect(double.requestLog.at(-1)).toMatchObject({ outcome: "reset", fault: "reset after" });
  });

  it("delays answers, and skips a delayed request whose client has gone", async () => {
    const f = join(home, "delayed");
    double.inject("POST /command", { kind: "delay", ms: 600, when: "before" });
    await expect(
      fetch(`${double.baseUrl}/command/cori`, {
        method: "POST",
        headers: { cookie: `newt_sessionid=${cookie}` },
        body: new URLSearchParams({ executable: `/usr/bin/touch ${f}` }),
        signal: AbortSignal.timeout(100),
      }),
    ).rejects.toThrow();
    await new Promise((r) => setTimeout(r, 900));
    expect(existsSync(f)).toBe(false);
    const entry = double.requestLog.find((e) => e.form.executable === `/usr/bin/touch ${f}`);
    expect(entry?.outcome).toBe("client-gone");
    double.inject("GET /login", { kind: "delay", ms: 50, when: "after" });
    expect((await api("/login")).status).toBe(200);
  });

  it("truncates bodies, leaving the client with an error", async () => {
    const p = join(home, "trunc.bin");
    await writeFile(p, Buffer.alloc(10_000, 7));
    double.inject("GET /file", { kind: "truncate", bytes: 100, match: (r) => r.path.endsWith("trunc.bin") });
    const res = await api(`${fileUrl(p)}?view=read`);
    expect(res.headers.get("content-length")).toBe("10000");
    await expect(res.arrayBuffer()).rejects.toThrow();
    expect(double.requestLog.at(-1)?.outcome).toBe("truncated");
    const again = await api(`${fileUrl(p)}?view=read`);
    expect((await again.arrayBuffer()).byteLength).toBe(10_000);
  });

  it("never logs a password or a session id", async () => {
    await login(double, "jdoe", "a-secret-password");
    const text = JSON.stringify(double.requestLog);
    expect(text).not.toContain("a-secret-password");
    expect(text).not.toContain("newt-double-password");
    expect(text).not.toContain(cookie);
    const entry = double.requestLog.filter((e) => e.route === "POST /auth").at(-1);
    expect(entry?.form).toEqual({ username: "jdoe", password: "<redacted>" });
  });

  it("refuses malformed faults", () => {
    expect(() => double.inject("POST command" as never, { kind: "reset" })).toThrow(/bad route/);
    expect(() => double.inject("*", { kind: "status", status: 42 })).toThrow(/HTTP status/);
    expect(() => double.inject("*", { kind: "delay", ms: -1 })).toThrow(/ms/);
  });
});

describe("lifecycle", () => {
  it("close() kills running commands, stops listening and removes its folder; twice is fine", async () => {
    const d = await startNewtDouble();
    const root = d.rootDir("cori");
    const id = d.issueSession("jdoe");
    const pending = fetch(`${d.baseUrl}/command/cori`, {
      method: "POST",
      headers: { cookie: `newt_sessionid=${id}` },
      body: new URLSearchParams({ executable: "/bin/sleep 60" }),
    }).catch((e: unknown) => e);
    for (let i = 0; i < 100 && d.runningCommands === 0; i++) await new Promise((r) => setTimeout(r, 20));
    expect(d.runningCommands).toBe(1);
    await Promise.all([d.close(), d.close()]);
    expect(d.runningCommands).toBe(0);
    await pending;
    expect(existsSync(root)).toBe(false);
    await expect(fetch(`${d.baseUrl}/status`)).rejects.toThrow();
  });

  it("keeps a given base folder, and homes are real absolute paths", async () => {
    const base = join(home, "base");
    await mkdir(base);
    const d = await startNewtDouble({
      baseDir: base,
      machines: ["cori", "perlmutter"],
      users: [{ username: "ab", password: "p" }],
    });
    expect(d.homeDir("ab", "perlmutter")).toBe(join(base, "perlmutter/global/homes/a/ab"));
    expect((await stat(d.homeDir("ab"))).mode & 0o777).toBe(0o700);
    await d.close();
    expect(existsSync(join(base, "cori"))).toBe(true);
  });
});

describe("splitShellWords", () => {
  // /bin/sh is the oracle for lines without expansions.
  const viaSh = (line: string) =>
    execFileSync("/bin/sh", ["-c", `for a in ${line}; do printf '%s\\0' "$a"; done`], { encoding: "utf8" })
      .split("\0")
      .slice(0, -1);

  it("agrees with /bin/sh on quoting", () => {
    for (const line of [
      `a b  c`,
      `'a b' "c d" e\\ f`,
      `'it'\\''s' "x\\"y" "\\$z" "a\\b"`,
      `'' ""  x`,
      `"a"'b'c`,
      `"tab\there" 'new\nline'`,
    ]) {
      expect(splitShellWords(line)).toEqual(viaSh(line));
    }
  });

  it("does no expansion and refuses unterminated quotes", () => {
    expect(splitShellWords("$HOME * ~ ; |")).toEqual(["$HOME", "*", "~", ";", "|"]);
    expect(() => splitShellWords("'abc")).toThrow(/unterminated single/);
    expect(() => splitShellWords('"abc')).toThrow(/unterminated double/);
    expect(() => splitShellWords("abc\\")).toThrow(/trailing backslash/);
  });
});
