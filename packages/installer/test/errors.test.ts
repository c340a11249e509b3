import { describe, expect, it } from "vitest";
import { commandFailure } from "../src/command-failures.js";
import { InstallError } from "../src/errors.js";

const failed = (stderr: string) => ({ stdout: "", stderr, exitCode: 1, signal: null });

describe("InstallError", () => {
  it("keeps the one-line headline apart from the fix and log its message appends", () => {
    const err = new InstallError("COMMAND_FAILED", "creating the venv /e/env failed (exit status 1)", {
      step: "venv",
      fix: "run it again",
      log: "line 1\nline 2\n",
    });
    expect(err.message).toBe(
      "creating the venv /e/env failed (exit status 1)\nfix: run it again\n--- last lines of the output ---\nline 1\nline 2",
    );
    expect(err.headline).toBe("creating the venv /e/env failed (exit status 1)");
    expect(err.toJSON()).toMatchObject({
      code: "COMMAND_FAILED",
      headline: "creating the venv /e/env failed (exit status 1)",
      step: "venv",
      fix: "run it again",
    });
  });
});

describe("commandFailure", () => {
  it("adds 'failed' to an action, and nothing to a phrase that already says it failed", () => {
    expect(commandFailure("venv", "creating the venv /e/env", failed("boom"), "/e").headline).toBe(
      "creating the venv /e/env failed (exit status 1)",
    );
    const pip = commandFailure("package", "pip could not install x==1", failed("ERROR: nope"), "/e", {
      saysFailed: true,
    });
    expect(pip.headline).toBe("pip could not install x==1 (exit status 1)");
    const full = commandFailure(
      "package",
      "pip could not install x==1",
      failed("OSError: No space left on device"),
      "/e",
      {
        saysFailed: true,
      },
    );
    expect(full).toMatchObject({ code: "REMOTE_IO" });
    expect(full.headline).toBe(
      "pip could not install x==1: the remote file system holding /e is full (or the quota is exceeded)",
    );
  });
});
