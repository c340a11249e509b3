import { describe, expect, it } from "vitest";
import {
  defaultLayout,
  formatLocationFile,
  layoutFromLocation,
  locationFromLayout,
  parseLocationFile,
  posixJoin,
} from "../src/index.js";

describe("layout", () => {
  it("defaults to ~/.sremote, ~/.sremote/tmp and ~", () => {
    expect(defaultLayout("/home/u")).toEqual({
      endpointDir: "/home/u/.sremote",
      tmpDir: "/home/u/.sremote/tmp",
      workDir: "/home/u",
    });
  });

  it("resolves relative and absolute .location fields", () => {
    const loc = parseLocationFile(
      '{"sremote":"/global/proj/sremote","relative_tmp":"tmp/sr","absolute_pwd":"/scratch/u"}',
    );
    expect(layoutFromLocation(loc, "/home/u")).toEqual({
      endpointDir: "/global/proj/sremote",
      tmpDir: "/home/u/tmp/sr",
      workDir: "/scratch/u",
    });
  });

  it("round-trips through locationFromLayout and formatLocationFile", () => {
    const layout = { endpointDir: "/opt/shared/sr", tmpDir: "/home/u/.sremote/tmp", workDir: "/home/u" };
    const text = formatLocationFile(locationFromLayout(layout, "/home/u"));
    expect(JSON.parse(text)).toEqual({ sremote: "/opt/shared/sr", relative_tmp: ".sremote/tmp", relative_pwd: "." });
    expect(layoutFromLocation(parseLocationFile(text), "/home/u")).toEqual(layout);
  });

  it.each([
    ["not json", /not valid JSON/],
    ["[]", /must be a JSON object/],
    ['{"relative_tmp":"t","relative_pwd":"p"}', /"sremote" must be a non-empty string/],
    ['{"sremote":"/s","relative_pwd":"p"}', /one of "absolute_tmp" or "relative_tmp" is required/],
    ['{"sremote":"/s","relative_tmp":"t","absolute_tmp":"/t","relative_pwd":"p"}', /only one of/],
    ['{"sremote":"/s","absolute_tmp":"t","relative_pwd":"p"}', /must be an absolute path/],
    ['{"sremote":"/s","relative_tmp":"/t","relative_pwd":"p"}', /must be relative to the home folder/],
    ['{"sremote":"/s","relative_tmp":"t","relative_pwd":"p","extra":1}', /unknown field/],
  ])("rejects %s with INVALID_LOCATION", (text, why) => {
    expect(() => parseLocationFile(text, "/home/u/.sremote/.location")).toThrow(why);
    expect(() => parseLocationFile(text)).toThrow(expect.objectContaining({ code: "INVALID_LOCATION" }));
  });

  it("normalises paths", () => {
    expect(posixJoin("/a/", "b/../c", "./d")).toBe("/a/c/d");
    expect(posixJoin("/", "..", "x")).toBe("/x");
  });
});
