import { execFile } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";

/**
 * The part of esbuild that `bundleApp` uses. The caller passes esbuild in (the repository
 * root's copy), so that no package depends on it.
 */
export interface Esbuild {
  build(options: {
    entryPoints: string[];
    outfile: string;
    bundle: boolean;
    platform: "node";
    format: "esm";
    target: string;
    conditions: string[];
    alias: Record<string, string>;
    nodePaths: string[];
    logLevel: "silent";
  }): Promise<unknown>;
}

/** The app `bundleApp` builds, and the workspace package it is built against. */
export interface BundleAppOptions {
  /** The app's source: an ES module that prints its result as JSON on its last line of output. */
  source: string;
  /** The workspace package the app imports (e.g. "@sremote/client"), bundled from its TypeScript source. */
  packageName: string;
  /** That package's folder: its src/index.ts is bundled, and its node_modules resolve the app's other imports. */
  packageDir: string;
  /** The start of the scratch folder's name, in the system's temp folder. */
  prefix: string;
}

/** An app bundled into one file by `bundleApp`, in a scratch folder of its own. */
export interface BundledApp {
  /** The scratch folder: the app's source, and the bundle in out/ (no node_modules anywhere). */
  dir: string;
  /** The bundle: one file. */
  bundle: string;
  /**
   * Runs the bundle with this Node in `dir` and returns the JSON object on its last line of
   * output. The environment is PATH, HOME (= `dir`) and `env`, nothing else.
   */
  run(env?: Record<string, string>): Promise<Record<string, unknown>>;
  /** Removes the scratch folder. */
  remove(): void;
}

/**
 * Bundles `source` into one ES module file for Node, as users ship CLIs and serverless
 * functions, so that a test can check what the package does when its own folder is not on disk
 * next to the code. Workspace packages are bundled from their TypeScript sources (the
 * "@sremote/source" condition).
 */
export async function bundleApp(esbuild: Esbuild, options: BundleAppOptions): Promise<BundledApp> {
  const dir = mkdtempSync(join(tmpdir(), options.prefix));
  const bundle = join(dir, "out", "app.mjs");
  try {
    writeFileSync(join(dir, "app.mjs"), options.source);
    await esbuild.build({
      entryPoints: [join(dir, "app.mjs")],
      outfile: bundle,
      bundle: true,
      platform: "node",
      format: "esm",
      target: "node20",
      conditions: ["@sremote/source"],
      alias: { [options.packageName]: join(options.packageDir, "src", "index.ts") },
      nodePaths: [join(options.packageDir, "node_modules")],
      logLevel: "silent",
    });
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  return {
    dir,
    bundle,
    async run(env = {}) {
      // A clean environment apart from PATH/HOME: the test runner's own variables stay out.
      const { stdout } = await promisify(execFile)(process.execPath, [bundle], {
        cwd: dir,
        env: { PATH: process.env.PATH ?? "", HOME: dir, ...env },
        timeout: 50_000,
      });
      return JSON.parse(stdout.trim().split("\n").pop() ?? "{}") as Record<string, unknown>;
    },
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}
