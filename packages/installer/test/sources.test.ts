import { describe, expect, it } from "vitest";
import { normalizePackage, parseGitSource, parseInstalled, sourceKey, specName } from "../src/sources.js";

describe("parseGitSource", () => {
  it.each([
    ["file:///srv/repo@main#py", { url: "file:///srv/repo", ref: "main", subdir: "py" }],
    ["file:///srv/repo", { url: "file:///srv/repo", ref: undefined, subdir: undefined }],
    ["https://host/org/repo.git@v1.2", { url: "https://host/org/repo.git", ref: "v1.2", subdir: undefined }],
    ["https://user@host/org/repo.git", { url: "https://user@host/org/repo.git", ref: undefined, subdir: undefined }],
    [
      "https://user@host/org/repo.git@feature/x",
      { url: "https://user@host/org/repo.git", ref: "feature/x", subdir: undefined },
    ],
    ["git@github.com:org/repo.git", { url: "git@github.com:org/repo.git", ref: undefined, subdir: undefined }],
    ["git@github.com:org/repo.git@main", { url: "git@github.com:org/repo.git", ref: "main", subdir: undefined }],
    ["git+https://h/r.git@v2#subdirectory=py&egg=qdo", { url: "https://h/r.git", ref: "v2", subdir: "py" }],
    ["/srv/repo.git@main#./py/", { url: "/srv/repo.git", ref: "main", subdir: "py" }],
    [
      "ssh://git@host:2222/r.git@0123456789abcdef0123456789abcdef01234567",
      {
        url: "ssh://git@host:2222/r.git",
        ref: "0123456789abcdef0123456789abcdef01234567",
        subdir: undefined,
      },
    ],
  ])("%s", (text, expected) => {
    expect(parseGitSource(text)).toEqual({ kind: "git", ...expected });
  });

  it.each([
    ["", /non-empty/],
    ["-upload-pack=evil", /must not start with "-"/],
    ["ftp://host/repo", /unsupported scheme/],
    ["relative/repo", /expected scheme/],
    ["file:///r@-bad", /bad branch/],
    ["file:///r@a..b", /bad branch/],
    ["file:///r#../../etc", /relative path inside/],
    ["file:///r#/abs", /relative path inside/],
    ["file:///r\n@x", /one line/],
  ])("rejects %j", (text, message) => {
    expect(() => parseGitSource(text)).toThrow(message);
    try {
      parseGitSource(text);
    } catch (err) {
      expect((err as { code: string }).code).toBe("INVALID_ARGUMENT");
    }
  });
});

describe("normalizePackage", () => {
  it("takes strings as pip specs and refuses option-looking ones", () => {
    expect(normalizePackage(" numpy>=1.2 ")).toEqual({ kind: "spec", spec: "numpy>=1.2" });
    expect(() => normalizePackage("--index-url=http://evil")).toThrow(/must not start with "-"/);
    expect(() => normalizePackage({ kind: "bogus" } as never)).toThrow(/unknown package kind/);
  });
  it("merges a git object's ref and subdir over the URL's", () => {
    expect(normalizePackage({ kind: "git", url: "file:///r@a#x", ref: "b" })).toEqual({
      kind: "git",
      url: "file:///r",
      ref: "b",
      subdir: "x",
    });
  });
  it("resolves local paths on the client", () => {
    const p = normalizePackage({ kind: "local", path: "some/dir" });
    expect(p.kind === "local" && p.path.startsWith("/")).toBe(true);
    expect(sourceKey(normalizePackage({ kind: "git", url: "file:///r@main#py" }))).toBe("git:file:///r@main#py");
  });
});

describe("pip output", () => {
  it("reads the installed distributions", () => {
    expect(parseInstalled("Processing ./x\nSuccessfully installed my-pkg-1.0 other_pkg-2.0.post1\n")).toEqual([
      { name: "my-pkg", version: "1.0" },
      { name: "other_pkg", version: "2.0.post1" },
    ]);
    expect(parseInstalled("Requirement already satisfied: x in /y\n")).toEqual([]);
  });
  it("finds a spec's distribution name", () => {
    expect(specName("Foo.Bar[x]>=1")).toBe("foo-bar");
    expect(specName("qdo")).toBe("qdo");
    expect(specName("qdo @ https://x/y.whl")).toBe("qdo");
    expect(specName("./local/path")).toBeUndefined();
  });
});
