import { randomBytes } from "node:crypto";
import { AGENT_VERSION } from "@sremote/agent";
import { type Connector, type OperationOptions, posixJoin, type RemoteLayout } from "@sremote/core";
import { BUILD_PREFIX, MARKER_FILE, PREAMBLE_FILE, STATE_FILE } from "../endpoint-files.js";
import type { StepRecorder } from "../events.js";
import type { InstallOptions } from "../install-options.js";
import type { CurrentLocation } from "../paths.js";
import type { PythonInfo, VenvInfo } from "../python-probe.js";
import type { RemoteRunner, WrapOptions } from "../remote-commands.js";
import type { PackageSource } from "../sources.js";
import { formatState, type InstallState } from "../state.js";
import type { InstallInputs } from "./inputs.js";

/*
 * An install is a chain of steps over one context that grows in stages: each step receives
 * the stage it needs and returns what it learnt, and `install()` adds that to the context for
 * the steps after it. A step's parameter type names the stage, so it cannot read what an
 * earlier step has not produced yet.
 */

/** Limit of a short remote command (a probe, a survey, a clean-up). */
export const SHORT_TIMEOUT = 120_000;

/** What a failed install must undo, and whether it changed anything. Steps update it. */
export interface RunProgress {
  /** Something was modified (the completion marker is gone). */
  dirty: boolean;
  /** A build folder a running command uses, removed after a failure. */
  pendingBuild: string | undefined;
  /** The venv folder being created, removed after a failure (a half-made venv). */
  venvBeingCreated: string | undefined;
}

/** Fixed for the whole install, before any step. */
export interface InstallRun {
  /** The caller's connector, counting operations. */
  readonly connector: Connector;
  readonly remote: RemoteRunner;
  readonly recorder: StepRecorder;
  readonly options: InstallOptions;
  /** The options checked and local packages read on the client. */
  readonly inputs: InstallInputs;
  /** File operations run under the install's deadline. */
  readonly op: OperationOptions;
  /** Time limit of a long command (venv, pip, git clone). */
  readonly longTimeout: number;
  readonly progress: RunProgress;
}

/** What the `layout` step decides: where the endpoint is and what this install wants there. */
export interface EndpointPlan {
  homeDir: string;
  /** The user's `.location` as found. */
  current: CurrentLocation;
  layout: RemoteLayout;
  /** The state the last install recorded, `null` when none. */
  previous: InstallState | null;
  /** The state this install keeps and writes: starts as a copy of `previous`; steps update it. */
  state: InstallState;
  shared: boolean;
  preamble: string[];
  wantVenv: boolean;
  systemSitePackages: boolean;
  /** `--python` as asked for (now or by the last install), `null` for "python3, else python". */
  requestedPython: string | null;
  /** `.location` is this install's business (written or removed). */
  writeLocation: boolean;
  /** The `.location` this layout needs, `null` for none. */
  locationText: string | null;
  /** `"022"` shared, `"077"` private. */
  umask: string;
  /** Mode of the files the installer writes. */
  fileMode: number;
  /** `<endpoint>/env/bin/python`. */
  venvPython: string;
}

/** What the `python` step found (it changes nothing). */
export interface PythonFacts {
  /** The interpreter the venv is made from (and calls run with when there is no venv). */
  base: PythonInfo;
  /** The endpoint's venv as it is now, `null` when missing or broken. */
  venvInfo: VenvInfo | null;
  /** Why the venv must be (re)created; empty when it stays. */
  venvReasons: string[];
  /** git on the remote PATH, `null` when missing. */
  git: string | null;
}

/** What `folders` found in the endpoint; `has` is kept up to date by later steps. */
export interface Survey {
  changed: string[];
  has: Set<string>;
  /** Build folders an interrupted install left. */
  stale: string[];
  owner: boolean;
}

/** The venv as the steps after `venv` see it; each `package` step returns the next one. */
export interface VenvState {
  info: VenvInfo | null;
  /** Created by this install: every package is reinstalled. */
  recreated: boolean;
}

/** After `layout`. */
export type LocatedRun = InstallRun & { readonly plan: EndpointPlan };
/** After `python`. */
export type ProbedRun = LocatedRun & { readonly python: PythonFacts };
/** After `sources`: the commit of every git package. */
export type ResolvedRun = ProbedRun & { readonly commits: ReadonlyMap<PackageSource, string> };
/** After `folders`: the endpoint exists. The first stage that may change anything. */
export type SurveyedRun = ResolvedRun & { readonly survey: Survey };
/** After `venv`. */
export type VenvRun = SurveyedRun & { readonly venv: VenvState };

const encoder = new TextEncoder();
/** UTF-8 bytes of a text file. */
export const encode = (text: string): Uint8Array => encoder.encode(text);

/** A file in the endpoint. */
export function endpointPath(r: LocatedRun, name: string): string {
  return posixJoin(r.plan.layout.endpointDir, name);
}

/**
 * How commands that need Python run: the preamble file once `folders` saw it written, else
 * the lines themselves; under the endpoint's install lock when `lock`.
 */
export function wrapOptions(r: ProbedRun & { readonly survey?: Survey }, lock: boolean): WrapOptions {
  const written = r.survey?.has.has(PREAMBLE_FILE);
  return {
    preamble: written && r.plan.preamble.length > 0 ? endpointPath(r, PREAMBLE_FILE) : "",
    preambleText: r.plan.preamble.join("\n"),
    umask: r.plan.umask,
    lock: lock ? { python: r.python.base.executable, endpointDir: r.plan.layout.endpointDir } : undefined,
  };
}

/** Deletes the completion marker before the first change that matters. */
export async function markDirty(r: SurveyedRun): Promise<void> {
  if (r.progress.dirty) return;
  r.progress.dirty = true;
  if (r.survey.has.has(MARKER_FILE)) await r.connector.deleteFile(endpointPath(r, MARKER_FILE), r.op);
  r.survey.has.delete(MARKER_FILE);
}

/** Writes the plan's state to `install-state.json`. */
export async function saveState(r: LocatedRun): Promise<void> {
  const s = r.plan.state;
  s.updatedAt = new Date().toISOString();
  s.agentVersion = AGENT_VERSION;
  s.shared = r.plan.shared;
  await r.connector.putFile(endpointPath(r, STATE_FILE), encode(formatState(s)), {
    ...r.op,
    mode: r.plan.fileMode,
  });
}

/**
 * A new `install-*` folder in the temp folder for one command's files (a build, TMPDIR),
 * removed after a failure too; one a killed install left is removed by the next install.
 */
export function newScratch(r: LocatedRun): string {
  const path = posixJoin(r.plan.layout.tmpDir, `${BUILD_PREFIX}${randomBytes(8).toString("hex")}`);
  r.progress.pendingBuild = path;
  return path;
}

/** Removes a scratch folder; best effort: a folder left here is removed by the next install. */
export async function removeScratch(r: LocatedRun, path: string): Promise<void> {
  await r.connector.exec(["rm", "-rf", "--", path], { ...r.op, timeoutMs: SHORT_TIMEOUT }).catch(() => undefined);
  if (r.progress.pendingBuild === path) r.progress.pendingBuild = undefined;
}
