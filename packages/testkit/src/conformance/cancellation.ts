import type { Connector } from "@sremote/core";
import { expect } from "vitest";
import { remoteExists, sleep, waitForRemoteFile } from "../remote-tools.js";
import type { GroupContext } from "./context.js";
import { expectCode } from "./expect-code.js";

/** How long the "slow" remote commands of these tests sleep before leaving a late marker. */
export const SLOW_COMMAND_SECONDS = 3;
/** The deadline given to a slow command: long enough for any connector to start it. */
export const CANCEL_TIMEOUT_MS = 1500;

/**
 * A shell script that starts a background child, then marks `$1` and prints `ready` (so
 * both signs of life come after the child exists); after {@link SLOW_COMMAND_SECONDS} the
 * child marks `$2` and the script itself `$3`. Ending only the top process leaves the
 * child to write `$2`: only ending the whole process group (or session) stops both.
 */
export const SLOW_SCRIPT = `(sleep ${SLOW_COMMAND_SECONDS}; echo late > "$2") & echo started > "$1"; printf ready; sleep ${SLOW_COMMAND_SECONDS}; echo late > "$3"; wait`;

/** Markers of one slow command. */
export interface SlowMarkers {
  started: string;
  lateChild: string;
  lateSelf: string;
}

/** Paths for a slow command's markers. */
export function slowMarkers(ctx: GroupContext, tag: string): SlowMarkers {
  return {
    started: ctx.path(`${tag}-started`),
    lateChild: ctx.path(`${tag}-late-child`),
    lateSelf: ctx.path(`${tag}-late`),
  };
}

/** argv of a slow command leaving `markers`. */
export function slowArgv(markers: SlowMarkers): string[] {
  return ["sh", "-c", SLOW_SCRIPT, "sh", markers.started, markers.lateChild, markers.lateSelf];
}

/**
 * Waits until the slow command started at `startedAt` would have left its late markers
 * (plus a margin), then checks through `observer` that it never did.
 */
export async function expectNoLateMarkers(
  observer: Connector,
  startedAt: number,
  ...all: SlowMarkers[]
): Promise<void> {
  const due = startedAt + SLOW_COMMAND_SECONDS * 1000 + 1500;
  await sleep(Math.max(0, due - Date.now()));
  for (const markers of all) {
    expect(await remoteExists(observer, markers.started), `${markers.started} (the command never started)`).toBe(true);
    expect(await remoteExists(observer, markers.lateSelf), "the command kept running after it was ended").toBe(false);
    expect(
      await remoteExists(observer, markers.lateChild),
      "a child of the command kept running after it was ended (end the whole process group)",
    ).toBe(false);
  }
}

/** Group `cancellation`: timeoutMs and abort signals end the command and all it started. */
export function cancellationGroup(ctx: GroupContext): void {
  ctx.test(
    "timeoutMs rejects TIMEOUT and abort rejects ABORTED; neither command nor its children keep running",
    async () => {
      const { connector } = ctx;
      const timed = slowMarkers(ctx, "timeout");
      const aborted = slowMarkers(ctx, "abort");
      const startedAt = Date.now();
      const controller = new AbortController();
      const timedRun = connector.exec(slowArgv(timed), { timeoutMs: CANCEL_TIMEOUT_MS });
      const abortedRun = connector.exec(slowArgv(aborted), { signal: controller.signal });
      const timedOutcome = expectCode(timedRun, "TIMEOUT");
      const abortedOutcome = expectCode(abortedRun, "ABORTED");
      await waitForRemoteFile(connector, aborted.started, SLOW_COMMAND_SECONDS * 1000 - 500, "the command to abort");
      controller.abort();
      await timedOutcome;
      await abortedOutcome;
      await expectNoLateMarkers(connector, startedAt, timed, aborted);
    },
  );

  ctx.test("an already aborted signal rejects ABORTED and runs nothing", async () => {
    const { connector } = ctx;
    const marker = ctx.path("never");
    const signal = AbortSignal.abort();
    await expectCode(connector.exec(["sh", "-c", 'echo ran > "$1"', "sh", marker], { signal }), "ABORTED");
    await expectCode(connector.putFile(marker, Buffer.from("x"), { signal }), "ABORTED");
    await expectCode(connector.getFile(marker, { signal }), "ABORTED");
    await expectCode(connector.homeDir({ signal }), "ABORTED");
    await sleep(500);
    expect(await remoteExists(connector, marker)).toBe(false);
  });
}
