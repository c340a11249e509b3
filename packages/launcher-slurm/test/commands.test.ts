import { hostname } from "node:os";
import { describe, expect, it } from "vitest";
import {
  clientHost,
  expandHostlist,
  isDeadClientJob,
  makeJobName,
  neverStarts,
  parseJobId,
  parseJobName,
  sallocArgv,
  slurm,
  slurmMessage,
  srunArgv,
  stepEnd,
} from "../src/index.js";

describe("salloc and srun argv", () => {
  it("asks for one allocation with a time limit always set", () => {
    expect(sallocArgv({}, "sremote-h-1-0123abcd")).toEqual([
      "salloc",
      "--no-shell",
      "--job-name=sremote-h-1-0123abcd",
      "--time=30",
      "--nodes=1",
    ]);
    expect(
      sallocArgv(
        {
          partition: "debug",
          account: "m1",
          qos: "q",
          time: 5,
          nodes: 3,
          cpusPerTask: 2,
          constraint: "cpu",
          extra: ["--mem=1G", "--exclusive"],
        },
        "n",
      ),
    ).toEqual([
      "salloc",
      "--no-shell",
      "--job-name=n",
      "--time=5",
      "--nodes=3",
      "--partition=debug",
      "--account=m1",
      "--qos=q",
      "--constraint=cpu",
      "--cpus-per-task=2",
      "--mem=1G",
      "--exclusive",
    ]);
  });

  it("starts the agent as one step on one node, its argv after --", () => {
    expect(srunArgv({}, "42", "c2", ["sh", "interpreter.sh", "--serve", "-x"])).toEqual([
      "srun",
      "--jobid=42",
      "-N1",
      "-n1",
      "-u",
      "--overlap",
      "--nodelist=c2",
      "--",
      "sh",
      "interpreter.sh",
      "--serve",
      "-x",
    ]);
    expect(srunArgv({ cpusPerTask: 4, stepExtra: ["--mem=2G"] }, "7", undefined, ["a"])).toEqual([
      "srun",
      "--jobid=7",
      "-N1",
      "-n1",
      "-u",
      "--overlap",
      "--cpus-per-task=4",
      "--mem=2G",
      "--",
      "a",
    ]);
  });

  it("wrap() places slots round-robin on the allocation's nodes and needs prepare() first", () => {
    const launcher = slurm({ env: { SLURM_CONF: "/x/slurm.conf" } });
    expect(() => launcher.wrap({ argv: ["a"], env: {} }, { carrier: "session", slot: 0 })).toThrow(
      expect.objectContaining({
        code: "SCHEDULER",
        message: expect.stringMatching(/prepare\(\) must come before wrap\(\)/),
      }),
    );
  });
});

describe("Slurm's output", () => {
  it("finds the job id salloc printed", () => {
    expect(parseJobId("salloc: Granted job allocation 1234\n")).toBe("1234");
    expect(parseJobId("salloc: Pending job allocation 77\nsalloc: job 77 queued and waiting for resources\n")).toBe(
      "77",
    );
    expect(parseJobId("salloc: error: invalid partition specified: x\n")).toBeUndefined();
  });

  it("keeps Slurm's own words from error lines", () => {
    expect(
      slurmMessage(
        "salloc: error: invalid partition specified: nosuch\nsalloc: error: Job submit/allocate failed: Invalid partition name specified\n",
        "x",
      ),
    ).toBe("invalid partition specified: nosuch; Job submit/allocate failed: Invalid partition name specified");
    expect(slurmMessage("salloc: fatal: Could not establish a configuration source\n", "x")).toBe(
      "Could not establish a configuration source",
    );
    expect(slurmMessage("sh: 1: salloc: not found\n", "x")).toBe("sh: 1: salloc: not found");
    expect(slurmMessage("", "salloc exited with status 1")).toBe("salloc exited with status 1");
  });

  it("knows which pending reasons never clear", () => {
    for (const r of [
      "PartitionTimeLimit",
      "PartitionNodeLimit",
      "QOSMaxWallDurationPerJobLimit",
      "AssocMaxNodesPerJobLimit",
      "InvalidAccount",
    ]) {
      expect(neverStarts(r)).toBe(true);
    }
    for (const r of ["Resources", "Priority", "BeginTime", "QOSGrpCpuLimit", "ReqNodeNotAvail", "None"]) {
      expect(neverStarts(r)).toBe(false);
    }
  });

  it("expands host lists", () => {
    expect(expandHostlist("c1")).toEqual(["c1"]);
    expect(expandHostlist("c[1-3]")).toEqual(["c1", "c2", "c3"]);
    expect(expandHostlist("c[1-2,5],gpu[08-10]")).toEqual(["c1", "c2", "c5", "gpu08", "gpu09", "gpu10"]);
    expect(expandHostlist("x[009-011]")).toEqual(["x009", "x010", "x011"]);
    expect(expandHostlist("r[1-2]n[1-2]")).toEqual(["r1n1", "r1n2", "r2n1", "r2n2"]);
    for (const bad of ["", "(null)", "c[1-", "c[a-b]", "c[3-1]", "c[[1]]", "nid[001-002]-ib", "a[1-2]b"])
      expect(expandHostlist(bad)).toBeUndefined();
  });
});

describe("stepEnd", () => {
  it("reads why Slurm ended a step", () => {
    expect(stepEnd("slurmstepd-c1: error: *** STEP 1.0 ON c1 CANCELLED AT 2026-12-02T09:05:02 ***\n")).toEqual({
      jobId: "1",
      cause: "cancelled",
      message: "STEP 1.0 ON c1 CANCELLED AT 2026-12-02T09:05:02",
    });
    expect(
      stepEnd("slurmstepd: error: *** JOB 77 ON nid001 CANCELLED AT 2026-01-01T00:00:00 DUE TO TIME LIMIT ***"),
    ).toMatchObject({
      jobId: "77",
      cause: "time limit",
    });
    expect(stepEnd("*** STEP 5.2 ON n3 CANCELLED AT 2026-01-01T00:00:00 DUE TO NODE FAILURE ***")).toMatchObject({
      jobId: "5",
      cause: "node failure",
    });
    expect(stepEnd("*** JOB 9 ON n3 CANCELLED AT 2026-01-01T00:00:00 DUE TO PREEMPTION ***")).toMatchObject({
      cause: "preempted",
    });
    expect(stepEnd("srun: error: Unable to confirm allocation for job 12: Invalid job id specified\n")).toEqual({
      jobId: "12",
      cause: "gone",
      message: "Unable to confirm allocation for job 12: Invalid job id specified",
    });
    expect(
      stepEnd(
        "srun: error: Slurm job 1 has expired\nsrun: Check SLURM_JOB_ID environment variable. Expired or invalid job 1\n",
      ),
    ).toEqual({
      jobId: "1",
      cause: "gone",
      message: "Slurm job 1 has expired",
    });
    expect(stepEnd("Traceback (most recent call last):\nValueError: x")).toBeUndefined();
    expect(slurm().explainExit("nothing")).toBeUndefined();
    expect(slurm().explainExit("*** STEP 3.1 ON c2 CANCELLED AT 2026-12-02T09:05:02 ***")).toMatchObject({
      code: "SCHEDULER",
      launcher: "slurm",
      retryable: false,
      details: { jobId: "3", cause: "cancelled" },
    });
  });
});

describe("job names and dead clients", () => {
  it("names jobs after this host and process, and reads the name back", () => {
    const name = makeJobName();
    expect(name).toMatch(/^sremote-[A-Za-z0-9.-]+-\d+-[0-9a-f]{8}$/);
    expect(parseJobName(name)).toEqual({ host: clientHost(), pid: process.pid, nonce: name.slice(-8) });
    expect(clientHost(hostname())).toBe(clientHost());
    expect(clientHost("my_host.example.org")).toBe("my-host.example.org");
    expect(parseJobName("sremote-a-b-12-0123abcd")).toEqual({ host: "a-b", pid: 12, nonce: "0123abcd" });
    expect(parseJobName("sremote-x")).toBeUndefined();
    expect(parseJobName("myjob")).toBeUndefined();
  });

  it("takes a job for dead only when its client ran on this host and its process is gone", () => {
    const alive = (pid: number) => pid === 100;
    expect(isDeadClientJob("sremote-h1-200-0123abcd", "h1", alive)).toBe(true);
    expect(isDeadClientJob("sremote-h1-100-0123abcd", "h1", alive)).toBe(false);
    expect(isDeadClientJob("sremote-h2-200-0123abcd", "h1", alive)).toBe(false);
    expect(isDeadClientJob(`sremote-h1-${process.pid}-0123abcd`, "h1", () => false)).toBe(false);
    expect(isDeadClientJob("other-job", "h1", alive)).toBe(false);
  });
});
