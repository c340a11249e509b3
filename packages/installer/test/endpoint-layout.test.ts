import { UsageError } from "@sremote/core";
import { describe, expect, it } from "vitest";
import { resolveEndpointLayout } from "../src/endpoint-layout.js";
import { InstallError } from "../src/errors.js";
import type { CurrentLocation } from "../src/paths.js";

const HOME = "/home/alice";
const none: CurrentLocation = { path: `${HOME}/.sremote/.location`, text: null, location: null, error: null };
const recorded: CurrentLocation = {
  path: `${HOME}/.sremote/.location`,
  text: "…",
  location: { sremote: "/data/ep", absolute_tmp: "/scratch/t", absolute_pwd: "/w" },
  error: null,
};
const invalid: CurrentLocation = { ...none, text: "x", error: new UsageError("bad .location") };

describe("resolveEndpointLayout", () => {
  it("defaults to ~/.sremote", () => {
    expect(resolveEndpointLayout(HOME, none, {})).toEqual({
      layout: { endpointDir: `${HOME}/.sremote`, tmpDir: `${HOME}/.sremote/tmp`, workDir: HOME },
      source: "default",
    });
  });

  it("takes a given layout's paths from the home folder, and tmpDir / workDir over anything", () => {
    const r = resolveEndpointLayout(HOME, recorded, {
      layout: { endpointDir: "ep", tmpDir: "~/t", workDir: "/w" },
      workDir: "~/work",
    });
    expect(r).toEqual({
      layout: { endpointDir: `${HOME}/ep`, tmpDir: `${HOME}/t`, workDir: `${HOME}/work` },
      source: "given",
    });
  });

  it("puts a dir's temp folder inside it, or keeps the one .location records for that endpoint when asked", () => {
    expect(resolveEndpointLayout(HOME, recorded, { dir: "/data/ep" }).layout.tmpDir).toBe("/data/ep/tmp");
    expect(resolveEndpointLayout(HOME, recorded, {})).toEqual({
      layout: { endpointDir: "/data/ep", tmpDir: "/scratch/t", workDir: "/w" },
      source: "location",
    });
    expect(resolveEndpointLayout(HOME, recorded, { dir: "/data/ep", recordedTmpDir: true })).toEqual({
      layout: { endpointDir: "/data/ep", tmpDir: "/scratch/t", workDir: HOME },
      source: "dir",
    });
    expect(resolveEndpointLayout(HOME, recorded, { dir: "/other", recordedTmpDir: true }).layout.tmpDir).toBe(
      "/other/tmp",
    );
  });

  it("throws for an invalid .location only when the caller says how to fix it", () => {
    expect(resolveEndpointLayout(HOME, invalid, {}).source).toBe("default");
    expect(() =>
      resolveEndpointLayout(HOME, invalid, { invalidLocation: { step: "layout", fix: (p) => `fix ${p}` } }),
    ).toThrow(InstallError);
    expect(resolveEndpointLayout(HOME, invalid, { dir: "x" }).layout.endpointDir).toBe(`${HOME}/x`);
  });

  it("refuses empty paths and newlines", () => {
    expect(() => resolveEndpointLayout(HOME, none, { dir: "" })).toThrow(UsageError);
    expect(() => resolveEndpointLayout(HOME, none, { tmpDir: "a\nb" })).toThrow(UsageError);
  });
});
