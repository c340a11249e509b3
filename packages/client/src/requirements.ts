import { satisfies, validRange } from "@renovatebot/pep440";
import { type ModuleProblem, RemoteModulesError, UsageError } from "@sremote/core";

/** A module the remote side must provide, with an optional PEP 440 version specifier. */
export interface Requirement {
  /** Import name or distribution name (`qdo`, `numpy`, `scikit-learn`). */
  name: string;
  /** PEP 440 specifier (`>=1.20,<3`), `""` for any version. */
  specifier: string;
}

const NAME = /^[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?$/;

/**
 * Parses `name`, `name>=1.2`, `name[extra]>=1.2,<2` or `name ==1.0` into a {@link Requirement}.
 * Extras are accepted and ignored (they do not change the installed version).
 *
 * @throws UsageError when the name or the specifier is not valid PEP 508/440.
 */
export function parseRequirement(text: string, specifier?: string): Requirement {
  if (typeof text !== "string" || text.trim() === "") throw new UsageError("requirement must be a non-empty string");
  const m = /^\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[[^\]]*\])?\s*(.*?)\s*$/.exec(text);
  if (!m || !NAME.test(m[1] as string))
    throw new UsageError(`invalid requirement ${JSON.stringify(text)}: bad module name`);
  const name = m[1] as string;
  const spec = (specifier ?? m[2] ?? "").trim();
  if (specifier !== undefined && (m[2] ?? "") !== "") {
    throw new UsageError(`requirement ${JSON.stringify(text)} has a specifier already; pass it once`);
  }
  if (spec !== "" && !validRange(spec)) {
    throw new UsageError(`invalid version specifier ${JSON.stringify(spec)} for ${name} (PEP 440, e.g. ">=1.2,<2")`);
  }
  return { name, specifier: spec };
}

/** PEP 503 normalisation: lower case, runs of `-`, `_`, `.` become one `-`. */
export function normalizeName(name: string): string {
  return name.toLowerCase().replace(/[-_.]+/g, "-");
}

/**
 * Checks the versions the agent reported against the requirements.
 *
 * @param modules the agent's `modules` map (keys as sent; `null` = not importable, `""` = no version).
 * @throws RemoteModulesError listing every unmet requirement.
 */
export function checkRequirements(
  requirements: readonly Requirement[],
  modules: Readonly<Record<string, string | null>>,
): void {
  const problems: ModuleProblem[] = [];
  for (const req of requirements) {
    const found = Object.hasOwn(modules, req.name) ? (modules[req.name] ?? null) : null;
    if (found === null) {
      problems.push({ module: req.name, wanted: req.specifier, found: null });
    } else if (req.specifier !== "" && (found === "" || !satisfies(found, req.specifier))) {
      problems.push({ module: req.name, wanted: req.specifier, found });
    }
  }
  if (problems.length > 0) throw new RemoteModulesError(problems);
}
