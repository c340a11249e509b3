import { spawn } from "node:child_process";
import { userInfo } from "node:os";
import { fileURLToPath } from "node:url";
import { localConnector } from "@sremote/connector-local";
import { sshConnector } from "@sremote/connector-ssh";
import type { Connector, LauncherEvent } from "@sremote/core";
import { describeUnless } from "@sremote/testkit";
import { slurmSkipReason, useSlurmCluster } from "@sremote/testkit/slurm";
import { type SshdFixture, sshConnectorOptions, sshdMissing, startSshd } from "@sremote/testkit/sshd";
import { afterAll, beforeAll, describe, expect, it, type TestContext, vi } from "vitest";
import { clientHost, expandHostlist, type SlurmOptions, slurm } from "../src/index.js";
import { activeJobs, noJobsLeft, runInSlot, until, WHERE } from "./helpers.js";

vi.setConfig({ testTimeout: 60_000, hookTimeout: 60_000 });

const ROOT = fileURLToPath(new URL("../../../", import.meta.url));
const TSX = `${ROOT}node_modules/.bin/tsx`;
const KILLED_CLIENT = fileURLToPath(new URL("./killed-client-child.ts", import.meta.url));

// One real cluster (3 nodes) for the whole file; the launcher reaches it through the local
// connector (as root) and over SSH (as the unprivileged test account).
describeUnless(slurmSkipReason())("slurm launcher against a real Slurm cluster", () => {
  const clusterOf = useSlurmCluster({ nodes: 3 });

  // `transportOnly`: only the tests whose outcome depends on the connector (the account, the
  // environment, killing salloc); the request-sharing and sweep logic run once, locally.
  const suite = (
    label: string,
    connect: (ctx: TestContext) => Connector,
    user: () => string,
    transportOnly = false,
  ) => {
    describe(label, () => {
      const launcherFor = (ctx: TestContext, options: SlurmOptions = {}) => {
        const cluster = clusterOf(ctx);
        return { cluster, launcher: slurm({ env: cluster.env, pollIntervalMs: 200, time: 5, ...options }) };
      };

      it("allocates once, runs steps on distinct nodes per slot as the account, and leaves no job after release", async (ctx) => {
        const connector = connect(ctx);
        const events: LauncherEvent[] = [];
        const { cluster, launcher } = launcherFor(ctx, { nodes: 3, onEvent: (e) => events.push(e) });
        try {
          await launcher.prepare(connector, { timeoutMs: 30_000 });
          const job = launcher.job;
          expect(job?.nodes).toEqual(cluster.nodes);
          expect(events.filter((e) => e.kind === "ready")).toEqual([
            expect.objectContaining({ launcher: "slurm", detail: { jobId: job?.id, nodes: cluster.nodes } }),
          ]);
          const queued = await activeJobs(cluster, "sremote-");
          expect(queued).toEqual([{ id: job?.id, name: job?.name, state: "RUNNING", user: user() }]);
          expect(job?.name).toContain(`sremote-${clientHost()}-${process.pid}-`);
          // A second prepare while the job runs is free: same job, no Slurm command.
          await launcher.prepare(connector);
          expect(launcher.job).toBe(job);

          const where = await Promise.all([0, 1, 2, 3].map((slot) => runInSlot(connector, launcher, slot, WHERE)));
          expect(where.map((r) => r.exitCode)).toEqual([0, 0, 0, 0]);
          expect(where.map((r) => r.stdout.trim())).toEqual(
            ["c1", "c2", "c3", "c1"].map((node) => `${node} ${user()}`),
          );

          // The session carrier's shape: a long-lived step speaking over stdin/stdout (-u).
          const echo = launcher.wrap(
            {
              argv: [
                "/usr/bin/python3",
                "-u",
                "-c",
                "import os, sys\nfor line in sys.stdin: print(os.environ['SLURMD_NODENAME'], line.strip(), flush=True)",
              ],
              env: { GREETING: "hi" },
            },
            { carrier: "session", slot: 1 },
          );
          expect(echo.env).toEqual({ ...cluster.env, GREETING: "hi" });
          const proc = await connector.spawn?.(echo.argv, { env: echo.env });
          if (!proc) throw new Error("the connector cannot spawn");
          let out = "";
          proc.stdout.on("data", (d: Buffer) => {
            out += d.toString();
          });
          proc.stdin.write("ping\n");
          await until(async () => out.includes("c2 ping\n"), "the step's first reply");
          proc.stdin.write("pong\n");
          await until(async () => out.includes("c2 pong\n"), "the step's second reply");
          proc.stdin.end();
          expect((await proc.exited).exitCode).toBe(0);
        } finally {
          await launcher.release(connector);
          await connector.close();
        }
        expect(launcher.job).toBeUndefined();
        expect(events.at(-1)).toMatchObject({ kind: "released" });
        expect(await activeJobs(cluster, "sremote-")).toEqual([]);
        await noJobsLeft(cluster);
        // Idempotent.
        await launcher.release(connector);
      });

      if (!transportOnly)
        it("finds the job by its name when salloc says nothing (--quiet)", async (ctx) => {
          const connector = connect(ctx);
          const { cluster, launcher } = launcherFor(ctx, { extra: ["--quiet"] });
          try {
            await launcher.prepare(connector, { timeoutMs: 30_000 });
            expect((await activeJobs(cluster, "sremote-")).map((j) => j.id)).toEqual([launcher.job?.id]);
            expect((await runInSlot(connector, launcher, 0, WHERE)).stdout.trim()).toBe(`c1 ${user()}`);
          } finally {
            await launcher.release(connector);
            await connector.close();
          }
          expect(await activeJobs(cluster, "sremote-")).toEqual([]);
        });

      it("turns Slurm's refusals into SCHEDULER errors with Slurm's words, and leaves no job", async (ctx) => {
        const connector = connect(ctx);
        try {
          const bad = launcherFor(ctx, { partition: "nosuch" });
          const err = await bad.launcher.prepare(connector, { timeoutMs: 30_000 }).catch((e: unknown) => e);
          expect(err).toMatchObject({ name: "SchedulerError", code: "SCHEDULER", launcher: "slurm", retryable: true });
          expect((err as Error).message).toMatch(/invalid partition specified: nosuch/);
          expect((err as Error).message).toMatch(/Invalid partition name specified/);
          expect(bad.launcher.job).toBeUndefined();

          // Over the partition's node count: Slurm accepts the job, which could never start.
          const big = launcherFor(ctx, { nodes: 5 });
          const events: LauncherEvent[] = [];
          const err2 = await big.launcher
            .prepare(connector, { timeoutMs: 30_000, onEvent: (e) => events.push(e) })
            .catch((e: unknown) => e);
          // slurmctld says PartitionConfig at first, PartitionNodeLimit once its scheduler looked.
          expect(err2).toMatchObject({
            code: "SCHEDULER",
            retryable: true,
            details: { state: "PENDING", reason: expect.stringMatching(/^Partition(Config|NodeLimit)$/) },
          });
          expect((err2 as Error).message).toMatch(/can never start: Partition(Config|NodeLimit) \(salloc .*--nodes=5/);
          expect(await activeJobs(big.cluster, "sremote-")).toEqual([]);
          await noJobsLeft(big.cluster);
        } finally {
          await connector.close();
        }
      });

      it("allocates anew after the job was cancelled from outside and the launcher invalidated", async (ctx) => {
        const connector = connect(ctx);
        const { cluster, launcher } = launcherFor(ctx, { nodes: 2 });
        try {
          await launcher.prepare(connector, { timeoutMs: 30_000 });
          const first = launcher.job?.id as string;
          // A long step (an agent's shape) running when the job is cancelled from outside.
          const step = launcher.wrap(
            {
              argv: ["/usr/bin/python3", "-u", "-c", "import sys; print('up', flush=True); sys.stdin.read()"],
              env: {},
            },
            { carrier: "session", slot: 1 },
          );
          const proc = await connector.spawn?.(step.argv, { env: step.env });
          if (!proc) throw new Error("the connector cannot spawn");
          let out = "";
          let err = "";
          proc.stdout.on("data", (d: Buffer) => {
            out += d.toString();
          });
          proc.stderr.on("data", (d: Buffer) => {
            err += d.toString();
          });
          await until(async () => out.includes("up"), "the step to start");
          await cluster.command("scancel", [first]);
          const exit = await proc.exited;
          expect(exit.exitCode ?? exit.signal).not.toBe(0);
          expect(launcher.explainExit(err)).toMatchObject({
            code: "SCHEDULER",
            details: { jobId: first, cause: "cancelled" },
            message: expect.stringMatching(new RegExp(`STEP ${first}\\.\\d+ ON c2 CANCELLED AT`)),
          });
          // A step started in the dead job fails: that is what makes a client call invalidate().
          const dead = await runInSlot(connector, launcher, 0, WHERE);
          expect(dead.exitCode).not.toBe(0);
          expect(launcher.explainExit(dead.stderr)).toMatchObject({ code: "SCHEDULER", details: { jobId: first } });
          launcher.invalidate();
          const events: LauncherEvent[] = [];
          await launcher.prepare(connector, { timeoutMs: 30_000, onEvent: (e) => events.push(e) });
          const second = launcher.job?.id as string;
          expect(second).not.toBe(first);
          expect(events.map((e) => e.kind)).toEqual(["info", "ready"]);
          expect(events[0]?.message).toMatch(new RegExp(`job ${first} is (CANCELLED|COMPLETING|gone)`));
          expect((await runInSlot(connector, launcher, 1, WHERE)).stdout.trim()).toBe(`c2 ${user()}`);
          // invalidate() on a live job: checked, kept.
          launcher.invalidate();
          await launcher.prepare(connector, { timeoutMs: 30_000 });
          expect(launcher.job?.id).toBe(second);
        } finally {
          await launcher.release(connector);
          await connector.close();
        }
        expect(await activeJobs(cluster, "sremote-")).toEqual([]);
        await noJobsLeft(cluster);
      });

      it("reports a pending allocation, and an abort or timeout while pending leaves no job", async (ctx) => {
        const connector = connect(ctx);
        // --begin in an hour: pending (BeginTime) until cancelled.
        const { cluster, launcher } = launcherFor(ctx, { extra: ["--begin=now+3600"] });
        try {
          const controller = new AbortController();
          const events: LauncherEvent[] = [];
          const err = await launcher
            .prepare(connector, {
              signal: controller.signal,
              onEvent: (e) => {
                events.push(e);
                if (e.kind === "pending") controller.abort();
              },
            })
            .catch((e: unknown) => e);
          expect(err).toMatchObject({ code: "ABORTED" });
          expect(events[0]).toMatchObject({ kind: "pending", detail: { state: "PENDING", reason: "BeginTime" } });
          expect(await activeJobs(cluster, "sremote-")).toEqual([]);
          await noJobsLeft(cluster);

          const err2 = await launcher.prepare(connector, { timeoutMs: 700 }).catch((e: unknown) => e);
          expect(err2).toMatchObject({ code: "TIMEOUT" });
          expect(await activeJobs(cluster, "sremote-")).toEqual([]);
          await noJobsLeft(cluster);
          expect(launcher.job).toBeUndefined();
        } finally {
          await launcher.release(connector);
          await connector.close();
        }
      });

      if (!transportOnly)
        it("shares one request between concurrent callers, cancelled only when the last one gives up", async (ctx) => {
          const connector = connect(ctx);
          try {
            const quick = launcherFor(ctx, { nodes: 2 });
            await Promise.all([1, 2, 3].map(() => quick.launcher.prepare(connector, { timeoutMs: 30_000 })));
            expect((await activeJobs(quick.cluster, "sremote-")).map((j) => j.id)).toEqual([quick.launcher.job?.id]);
            await quick.launcher.release(connector);

            const { cluster, launcher } = launcherFor(ctx, { extra: ["--begin=now+3600"] });
            const first = new AbortController();
            const pending: LauncherEvent[] = [];
            const a = launcher
              .prepare(connector, { signal: first.signal, onEvent: (e) => pending.push(e) })
              .catch((e: unknown) => e);
            const b = launcher.prepare(connector, { timeoutMs: 30_000 }).catch((e: unknown) => e);
            await until(async () => pending.length > 0, "a pending event");
            first.abort();
            expect(await a).toMatchObject({ code: "ABORTED" });
            // The other caller still waits: the request stays queued.
            expect((await activeJobs(cluster, "sremote-")).map((j) => j.state)).toEqual(["PENDING"]);
            await launcher.release(connector);
            expect(await b).toMatchObject({
              code: "ABORTED",
              message: expect.stringMatching(/cancelled by release\(\)/),
            });
            expect(await activeJobs(cluster, "sremote-")).toEqual([]);
            await noJobsLeft(cluster);
          } finally {
            await connector.close();
          }
        });

      if (!transportOnly)
        it("cancels this user's leftover jobs of dead clients on this host, and only those", async (ctx) => {
          const connector = connect(ctx);
          const { cluster, launcher } = launcherFor(ctx);
          // A real client process that allocated and was then killed (SIGKILL: no cleanup ran).
          const child = spawn(TSX, ["--conditions=@sremote/source", KILLED_CLIENT], {
            cwd: ROOT,
            env: { ...process.env, ...cluster.env },
            stdio: ["ignore", "pipe", "inherit"],
          });
          let line = "";
          child.stdout.on("data", (d: Buffer) => {
            line += d.toString();
          });
          await until(async () => line.includes("\n") || child.exitCode !== null, "the child's allocation", 30_000);
          const killed = JSON.parse(line) as { id: string; name: string; pid: number };
          // tsx runs the script in a child node process: that one is the client.
          const exited = new Promise((r) => child.once("exit", r));
          process.kill(killed.pid, "SIGKILL");
          await exited;
          expect((await activeJobs(cluster, "sremote-")).map((j) => j.id)).toContain(killed.id);
          const leftovers = {
            alive: `sremote-${clientHost()}-1-0123abcd`, // PID 1 runs
            elsewhere: `sremote-other-host-${child.pid}-0123abcd`,
          };
          try {
            for (const name of Object.values(leftovers)) {
              const r = await connector.exec(["salloc", "--no-shell", `--job-name=${name}`, "--time=5"], {
                env: cluster.env,
                timeoutMs: 30_000,
              });
              expect(r.stderr).toMatch(/Granted job allocation/);
            }
            const events: LauncherEvent[] = [];
            await launcher.prepare(connector, { timeoutMs: 30_000, onEvent: (e) => events.push(e) });
            expect(events.find((e) => e.kind === "info")).toMatchObject({
              message: expect.stringMatching(/cancelled 1 leftover job\(s\) of dead clients/),
              detail: { jobs: [killed.id] },
            });
            const names = (await activeJobs(cluster, "sremote-")).map((j) => j.name).sort();
            expect(names).toEqual([leftovers.alive, leftovers.elsewhere, launcher.job?.name].sort());
          } finally {
            await launcher.release(connector);
            for (const name of [leftovers.alive, leftovers.elsewhere]) {
              await connector.exec(["scancel", "--me", `--name=${name}`], { env: cluster.env });
            }
            await connector.close();
          }
        });
    });
  };

  suite(
    "through the local connector (root)",
    () => localConnector(),
    () => userInfo().username,
  );

  it("expands host lists as scontrol does", async (ctx) => {
    const cluster = clusterOf(ctx);
    for (const list of ["c1", "c[1-3]", "c[1-2,5],gpu[08-10]", "x[009-011]", "r[1-2]n[1-2]"]) {
      const { stdout } = await cluster.command("scontrol", ["show", "hostnames", list]);
      expect(expandHostlist(list)).toEqual(stdout.trim().split("\n"));
    }
    // What Slurm calls invalid, the parser refuses too (then scontrol is asked, and says so).
    for (const list of ["nid[001-002]-ib", "a[1-2]b"]) {
      const r = await cluster.command("scontrol", ["show", "hostnames", list]).catch((e: { stderr?: string }) => e);
      expect(JSON.stringify(r)).toMatch(/Invalid hostlist/);
      expect(expandHostlist(list)).toBeUndefined();
    }
  });

  describeUnless(sshdMissing())("over SSH", () => {
    let sshd: SshdFixture;
    beforeAll(async () => {
      sshd = await startSshd();
    });
    afterAll(async () => {
      await sshd?.stop();
    });
    suite(
      "to a test account",
      () => sshConnector(sshConnectorOptions(sshd)),
      () => sshd.user,
      true,
    );
  });
});
