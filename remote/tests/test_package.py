"""Package-level facts: the version matches package.json, and the agent's source parses
as Python 3.8."""

import ast
import glob
import json
import os
import unittest

import support
import sremote_agent


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


if __name__ == "__main__":
    unittest.main()
