import { describe, expect, it } from "vitest";
import {
  ConnectorError,
  deadline,
  hasErrorCode,
  isSremoteError,
  RemoteExecError,
  RemoteModulesError,
} from "../src/index.js";

describe("errors", () => {
  it("prefix connector errors with the connector name and keep details", () => {
    const e = new ConnectorError("FILE_NOT_FOUND", "ssh", "no such file /x", { details: { path: "/x" } });
    expect(e.message).toBe("ssh: no such file /x");
    expect(e.code).toBe("FILE_NOT_FOUND");
    expect(e.details).toEqual({ path: "/x" });
    expect(hasErrorCode(e, "FILE_NOT_FOUND")).toBe(true);
  });

  it("match by shape across package copies", () => {
    expect(isSremoteError({ code: "TIMEOUT", message: "x" })).toBe(true);
    expect(isSremoteError({ code: "ENOENT" })).toBe(false);
  });

  it("name module, wanted and found in modules errors", () => {
    const e = new RemoteModulesError([
      { module: "numpy", wanted: ">=2", found: "1.26.4" },
      { module: "qdo", wanted: "", found: null },
    ]);
    expect(e.message).toBe("remote requirements not met: numpy >=2: found 1.26.4; qdo: not installed");
  });

  it("carry Python facts in exec errors", () => {
    const e = new RemoteExecError({
      kind: "exception",
      type: "ValueError",
      message: "bad",
      traceback: "Traceback…",
      call: "m.f",
    });
    expect(e.message).toBe("m.f: ValueError: bad");
    expect(e.toJSON()).toMatchObject({ code: "REMOTE_EXEC", kind: "exception", type: "ValueError" });
  });
});

describe("deadline", () => {
  it("reports a timeout as TIMEOUT and an abort as ABORTED", async () => {
    const d = deadline({ timeoutMs: 5 });
    expect(d.timedOut).toBe(false);
    await new Promise((r) => d.signal.addEventListener("abort", r));
    expect(d.error("x")).toMatchObject({ code: "TIMEOUT" });
    expect(d.timedOut).toBe(true);
    const c = new AbortController();
    const d2 = deadline({ signal: c.signal, timeoutMs: 10_000 });
    c.abort();
    expect(d2.signal.aborted).toBe(true);
    expect(d2.error("y")).toMatchObject({ code: "ABORTED" });
    expect(d2.timedOut).toBe(false);
    d.dispose();
    d2.dispose();
  });
});
