"""Package-level facts: the version matches package.json, the agent's source parses as
Python 3.8, and its modules import alone and without cycles."""

import ast
import glob
import json
import os
import subprocess
import sys
import unittest

import support
import sremote_agent

PACKAGE_DIR = os.path.join(support.REMOTE_DIR, "sremote_agent")
# __main__ is the entry script: importing it runs the agent (test_interpreter runs it).
MODULES = sorted(
    name[:-3] for name in os.listdir(PACKAGE_DIR) if name.endswith(".py") and name != "__main__.py"
)


def package_imports(module):
    """The package's modules that `module` imports (at the top or inside a function), as
    names without the package: `from .x import y` and `from sremote_agent.x import y` give
    x; `from . import y` gives y when y is a module, else __init__ (a name defined there)."""
    with open(os.path.join(PACKAGE_DIR, module + ".py")) as f:
        tree = ast.parse(f.read())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level == 1:
                base = node.module
            elif node.level == 0 and node.module and node.module.split(".")[0] == "sremote_agent":
                base = node.module.partition(".")[2] or None
            else:
                continue
            if base is not None:
                found.add(base.split(".")[0])
            else:
                for alias in node.names:
                    found.add(alias.name if alias.name in MODULES else "__init__")
        elif isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                if parts[0] == "sremote_agent":
                    found.add(parts[1] if len(parts) > 1 else "__init__")
    found.discard(module)
    return found


def find_cycle(graph):
    """A list of modules forming an import cycle, or None."""
    state = {}  # module -> 1 while on the path, 2 when done

    def visit(node, path):
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt) :] + [nxt]
            if nxt not in state:
                cycle = visit(nxt, path + [nxt])
                if cycle:
                    return cycle
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            cycle = visit(node, [node])
            if cycle:
                return cycle
    return None


class PackageTest(unittest.TestCase):
    def test_version_matches_package_json(self):
        with open(os.path.join(support.REMOTE_DIR, "package.json")) as f:
            version = json.load(f)["version"]
        self.assertEqual(sremote_agent.__version__, version, "run node scripts/sync-agent-version.mjs")

    def test_sources_are_python_3_8_syntax(self):
        files = glob.glob(os.path.join(support.REMOTE_DIR, "sremote_agent", "*.py"))
        self.assertGreater(len(files), 5)
        for path in files:
            with open(path) as f:
                source = f.read()
            with self.subTest(path=os.path.basename(path)):
                ast.parse(source, path, feature_version=(3, 8))
                self.assertNotIn("removeprefix", source)
                self.assertNotIn("removesuffix", source)


    def test_each_module_imports_alone_in_a_fresh_interpreter(self):
        self.assertIn("session", MODULES)
        for module in MODULES:
            with self.subTest(module=module):
                name = "sremote_agent" if module == "__init__" else "sremote_agent." + module
                proc = subprocess.run(
                    [sys.executable, "-c", "import %s" % name],
                    cwd=support.REMOTE_DIR, capture_output=True, text=True, timeout=support.TIMEOUT,
                )
                self.assertEqual(proc.returncode, 0, proc.stderr)

    def test_the_package_has_no_import_cycle(self):
        graph = {module: package_imports(module) for module in MODULES}
        self.assertIn("info", graph["session"])  # the walk sees the imports it should
        self.assertIn("session", graph["main"])  # ... the ones inside functions too
        self.assertIsNone(find_cycle(graph))

    def test_the_cycle_check_finds_a_cycle(self):
        self.assertEqual(find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}), ["a", "b", "c", "a"])
        self.assertIsNone(find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}))


if __name__ == "__main__":
    unittest.main()
