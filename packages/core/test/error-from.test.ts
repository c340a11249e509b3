import { describe, expect, it } from "vitest";
import { AbortError, ConnectorError, SremoteError, TimeoutError } from "../src/index.js";

describe("SremoteError.from", () => {
  it("gives back an SRemote error as it is, also a copy from another install (by shape)", () => {
    const e = new ConnectorError("CLOSED", "ssh", "closed");
    expect(SremoteError.from(e)).toBe(e);
    const foreign = Object.assign(new Error("x"), { code: "TIMEOUT" });
    expect(SremoteError.from(foreign)).toBe(foreign);
  });

  it("maps the platform's abort and timeout errors to ABORTED and TIMEOUT", () => {
    const aborted = SremoteError.from(new DOMException("stop", "AbortError"), "reading /x");
    expect(aborted).toBeInstanceOf(AbortError);
    expect(aborted.code).toBe("ABORTED");
    expect(aborted.message).toBe("reading /x: stop");
    const timedOut = SremoteError.from(new DOMException("signal timed out", "TimeoutError"));
    expect(timedOut).toBeInstanceOf(TimeoutError);
    expect(timedOut.code).toBe("TIMEOUT");
    expect(Number.isNaN((timedOut as TimeoutError).timeoutMs)).toBe(true);
  });

  it("wraps anything else as INTERNAL, keeping it as the cause, not retryable", () => {
    const cause = new RangeError("bad");
    const e = SremoteError.from(cause);
    expect(e.code).toBe("INTERNAL");
    expect(e.message).toBe("bad");
    expect(e.cause).toBe(cause);
    expect(e.retryable).toBe(false);
    expect(SremoteError.from("a string").message).toBe("a string");
    expect(SremoteError.from(undefined).code).toBe("INTERNAL");
  });
});
