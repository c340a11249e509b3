import { localConnector } from "@sremote/connector-local";
import { describe, expect, it } from "vitest";
import {
  checkRequirements,
  isKwargs,
  type Kwargs,
  kw,
  normalizeName,
  parseRequirement,
  RemoteClient,
} from "../src/index.js";
import { createModuleProxy } from "../src/proxy.js";

describe("requirements", () => {
  it("parses names and PEP 440 specifiers", () => {
    expect(parseRequirement("numpy")).toEqual({ name: "numpy", specifier: "" });
    expect(parseRequirement("numpy>=1.20,<3")).toEqual({ name: "numpy", specifier: ">=1.20,<3" });
    expect(parseRequirement("scikit-learn[extra] ~=1.4")).toEqual({ name: "scikit-learn", specifier: "~=1.4" });
    expect(parseRequirement("qdo", ">=0.5")).toEqual({ name: "qdo", specifier: ">=0.5" });
    expect(() => parseRequirement("numpy>>1")).toThrow(/invalid version specifier/);
    expect(() => parseRequirement("")).toThrow(/non-empty/);
    expect(() => parseRequirement("a>1", ">2")).toThrow(/specifier already/);
  });

  it("normalises names per PEP 503", () => {
    expect(normalizeName("Demo.Dist__x")).toBe("demo-dist-x");
  });

  it("names module, wanted and found", () => {
    const reqs = [parseRequirement("numpy>=2"), parseRequirement("qdo"), parseRequirement("json")];
    expect(() => checkRequirements(reqs, { numpy: "1.26.4", qdo: null, json: "" })).toThrow(
      "remote requirements not met: numpy >=2: found 1.26.4; qdo: not installed",
    );
    expect(() => checkRequirements(reqs, { numpy: "2.1.0", qdo: "0.9", json: "2.0.9" })).not.toThrow();
    expect(() => checkRequirements([parseRequirement("m>=1")], { m: "" })).toThrow(/installed, version unknown/);
  });
});

describe("module proxies", () => {
  it("turn property paths into dotted function names and pass kw({...}) on, last, for the client to split", async () => {
    const calls: [string, unknown[]][] = [];
    const proxy = createModuleProxy<{ a: { b(x: number): number } }>(async (fn, args) => {
      calls.push([fn, args]);
      return 1;
    });
    await proxy.a.b(5);
    await (proxy.a.b as unknown as (...a: unknown[]) => Promise<unknown>)(1, kw({ z: 1 }));
    expect(calls[0]).toEqual(["a.b", [5]]);
    expect(calls[1]?.[0]).toBe("a.b");
    const [first, last] = calls[1]?.[1] ?? [];
    expect(first).toBe(1);
    expect(isKwargs(last)).toBe(true);
    expect((last as Kwargs).values).toEqual({ z: 1 });
    // (client.integration.test.ts checks that the client sends them as the call's kwargs.)
    // A proxy is not a thenable, so it can be returned from async functions.
    expect((proxy as unknown as { then: unknown }).then).toBeUndefined();
  });
});

describe("client options", () => {
  it("refuses bad numbers with a typed error naming the option", () => {
    const connector = localConnector();
    const make = (o: Record<string, unknown>) => () => new RemoteClient({ connector, ...o });
    for (const timeoutMs of [-1, Number.NaN, Number.POSITIVE_INFINITY, "100"]) {
      expect(make({ timeoutMs })).toThrow(expect.objectContaining({ code: "INVALID_ARGUMENT" }));
      expect(make({ timeoutMs })).toThrow(/timeoutMs/);
    }
    for (const poolSize of [0, 1.5, -2]) {
      expect(make({ poolSize })).toThrow(/poolSize must be a positive integer/);
    }
    expect(make({ timeoutMs: 0 })).not.toThrow();
  });

  it("refuses a layout that does not name all three folders, before anything runs", () => {
    const connector = localConnector();
    const make = (layout: unknown) => () => new RemoteClient({ connector, layout: layout as never });
    expect(make({ endpointDir: "/opt/sremote" })).toThrow(/layout\.tmpDir must be a non-empty path, got undefined/);
    expect(make({ endpointDir: "/e", tmpDir: "/t", workDir: "" })).toThrow(
      expect.objectContaining({ code: "INVALID_ARGUMENT", message: expect.stringMatching(/layout\.workDir/) }),
    );
    expect(make("~/.sremote")).toThrow(/layout must be an object/);
    expect(make({ endpointDir: "/e", tmpDir: "/t", workDir: "/w" })).not.toThrow();
  });
});
