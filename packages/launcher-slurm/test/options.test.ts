import { describe, expect, it } from "vitest";
import { parseSlurmSpec, SLURM_SPEC_KEYS, slurm, slurmTime, validateSlurmOptions } from "../src/index.js";

describe("parseSlurmSpec", () => {
  it("reads every key into the launcher's options", () => {
    expect(parseSlurmSpec("partition=debug,time=5,nodes=2")).toEqual({ partition: "debug", time: "5", nodes: 2 });
    expect(
      parseSlurmSpec(
        "partition=regular,account=m1234,qos=debug,time=1:30:00,nodes=3,cpus-per-task=8,constraint=gpu&hbm80g,conf=/etc/slurm/x.conf",
      ),
    ).toEqual({
      partition: "regular",
      account: "m1234",
      qos: "debug",
      time: "1:30:00",
      nodes: 3,
      cpusPerTask: 8,
      constraint: "gpu&hbm80g",
      env: { SLURM_CONF: "/etc/slurm/x.conf" },
    });
    expect(parseSlurmSpec("cpusPerTask=4")).toEqual({ cpusPerTask: 4 });
    expect(parseSlurmSpec(" nodes = 2 , time = 2-00:00 ")).toEqual({ nodes: 2, time: "2-00:00" });
  });

  it("means all defaults for an empty spec", () => {
    expect(parseSlurmSpec("")).toEqual({});
    expect(parseSlurmSpec("  ")).toEqual({});
  });

  it.each([
    ["partitoin=debug", /unknown key "partitoin" \(known: partition, account/],
    ["nodes=2,nodes=3", /nodes given twice/],
    ["nodes", /expected key=value, got "nodes"/],
    ["nodes=", /nodes needs a value/],
    ["nodes=0", /nodes must be a positive whole number, got "0"/],
    ["nodes=two", /nodes must be a positive whole number/],
    ["nodes=1.5", /nodes must be a positive whole number/],
    ["cpus-per-task=-1", /cpus-per-task must be a positive whole number/],
    ["time=forever", /time "forever" is not a Slurm time limit/],
    ["time=UNLIMITED", /not a Slurm time limit/],
    ["time=0", /not a Slurm time limit/],
    ["time=1:2:3:4", /not a Slurm time limit/],
    ["partition=de bug", /bad partition "de bug"/],
    ["account=--all", /bad account/],
    ["conf=relative/slurm.conf", /conf must be an absolute path/],
    ["partition=debug,", /expected key=value, got ""/],
  ])("refuses %j with a clear UsageError", (spec, message) => {
    let caught: unknown;
    try {
      parseSlurmSpec(spec);
    } catch (err) {
      caught = err;
    }
    expect(caught).toMatchObject({ name: "UsageError", code: "INVALID_ARGUMENT" });
    expect((caught as Error).message).toMatch(message);
  });

  it("knows exactly the documented keys", () => {
    expect([...SLURM_SPEC_KEYS]).toEqual([
      "partition",
      "account",
      "qos",
      "time",
      "nodes",
      "cpus-per-task",
      "constraint",
      "conf",
    ]);
  });
});

describe("slurmTime", () => {
  it("defaults to 30 minutes and takes every Slurm form", () => {
    expect(slurmTime(undefined)).toBe("30");
    expect(slurmTime(5)).toBe("5");
    for (const t of ["90", "10:00", "1:30:00", "2-0", "2-12:30", "1-00:00:00"]) expect(slurmTime(t)).toBe(t);
  });

  it("refuses what would never expire or is not a time", () => {
    for (const t of [0, -1, 1.5, Number.NaN]) expect(() => slurmTime(t)).toThrow(/positive whole number of minutes/);
    for (const t of ["", "infinite", "0:00", "1h", "1:2:3:4", "1--2"])
      expect(() => slurmTime(t)).toThrow(/not a Slurm time/);
  });
});

describe("validateSlurmOptions", () => {
  it("checks the option object the same way (slurm() refuses bad options at once)", () => {
    expect(() =>
      validateSlurmOptions({ partition: "a,b", nodes: 2, extra: ["--mem=4G"], env: { SLURM_CONF: "/x" } }),
    ).not.toThrow();
    expect(() => slurm({ nodes: 0 })).toThrow(/nodes must be a positive whole number/);
    expect(() => slurm({ extra: ["mem=4G"] })).toThrow(/extra must be options/);
    expect(() => slurm({ stepExtra: ["--x\ny"] })).toThrow(/stepExtra must be options/);
    expect(() => slurm({ env: { "BAD NAME": "1" } })).toThrow(/bad environment variable/);
    expect(() => slurm({ pollIntervalMs: 1 })).toThrow(/pollIntervalMs/);
    expect(() => slurm({ time: "0" })).toThrow(/not a Slurm time/);
  });
});
