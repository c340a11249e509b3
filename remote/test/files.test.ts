import { createHash } from "node:crypto";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import {
  AGENT_MANIFEST_NAME,
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
    expect(init).toContain(`PROTOCOL_VERSION = ${AGENT_PROTOCOL_VERSION}`);
    expect(AGENT_MANIFEST_NAME).toBe("agent-manifest.json");
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
