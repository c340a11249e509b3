import { execFile } from "node:child_process";
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { hostname, tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  ConnectorError,
  deadline,
  type ExactlyOnceIo,
  type ExecResult,
  isIdempotentCommand,
  type MarkerCleanup,
  MarkerLedger,
  markerCleanupScript,
  markerDir,
  markerQueryScript,
  newCommandNonce,
  parseMarkerQuery,
  recordedRun,
  repeatSafely,
  runExactlyOnce,
  shCommand,
} from "../src/index.js";

// The scripts run in a real /bin/sh against a real folder: the markers are what a remote
// shell would leave.

function sh(script: string): Promise<{ stdout: string; stderr: string; code: number }> {
  return new Promise((resolve) => {
    execFile("/bin/sh", ["-c", script], { encoding: "utf8" }, (err, stdout, stderr) => {
      resolve({ stdout, stderr, code: err ? Number((err as { code?: number }).code ?? 1) : 0 });
    });
  });
}

let base: string;
let dir: string;
beforeAll(async () => {
  base = await mkdtemp(join(tmpdir(), "sremote-marker-"));
  dir = markerDir(base);
});
afterAll(async () => {
  await rm(base, { recursive: true, force: true });
});

/** What a connector's wrapper does: the recorded run, then the exit marker on stderr. */
function wrapped(argv: readonly string[], nonce: string, cleanup: MarkerCleanup = { remove: [], shrink: [] }): string {
  return `${recordedRun(shCommand(argv), "/dev/null", { nonce, dir, cleanup })}; printf '\\n%s %s\\n' ${nonce} "$sremote_rc" >&2`;
}

function markerOf(stderr: string, nonce: string): { rc?: number; stderr: string } {
  const at = stderr.lastIndexOf(`\n${nonce} `);
  if (at < 0) return { stderr };
  const rc = /^(\d+)\n/.exec(stderr.slice(at + nonce.length + 2));
  return rc ? { rc: Number(rc[1]), stderr: stderr.slice(0, at) } : { stderr };
}

async function query(nonce: string) {
  const q = newCommandNonce();
  const r = await sh(markerQueryScript(nonce, dir, q));
  return parseMarkerQuery(r.stdout, r.stderr, q);
}

describe("recordedRun and markerQueryScript (real /bin/sh)", () => {
  it("runs the command once per nonce; a second delivery replays its outputs and status", async () => {
    const log = join(base, "side-effects");
    const n = newCommandNonce();
    const argv = ["/bin/sh", "-c", `echo ran >> '${log}'; printf 'out\\n'; printf 'err\\n' >&2; exit 3`];
    const first = await sh(wrapped(argv, n));
    expect(first.stdout).toBe("out\n");
    expect(markerOf(first.stderr, n)).toEqual({ rc: 3, stderr: "err\n" });
    const again = await sh(wrapped(argv, n));
    expect(again.stdout).toBe("out\n");
    expect(markerOf(again.stderr, n)).toEqual({ rc: 3, stderr: "err\n" });
    expect(await readFile(log, "utf8")).toBe("ran\n");
    expect(await query(n)).toEqual({ state: "done", exitCode: 3, stdout: "out\n", stderr: "err\n" });
  });

  it("a query of a nonce that never ran fences it: a late delivery runs nothing", async () => {
    const log = join(base, "fenced-effects");
    const n = newCommandNonce();
    expect(await query(n)).toEqual({ state: "not-run" });
    expect(await query(n)).toEqual({ state: "not-run" });
    const late = await sh(wrapped(["/bin/sh", "-c", `echo ran >> '${log}'`], n));
    expect(markerOf(late.stderr, n).rc).toBeUndefined();
    await expect(readFile(log, "utf8")).rejects.toThrow();
  });

  it("tells a command still running from one whose shell died without a status", async () => {
    const n = newCommandNonce();
    const running = sh(wrapped(["/bin/sleep", "2"], n));
    for (let i = 0; i < 100 && (await readdir(join(base, "once", n)).catch(() => [])).length < 2; i++) {
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(await query(n)).toEqual({ state: "running" });
    await running;
    expect((await query(n)).state).toBe("done");

    const dead = newCommandNonce();
    await sh(`mkdir -p ${dir}/${dead}`);
    // A pid that is not alive: the highest possible, never handed out in practice.
    await writeFile(join(base, "once", dead, "start"), `${hostname()} 4194303\n`);
    expect(await query(dead)).toEqual({ state: "died" });
  });

  it("a command that cannot record (marker folder not creatable) still runs; a query then cannot tell", async () => {
    const blocked = markerDir(join(base, "not-a-folder"));
    await writeFile(join(base, "not-a-folder"), "a file where the folder should be");
    const n = newCommandNonce();
    const script = `${recordedRun(shCommand(["/bin/echo", "hi"]), "/dev/null", { nonce: n, dir: blocked })}; printf '\\n%s %s\\n' ${n} "$sremote_rc" >&2`;
    const r = await sh(script);
    expect(r.stdout).toBe("hi\n");
    expect(markerOf(r.stderr, n).rc).toBe(0);
    const q = newCommandNonce();
    const a = await sh(markerQueryScript(n, blocked, q));
    expect(parseMarkerQuery(a.stdout, a.stderr, q).state).toBe("unknown");
  });

  it("cleanup: carried nonces are removed (or shrunk to tombstones) before the next command; close sweeps the rest", async () => {
    const a = newCommandNonce();
    const b = newCommandNonce();
    const c = newCommandNonce();
    const log = join(base, "tomb-effects");
    await sh(wrapped(["/bin/true"], a));
    await sh(wrapped(["/bin/sh", "-c", `echo x >> '${log}'`], b));
    await sh(wrapped(["/bin/true"], c, { remove: [a], shrink: [b] }));
    const left = await readdir(join(base, "once"));
    expect(left).toContain(c);
    expect(left).not.toContain(a);
    // b is a tombstone: its status only; a late second delivery still runs nothing.
    expect(await readdir(join(base, "once", b))).toEqual(["rc"]);
    await sh(wrapped(["/bin/sh", "-c", `echo x >> '${log}'`], b));
    expect(await readFile(log, "utf8")).toBe("x\n");
    await sh(markerCleanupScript({ remove: [c], shrink: [] }, dir));
    const after = await readdir(join(base, "once"));
    expect(after).not.toContain(c);
    expect(after).toContain(b); // young tombstones stay
    // An old tombstone goes.
    await sh(`touch -d '2 hours ago' ${dir}/${b}`);
    await sh(markerCleanupScript({ remove: [], shrink: [] }, dir));
    expect(await readdir(join(base, "once"))).not.toContain(b);
    // Nothing to clean and no folder: still success.
    expect((await sh(markerCleanupScript({ remove: [], shrink: [] }, markerDir(join(base, "missing"))))).code).toBe(0);
  });

  it("refuses anything but a nonce in a script", () => {
    expect(() => recordedRun("true", "/dev/null", { nonce: "x; rm -rf /", dir })).toThrow(TypeError);
    expect(() => markerCleanupScript({ remove: ["../../etc"], shrink: [] }, dir)).toThrow(TypeError);
  });
});

describe("isIdempotentCommand", () => {
  it.each([
    [["/bin/pwd"], true],
    [["/bin/sh", "-c", "cd 2>/dev/null; exec /bin/pwd"], true],
    [["mkdir", "-p", "-m", "700", "/a/b"], true],
    [["/bin/mkdir", "-p", "/a"], true],
    [["/bin/rm", "-f", "--", "/a", "/b"], true],
    [["/usr/bin/chmod", "0600", "/a"], true],
    [["/bin/cat", "/a"], true],
    [["/bin/true"], true],
    [["/bin/mkdir", "/a"], false],
    [["/bin/rm", "/a"], false],
    [["/bin/rm", "-i", "-f", "/a"], false],
    [["/bin/chmod", "+x", "/a"], false],
    [["/bin/sh", "-c", "echo hi >> /x"], false],
    [["python3", "-c", "print(1)"], false],
    [["/home/u/bin/pwd"], false],
  ])("%j → %s", (argv, expected) => {
    expect(isIdempotentCommand(argv)).toBe(expected);
  });
});

describe("MarkerLedger", () => {
  it("hands out at most a batch, and takes back what a command did not handle", () => {
    const l = new MarkerLedger(2);
    const ns = [newCommandNonce(), newCommandNonce(), newCommandNonce()];
    l.add(ns[0] as string);
    l.addTombstone(ns[1] as string);
    l.add(ns[2] as string);
    const t = l.take();
    expect(t).toEqual({ remove: [ns[0]], shrink: [ns[1]] });
    expect(l.size).toBe(1);
    l.restore(t);
    expect(l.size).toBe(3);
    expect(l.take(10).shrink).toEqual([ns[1]]);
  });
});

describe("runExactlyOnce over a real shell with a lossy 'gateway'", () => {
  const budget = { attempts: 5, baseDelayMs: 1, maxDelayMs: 4, random: () => 0.5 };
  const unavailable = () => new ConnectorError("UNAVAILABLE", "test", "HTTP 503 from the gateway");

  /** A transport over /bin/sh whose faults are scripted per request: "ok", "503-before", "503-after", "refused". */
  function transport(faults: string[], argv: readonly string[]) {
    const ledger = new MarkerLedger();
    const seen: string[] = [];
    const gateway = async (script: string): Promise<{ stdout: string; stderr: string }> => {
      const f = faults.shift() ?? "ok";
      seen.push(f);
      if (f === "refused") throw new ConnectorError("CONNECT_FAILED", "test", "refused", { retryable: true });
      if (f === "503-before") throw unavailable();
      const r = await sh(script);
      if (f === "503-after") throw unavailable();
      return r;
    };
    const io: ExactlyOnceIo<ExecResult> = {
      connector: "test",
      what: `run ${argv[0]}`,
      dir,
      ledger,
      async send(nonce, cleanup) {
        const r = await gateway(wrapped(argv, nonce, cleanup));
        const m = markerOf(r.stderr, nonce);
        return m.rc === undefined ? undefined : { stdout: r.stdout, stderr: m.stderr, exitCode: m.rc, signal: null };
      },
      query: (script) => gateway(script),
      recovered: (rec) => ({ ...rec, signal: null }),
    };
    return { io, ledger, seen };
  }

  async function effects(log: string): Promise<number> {
    return (await readFile(log, "utf8").catch(() => "")).split("\n").filter(Boolean).length;
  }

  it.each([
    [["503-after"], 1],
    [["503-before", "ok", "ok"], 1],
    [["503-before", "503-before", "ok", "503-after"], 1],
    [["refused", "refused", "ok"], 1],
    [["503-after", "503-before", "503-after"], 1],
  ])("faults %j: the side effect happens exactly once and the answer is the command's", async (faults, once) => {
    const log = join(base, `effects-${newCommandNonce()}`);
    const argv = ["/bin/sh", "-c", `echo x >> '${log}'; echo done; exit 7`];
    const { io, ledger } = transport([...faults], argv);
    const dl = deadline({ timeoutMs: 20_000 });
    try {
      await expect(runExactlyOnce(io, dl, budget)).resolves.toEqual({
        stdout: "done\n",
        stderr: "",
        exitCode: 7,
        signal: null,
      });
    } finally {
      dl.dispose();
    }
    expect(await effects(log)).toBe(once);
    expect(ledger.size).toBeGreaterThan(0);
  });

  it("a query that cannot tell: the original failure, not retryable, never sent again", async () => {
    const log = join(base, `effects-${newCommandNonce()}`);
    const argv = ["/bin/sh", "-c", `echo x >> '${log}'`];
    const { io, seen } = transport(["503-after"], argv);
    io.query = async () => ({ stdout: "", stderr: "garbage" });
    const dl = deadline({ timeoutMs: 20_000 });
    const err = await runExactlyOnce(io, dl, budget).catch((e: unknown) => e);
    dl.dispose();
    expect(err).toMatchObject({ code: "UNAVAILABLE", retryable: false });
    expect(seen).toEqual(["503-after"]);
    expect(await effects(log)).toBe(1);
  });

  it("refusals past the budget end with the refusal, marked as already retried", async () => {
    const { io, seen } = transport(["refused", "refused", "refused", "refused", "refused"], ["/bin/true"]);
    const dl = deadline({ timeoutMs: 20_000 });
    const err = await runExactlyOnce(io, dl, budget).catch((e: unknown) => e);
    dl.dispose();
    expect(err).toMatchObject({ code: "CONNECT_FAILED", retryable: true });
    expect((err as Record<symbol, unknown>)[Symbol.for("sremote.retry.exhausted")]).toBe(true);
    expect(seen).toHaveLength(5);
  });

  it("cleanup rides on the next command and is given back when that one did not run", async () => {
    const { io, ledger } = transport(["ok", "503-before", "ok", "ok"], ["/bin/true"]);
    const dl = deadline({ timeoutMs: 20_000 });
    await runExactlyOnce(io, dl, budget);
    expect(ledger.size).toBe(1);
    await runExactlyOnce(io, dl, budget); // 503-before → query says not-run (fence) → sent again
    dl.dispose();
    // The first nonce was removed and the fence shrunk by the command that ran after them:
    // only the last run's markers are left to handle.
    expect(ledger.size).toBe(1);
  });
});

describe("repeatSafely", () => {
  it("repeats retryable and ambiguous failures within the budget, nothing else", async () => {
    const dl = deadline({ timeoutMs: 10_000 });
    let n = 0;
    const r = await repeatSafely(
      async () => {
        n++;
        if (n === 1) throw new ConnectorError("UNAVAILABLE", "t", "503");
        if (n === 2) throw new ConnectorError("CONNECT_FAILED", "t", "refused", { retryable: true });
        return n;
      },
      dl,
      { attempts: 3, baseDelayMs: 1, maxDelayMs: 1 },
    );
    expect(r).toBe(3);
    let m = 0;
    await expect(
      repeatSafely(
        async () => {
          m++;
          throw new ConnectorError("PERMISSION_DENIED", "t", "no");
        },
        dl,
        { attempts: 3, baseDelayMs: 1, maxDelayMs: 1 },
      ),
    ).rejects.toMatchObject({ code: "PERMISSION_DENIED" });
    expect(m).toBe(1);
    dl.dispose();
  });
});
