import { createHash } from "node:crypto";
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { UsageError } from "@sremote/core";
import { afterEach, describe, expect, it } from "vitest";
import {
  AGENT_PROTOCOL_VERSION,
  AGENT_VERSION,
  agentDir,
  agentFiles,
  agentManifest,
  parseAgentManifest,
} from "../src/index.js";

describe("the packaged agent", () => {
  it("has the version of package.json, which the Python __version__ repeats", () => {
    const pkg = JSON.parse(readFileSync(join(agentDir(), "package.json"), "utf8")) as { version: string };
    expect(AGENT_VERSION).toBe(pkg.version);
    const init = readFileSync(join(agentDir(), "sremote_agent", "__init__.py"), "utf8");
    expect(init).toContain(`__version__ = "${AGENT_VERSION}"`);
  });

  it("lives in agentDir(): interpreter.sh and the sremote_agent package", () => {
    const dir = agentDir();
    expect(dir.startsWith("/")).toBe(true);
    expect(dir.endsWith("/")).toBe(false);
    expect(existsSync(join(dir, "interpreter.sh"))).toBe(true);
    expect(existsSync(join(dir, "sremote_agent", "__main__.py"))).toBe(true);
  });

  it("lists interpreter.sh and every module with its hash and size, and nothing else", async () => {
    const files = await agentFiles();
    const modules = readdirSync(join(agentDir(), "sremote_agent"))
      .filter((n) => n.endsWith(".py"))
      .sort()
      .map((n) => `sremote_agent/${n}`);
    expect(files.map((f) => f.path)).toEqual(["interpreter.sh", ...modules]);
    for (const f of files) {
      const data = readFileSync(f.absPath);
      expect(f.absPath).toBe(join(agentDir(), ...f.path.split("/")));
      expect(f.size).toBe(data.byteLength);
      expect(f.sha256).toBe(createHash("sha256").update(data).digest("hex"));
    }
    // callers may not corrupt the cached list
    files[0]!.sha256 = "x";
    expect((await agentFiles())[0]!.sha256).not.toBe("x");
  });

  it("describes itself in a manifest", async () => {
    const manifest = await agentManifest();
    const files = await agentFiles();
    expect(manifest.version).toBe(AGENT_VERSION);
    expect(manifest.protocol).toBe(AGENT_PROTOCOL_VERSION);
    expect(Object.keys(manifest.files)).toEqual(files.map((f) => f.path));
    expect(parseAgentManifest(JSON.stringify(manifest))).toEqual(manifest);
  });

  it("refuses manifests that are not manifests", () => {
    for (const text of [
      "",
      "nope",
      "[]",
      "null",
      '{"version":1,"protocol":1,"files":{}}',
      '{"version":"1","protocol":1,"files":{"a":2}}',
      '{"version":"1","protocol":1}',
    ]) {
      expect(parseAgentManifest(text)).toBeNull();
    }
  });
});

describe("the agent's folder for bundled apps", () => {
  const saved = process.env.SREMOTE_AGENT_DIR;
  afterEach(() => {
    if (saved === undefined) delete process.env.SREMOTE_AGENT_DIR;
    else process.env.SREMOTE_AGENT_DIR = saved;
  });

  /** A copy of the agent's files in a new folder, as a bundled app ships them. */
  function copyOfAgent(): string {
    const dir = mkdtempSync(join(tmpdir(), "sremote-agent-copy-"));
    cpSync(join(agentDir(), "interpreter.sh"), join(dir, "interpreter.sh"));
    cpSync(join(agentDir(), "sremote_agent"), join(dir, "sremote_agent"), {
      recursive: true,
      filter: (src) => !src.includes("__pycache__"),
    });
    return dir;
  }

  it("is $SREMOTE_AGENT_DIR when set, and the files listed are the ones there", async () => {
    const dir = copyOfAgent();
    try {
      const packaged = await agentManifest();
      process.env.SREMOTE_AGENT_DIR = `${dir}/`;
      expect(agentDir()).toBe(dir);
      const files = await agentFiles();
      expect(files.every((f) => f.absPath.startsWith(`${dir}/`))).toBe(true);
      expect((await agentManifest()).files).toEqual(packaged.files);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("can be given per call (the client's and installer's agentDir option)", async () => {
    const dir = copyOfAgent();
    try {
      writeFileSync(join(dir, "sremote_agent", "extra.py"), "# shipped with the bundle\n");
      const files = await agentFiles(dir);
      expect(files.map((f) => f.path)).toContain("sremote_agent/extra.py");
      expect((await agentFiles()).map((f) => f.path)).not.toContain("sremote_agent/extra.py");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("that holds no agent is a UsageError naming the folder and how to fix it", async () => {
    const empty = mkdtempSync(join(tmpdir(), "sremote-agent-none-"));
    try {
      process.env.SREMOTE_AGENT_DIR = empty;
      const err = await agentFiles().catch((e: unknown) => e);
      expect(err).toBeInstanceOf(UsageError);
      expect((err as Error).message).toContain(empty);
      expect((err as Error).message).toContain("SREMOTE_AGENT_DIR");
      // a later call with the folder fixed is not answered from a cached failure
      delete process.env.SREMOTE_AGENT_DIR;
      expect((await agentFiles()).length).toBeGreaterThan(1);
    } finally {
      rmSync(empty, { recursive: true, force: true });
    }
  });

  it("needs no package.json at run time: the version is a constant that matches it", () => {
    const source = readFileSync(join(agentDir(), "src", "files.ts"), "utf8");
    expect(source).not.toMatch(/readFileSync|package\.json"/);
    expect(AGENT_VERSION).toMatch(/^\d+\.\d+\.\d+/);
  });
});
