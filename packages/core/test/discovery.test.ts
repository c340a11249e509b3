import { describe, expect, it } from "vitest";
import { type Connector, ConnectorError, discoverLayout } from "../src/index.js";

// A unit-level fake: discovery only needs homeDir and getFile.
function fakeConnector(files: Record<string, string>): Connector {
  const fail = () => Promise.reject(new Error("not used"));
  return {
    name: "fake",
    capabilities: { spawn: false, stdin: false, signals: false, fileModes: false },
    connect: async () => {},
    close: async () => {},
    status: async () => ({ connected: true }),
    homeDir: async () => "/home/u",
    getFile: async (path) => {
      const text = files[path];
      if (text === undefined) throw new ConnectorError("FILE_NOT_FOUND", "fake", `no such file ${path}`);
      return new TextEncoder().encode(text);
    },
    putFile: fail,
    deleteFile: fail,
    exec: fail,
    [Symbol.asyncDispose]: async () => {},
  };
}

describe("discoverLayout", () => {
  it("falls back to the default layout without a .location file", async () => {
    const d = await discoverLayout(fakeConnector({}));
    expect(d).toEqual({
      layout: { endpointDir: "/home/u/.sremote", tmpDir: "/home/u/.sremote/tmp", workDir: "/home/u" },
      source: "default",
      locationPath: "/home/u/.sremote/.location",
      homeDir: "/home/u",
    });
  });

  it("follows .location to a shared endpoint", async () => {
    const d = await discoverLayout(
      fakeConnector({
        "/home/u/.sremote/.location": '{"sremote":"/proj/sremote","relative_tmp":".sremote/tmp","relative_pwd":"work"}',
      }),
    );
    expect(d.source).toBe("location");
    expect(d.layout).toEqual({ endpointDir: "/proj/sremote", tmpDir: "/home/u/.sremote/tmp", workDir: "/home/u/work" });
  });

  it("reports an invalid .location with its path", async () => {
    await expect(discoverLayout(fakeConnector({ "/home/u/.sremote/.location": "{" }))).rejects.toMatchObject({
      code: "INVALID_LOCATION",
      message: expect.stringContaining("fake:/home/u/.sremote/.location"),
    });
  });
});
