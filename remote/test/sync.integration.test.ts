import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { localConnector } from "@sremote/connector-local";
import { type Connector, ConnectorError } from "@sremote/core";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import {
  AGENT_MANIFEST_NAME,
  AGENT_VERSION,
  agentFiles,
  agentManifest,
  readRemoteManifest,
  syncAgent,
} from "../src/index.js";

// Real processes and servers on a shared machine: an explicit budget per test and hook,
// never vitest's 5 s default (a slow python3 start-up must not fail the suite).
vi.setConfig({ testTimeout: 60_000, hookTimeout: 60_000 });

/** The real local connector, recording what it is asked to do (and able to fail on demand). */
function recordingConnector(failPutAfter = Number.POSITIVE_INFINITY) {
  const inner = localConnector();
  const log: string[] = [];
  let puts = 0;
  const connector: Connector = {
    name: inner.name,
    capabilities: inner.capabilities,
    connect: (o) => inner.connect(o),
    close: () => inner.close(),
    status: (o) => inner.status(o),
    homeDir: (o) => inner.homeDir(o),
    getFile: (p, o) => {
      log.push(`get ${p}`);
      return inner.getFile(p, o);
    },
    deleteFile: (p, o) => {
      log.push(`delete ${p}`);
      return inner.deleteFile(p, o);
    },
    putFile: async (p, d, o) => {
      if (++puts > failPutAfter) throw new ConnectorError("REMOTE_IO", "local", "disk full (simulated)");
      log.push(`put ${p} ${(o?.mode ?? 0).toString(8)}`);
      return inner.putFile(p, d, o);
    },
    exec: (argv, o) => {
      log.push(`exec ${argv.join(" ")}`);
      return inner.exec(argv, o);
    },
    [Symbol.asyncDispose]: () => inner.close(),
  };
  return { connector, log };
}

const mode = (path: string) => statSync(path).mode & 0o777;

describe("syncAgent through a real local connector", () => {
  let root: string;
  let endpoint: string;
  beforeEach(() => {
    root = mkdtempSync(join(tmpdir(), "sremote-agent-sync-"));
    endpoint = join(root, "home", ".sremote");
  });
  afterEach(() => rmSync(root, { recursive: true, force: true }));

  it("fills an empty endpoint: private folders and files, manifest written last", async () => {
    const { connector, log } = recordingConnector();
    const progress: string[] = [];
    const result = await syncAgent(connector, endpoint, { onProgress: (e) => progress.push(`${e.action} ${e.file}`) });
    const files = await agentFiles();
    expect(result).toEqual({ uploaded: files.map((f) => f.path), unchanged: [], previousVersion: null });
    expect(progress).toEqual(files.map((f) => `upload ${f.path}`));
    expect(mode(endpoint)).toBe(0o700);
    expect(mode(join(endpoint, "sremote_agent"))).toBe(0o700);
    for (const f of files) {
      expect(readFileSync(join(endpoint, f.path))).toEqual(readFileSync(f.absPath));
      expect(mode(join(endpoint, f.path))).toBe(0o600);
    }
    const puts = log.filter((l) => l.startsWith("put "));
    expect(puts.at(-1)).toBe(`put ${join(endpoint, AGENT_MANIFEST_NAME)} 600`);
    expect(log.findIndex((l) => l.startsWith("exec mkdir"))).toBeLessThan(log.findIndex((l) => l.startsWith("put ")));
    expect(await readRemoteManifest(connector, endpoint)).toEqual(await agentManifest());
    await connector.close();
  });

  it("uploads nothing the second time, and only what changed after that", async () => {
    await syncAgent(recordingConnector().connector, endpoint);
    const second = recordingConnector();
    const again = await syncAgent(second.connector, endpoint);
    expect(again.uploaded).toEqual([]);
    expect(again.previousVersion).toBe(AGENT_VERSION);
    expect(second.log.filter((l) => !l.startsWith("get "))).toEqual([]);

    // the remote manifest disagrees about one file: only that one goes up, then the manifest
    const manifestPath = join(endpoint, AGENT_MANIFEST_NAME);
    const manifest = JSON.parse(readFileSync(manifestPath, "utf8"));
    manifest.files["sremote_agent/codec.py"] = "0".repeat(64);
    manifest.version = "0.0.1";
    writeFileSync(manifestPath, JSON.stringify(manifest));
    const third = recordingConnector();
    const partial = await syncAgent(third.connector, endpoint);
    expect(partial.uploaded).toEqual(["sremote_agent/codec.py"]);
    expect(partial.previousVersion).toBe("0.0.1");
    expect(third.log.filter((l) => l.startsWith("put ")).map((l) => l.split(" ")[1])).toEqual([
      join(endpoint, "sremote_agent", "codec.py"),
      manifestPath,
    ]);
    expect(await readRemoteManifest(third.connector, endpoint)).toEqual(await agentManifest());
  });

  it("force uploads everything; shared makes folders 0755 and files 0644", async () => {
    await syncAgent(recordingConnector().connector, endpoint);
    const result = await syncAgent(recordingConnector().connector, endpoint, { force: true, shared: true });
    expect(result.uploaded).toEqual((await agentFiles()).map((f) => f.path));
    expect(mode(endpoint)).toBe(0o755);
    expect(mode(join(endpoint, "sremote_agent"))).toBe(0o755);
    expect(mode(join(endpoint, "interpreter.sh"))).toBe(0o644);
    expect(mode(join(endpoint, AGENT_MANIFEST_NAME))).toBe(0o644);
  });

  it("an interrupted sync leaves no manifest, and the next one repairs the endpoint", async () => {
    const broken = recordingConnector(2);
    await expect(syncAgent(broken.connector, endpoint)).rejects.toMatchObject({ code: "REMOTE_IO" });
    expect(await readRemoteManifest(broken.connector, endpoint)).toBeNull();
    const repaired = await syncAgent(recordingConnector().connector, endpoint);
    expect(repaired.uploaded.length).toBe((await agentFiles()).length);
    expect(await readRemoteManifest(broken.connector, endpoint)).toEqual(await agentManifest());
  });

  it("never deletes what the user put in the endpoint", async () => {
    mkdirSync(join(endpoint, "sremote_agent"), { recursive: true });
    writeFileSync(join(endpoint, "notes.txt"), "mine");
    writeFileSync(join(endpoint, "sremote_agent", "old_module.py"), "# from an older agent");
    writeFileSync(join(endpoint, AGENT_MANIFEST_NAME), "not json");
    const { connector, log } = recordingConnector();
    const result = await syncAgent(connector, endpoint, { force: true });
    expect(result.previousVersion).toBeNull();
    expect(readFileSync(join(endpoint, "notes.txt"), "utf8")).toBe("mine");
    expect(readFileSync(join(endpoint, "sremote_agent", "old_module.py"), "utf8")).toBe("# from an older agent");
    expect(log.some((l) => l.startsWith("delete "))).toBe(false);
  });

  it("reports a folder that cannot be created as COMMAND_FAILED", async () => {
    writeFileSync(join(root, "a-file"), "x");
    const err = await syncAgent(recordingConnector().connector, join(root, "a-file", "endpoint")).catch((e) => e);
    expect(err).toBeInstanceOf(ConnectorError);
    expect(err.code).toBe("COMMAND_FAILED");
    expect(err.message).toContain("mkdir");
  });

  it("honours an abort signal", async () => {
    const controller = new AbortController();
    controller.abort();
    await expect(
      syncAgent(recordingConnector().connector, endpoint, { signal: controller.signal }),
    ).rejects.toMatchObject({
      code: "ABORTED",
    });
  });

  it("reads a missing manifest as null", async () => {
    expect(await readRemoteManifest(localConnector(), join(root, "nowhere"))).toBeNull();
  });
});
