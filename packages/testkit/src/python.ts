import { execFileSync } from "node:child_process";

/** Debian's interpreter: the one the SSH test accounts have (CI installs python3-venv, -pip, -wheel). */
export const SYSTEM_PYTHON = "/usr/bin/python3";

/**
 * True when `python` imports every module of `modules`, in that order (order matters:
 * importing `pip` before `setuptools` trips Debian's distutils shim).
 */
export function pythonHasModules(python: string, modules: readonly string[]): boolean {
  try {
    execFileSync(python, ["-c", `import ${modules.join(", ")}`], { stdio: "ignore", timeout: 30_000 });
    return true;
  } catch {
    return false;
  }
}
