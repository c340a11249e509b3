import { describe, expect, it } from "vitest";
import { networkErrorCode, neverSent } from "../src/index.js";

describe("network errors of REST connectors", () => {
  it("find the system code through cause chains and AggregateError (undici, happy eyeballs)", () => {
    const refused = Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:1"), { code: "ECONNREFUSED" });
    const undici = Object.assign(new TypeError("fetch failed"), { code: "UND_ERR", cause: refused });
    expect(networkErrorCode(undici)).toBe("ECONNREFUSED");
    expect(networkErrorCode(new AggregateError([refused], "all failed"))).toBe("ECONNREFUSED");
    expect(networkErrorCode(new Error("no code"))).toBeUndefined();
  });

  it("say a request never reached the server only for connection failures, not for a lost answer", () => {
    expect(neverSent(Object.assign(new Error("x"), { code: "ENOTFOUND" }))).toBe(true);
    expect(neverSent(Object.assign(new Error("x"), { code: "UND_ERR_CONNECT_TIMEOUT" }))).toBe(true);
    expect(neverSent(Object.assign(new Error("x"), { code: "ECONNRESET" }))).toBe(false);
    expect(neverSent(Object.assign(new Error("x"), { code: "UND_ERR_SOCKET" }))).toBe(false);
    expect(neverSent(undefined)).toBe(false);
  });
});
