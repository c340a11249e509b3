import { describe, expect, it } from "vitest";
import {
  type ConnectorDefinition,
  type ConnectorRuntime,
  type Deadline,
  defineConnector,
  type ExecOptions,
  type ExecResult,
  withRetry,
} from "../src/index.js";

/** An in-memory transport: files in a Map, `exec` answering the fallbacks' commands. */
function memory(overrides: Partial<ConnectorDefinition> = {}) {
  const files = new Map<string, Uint8Array>();
  const commands: { argv: readonly string[]; options: ExecOptions }[] = [];
  const folders = new Set<string>();
  let closes = 0;
  let runtime: ConnectorRuntime | undefined;
  const connector = defineConnector((rt) => {
    runtime = rt;
    return {
      name: "mem",
      capabilities: { spawn: false, stdin: true, signals: false, fileModes: true },
      async putFile(path, data) {
        if (path.startsWith("/missing/") && !folders.has(path.slice(0, path.lastIndexOf("/"))))
          throw rt.error("FILE_NOT_FOUND", `no folder for ${path}`);
        files.set(path, data);
      },
      async getFile(path) {
        const data = files.get(path);
        if (!data) throw rt.error("FILE_NOT_FOUND", `no such file: ${path}`);
        return data;
      },
      async exec(argv, options, dl: Deadline): Promise<ExecResult> {
        commands.push({ argv, options });
        if (argv[0] === "sleep") {
          await new Promise((_, reject) => dl.signal.addEventListener("abort", () => reject(dl.error("sleep"))));
        }
        if (argv[2] === "cd 2>/dev/null; exec /bin/pwd")
          return { stdout: "/home/me\n", stderr: "", exitCode: 0, signal: null };
        if (argv[0] === "/bin/mkdir") folders.add(argv.at(-1) as string);
        if (argv[0] === "/bin/rm") for (const p of argv.slice(3)) files.delete(p);
        return { stdout: "", stderr: "", exitCode: 0, signal: null };
      },
      async close() {
        closes++;
      },
      ...overrides,
    };
  });
  return { connector, files, commands, closes: () => closes, runtime: () => runtime as ConnectorRuntime };
}

async function codeOf(p: Promise<unknown>): Promise<string | undefined> {
  try {
    await p;
    return undefined;
  } catch (err) {
    return (err as { code?: string }).code;
  }
}

describe("defineConnector", () => {
  it("checks argv, paths, modes and env before the transport sees them, prefixed with the name", async () => {
    const { connector, commands } = memory();
    await expect(connector.exec([])).rejects.toThrow(/^mem: argv must be a non-empty array/);
    await expect(connector.exec(["a\0b"])).rejects.toMatchObject({ code: "INVALID_ARGUMENT" });
    await expect(connector.exec(["x"], { env: { "A B": "1" } })).rejects.toThrow(/mem: env/);
    await expect(connector.putFile("/a", new Uint8Array(), { mode: 0o10000 })).rejects.toThrow(/mode/);
    await expect(connector.getFile("")).rejects.toThrow(/mem: path must be a non-empty string/);
    await expect(connector.getFile("/a", { timeoutMs: -1 })).rejects.toMatchObject({ code: "INVALID_ARGUMENT" });
    expect(commands).toHaveLength(0);
  });

  it("gives homeDir through exec once, and deletes through one rm for many files", async () => {
    const { connector, commands, files } = memory();
    expect(await connector.homeDir()).toBe("/home/me");
    expect(await connector.homeDir()).toBe("/home/me");
    expect(commands).toHaveLength(1);
    for (const p of ["/a", "/b", "/c"]) await connector.putFile(p, Uint8Array.of(1));
    await connector.deleteFiles(["/a", "/b", "/c"]);
    expect(files.size).toBe(0);
    expect(commands.at(-1)?.argv).toEqual(["/bin/rm", "-f", "--", "/a", "/b", "/c"]);
  });

  it("uses the transport's deleteFile per path when it has one and no deleteFiles", async () => {
    const deleted: string[] = [];
    const { connector, commands } = memory({
      deleteFile: async (path) => {
        deleted.push(path);
      },
    });
    await connector.deleteFiles(["/x", "/y"]);
    expect(deleted).toEqual(["/x", "/y"]);
    expect(commands).toHaveLength(0);
  });

  it("sends stdin through an uploaded file when the transport cannot stream it, creating the folder", async () => {
    const { connector, commands, files } = memory({ streamsStdin: false, tempDir: "/missing/tmp" });
    await connector.exec(["cat"], { stdin: "hello" });
    const mkdir = commands.find((c) => c.argv[0] === "/bin/mkdir");
    expect(mkdir?.argv).toEqual(["/bin/mkdir", "-p", "-m", "700", "/missing/tmp"]);
    const run = commands.at(-1);
    expect(run?.argv.slice(0, 2)).toEqual(["/bin/sh", "-c"]);
    expect(run?.argv[3]).toMatch(/^\/missing\/tmp\/stdin-[0-9a-f]{32}\.in$/);
    expect(run?.argv.slice(4)).toEqual(["cat"]);
    expect(run?.options.stdin).toBeUndefined();
    // The wrapper script deletes the file remotely; this fake does not run it.
    expect(Buffer.from(files.get(run?.argv[3] as string) ?? []).toString()).toBe("hello");
  });

  it("ends pending operations with CLOSED, rejects later ones, and closes once", async () => {
    const { connector, closes } = memory();
    const pending = connector.exec(["sleep"]);
    await Promise.all([connector.close(), connector.close(), connector[Symbol.asyncDispose]()]);
    expect(await codeOf(pending)).toBe("CLOSED");
    expect(await codeOf(connector.getFile("/a"))).toBe("CLOSED");
    expect(closes()).toBe(1);
    expect((await connector.status()).connected).toBe(false);
  });

  it("reports TIMEOUT and ABORTED with the operation's name", async () => {
    const { connector } = memory();
    await expect(connector.exec(["sleep"], { timeoutMs: 20 })).rejects.toMatchObject({
      code: "TIMEOUT",
      message: "sleep timed out after 20 ms",
    });
    await expect(connector.exec(["sleep"], { signal: AbortSignal.abort() })).rejects.toMatchObject({
      code: "ABORTED",
      message: "mem: exec sleep aborted",
    });
  });

  it("refuses a definition that declares spawn without implementing it, or misses a primitive", () => {
    const base = {
      name: "bad",
      putFile: async () => {},
      getFile: async () => new Uint8Array(),
      exec: async () => ({}),
    };
    const caps = { spawn: true, stdin: true, signals: true, fileModes: true };
    expect(() => defineConnector(() => ({ ...base, capabilities: caps }) as never)).toThrow(/capabilities.spawn/);
    expect(() =>
      defineConnector(() => ({ name: "bad", capabilities: { ...caps, spawn: false }, exec: base.exec }) as never),
    ).toThrow(/putFile\(\) is required/);
  });

  it("lets capabilities differ per instance and exposes extra members", () => {
    const make = (signals: boolean) =>
      defineConnector(() => ({
        name: "x",
        capabilities: { spawn: false, stdin: true, signals, fileModes: true },
        putFile: async () => {},
        getFile: async () => new Uint8Array(),
        exec: async () => ({ stdout: "", stderr: "", exitCode: 0, signal: null }),
        extra: { host: "h1" },
      }));
    expect(make(true).capabilities.signals).toBe(true);
    expect(make(false).capabilities.signals).toBe(false);
    expect(make(true).host).toBe("h1");
  });
});

describe("withRetry composed twice", () => {
  it("does not multiply attempts: an error the inner decorator gave up on is not retried again", async () => {
    let attempts = 0;
    const { connector } = memory({
      getFile: async () => {
        attempts++;
        throw Object.assign(new Error("busy"), { code: "UNAVAILABLE", retryable: true });
      },
    });
    const inner = withRetry(connector, { attempts: 3, baseDelayMs: 0 });
    const outer = withRetry(inner, { attempts: 4, baseDelayMs: 0 });
    await expect(outer.getFile("/a")).rejects.toThrow(/busy/);
    expect(attempts).toBe(3);
  });
});
