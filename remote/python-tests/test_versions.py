"""`requires` -> `modules`: distribution metadata (PEP 503 names), import names that differ
from their distribution, `__version__`, "" and None — in process and through a real agent."""

import os
import sys
import unittest

import support
from sremote_agent import PROTOCOL_VERSION
from sremote_agent.versions import module_versions, normalize

QUERIES = {
    "foo-bar-baz": "1.2.3",  # PEP 503: the distribution is named Foo.Bar_baz
    "FOO_BAR.BAZ": "1.2.3",
    "Foo.Bar_baz": "1.2.3",
    "fbz_import": "1.2.3",  # import name provided by Foo.Bar_baz (top_level.txt)
    "fbz_import.sub": "1.2.3",
    "lonely-dist": "0.5",  # a distribution with no module at all
    "only_version_mod": "9.9",  # no distribution: __version__
    "no_version_mod": "",  # importable, no version anywhere
    "definitely_missing_mod_x": None,
    "broken_on_import_mod": None,  # raises while importing: not importable
}


def make_site(folder):
    """A folder that looks like site-packages: two .dist-info folders and some modules."""
    dist = os.path.join(folder, "Foo.Bar_baz-1.2.3.dist-info")
    os.makedirs(dist)
    with open(os.path.join(dist, "METADATA"), "w") as f:
        f.write("Metadata-Version: 2.1\nName: Foo.Bar_baz\nVersion: 1.2.3\n")
    with open(os.path.join(dist, "top_level.txt"), "w") as f:
        f.write("fbz_import\n")
    with open(os.path.join(dist, "RECORD"), "w") as f:
        f.write("fbz_import/__init__.py,,\nfbz_import/sub.py,,\n")
    os.makedirs(os.path.join(folder, "fbz_import"))
    for name in ("__init__.py", "sub.py"):
        with open(os.path.join(folder, "fbz_import", name), "w") as f:
            f.write("")
    lonely = os.path.join(folder, "lonely_dist-0.5.dist-info")
    os.makedirs(lonely)
    with open(os.path.join(lonely, "METADATA"), "w") as f:
        f.write("Metadata-Version: 2.1\nName: lonely_dist\nVersion: 0.5\n")
    with open(os.path.join(folder, "only_version_mod.py"), "w") as f:
        f.write('__version__ = "9.9"\n')
    with open(os.path.join(folder, "no_version_mod.py"), "w") as f:
        f.write("X = 1\n")
    with open(os.path.join(folder, "broken_on_import_mod.py"), "w") as f:
        f.write("raise ImportError('nope')\n")


class VersionsTest(support.TempDirTestCase):
    def test_normalize_is_pep_503(self):
        self.assertEqual(normalize("Foo.Bar__baz--Qux"), "foo-bar-baz-qux")
        self.assertEqual(normalize("a"), "a")

    def test_module_versions_in_process(self):
        make_site(self.tmp)
        sys.path.insert(0, self.tmp)
        self.addCleanup(sys.path.remove, self.tmp)
        self.addCleanup(self._forget_modules)
        self.assertEqual(module_versions(list(QUERIES)), QUERIES)
        self.assertEqual(module_versions([]), {})

    def test_the_fallbacks_for_python_3_8_and_3_9(self):
        """Before 3.10, importlib.metadata neither normalises names nor has
        packages_distributions(): the agent's own scan must give the same answers."""
        import importlib.metadata
        import types

        from sremote_agent import versions

        class OldMetadata(object):
            @staticmethod
            def version(name):
                raise importlib.metadata.PackageNotFoundError(name)

            distributions = staticmethod(importlib.metadata.distributions)

        make_site(self.tmp)
        sys.path.insert(0, self.tmp)
        self.addCleanup(sys.path.remove, self.tmp)
        self.addCleanup(self._forget_modules)
        saved = versions._metadata, versions.sys
        self.addCleanup(lambda: (setattr(versions, "_metadata", saved[0]), setattr(versions, "sys", saved[1])))
        versions._metadata = lambda: OldMetadata
        versions.sys = types.SimpleNamespace(version_info=(3, 8, 0), modules=sys.modules)
        self.assertEqual(module_versions(list(QUERIES)), QUERIES)

    def _forget_modules(self):
        for name in list(sys.modules):
            if name.split(".")[0] in ("fbz_import", "only_version_mod", "no_version_mod", "broken_on_import_mod"):
                del sys.modules[name]

    def test_probe_through_the_agent(self):
        make_site(self.tmp)
        agent = support.SessionAgent(self, pwd=self.tmp)
        agent.hello()
        agent.send({"v": PROTOCOL_VERSION, "kind": "probe", "id": "p", "requires": list(QUERIES)})
        r = agent.result("p")
        self.assertEqual((r["ok"], r["value"]), (True, None))
        self.assertEqual(r["modules"], QUERIES)
        self.assertIn("agent", r)

    def test_a_call_with_requires_reports_modules(self):
        make_site(self.tmp)
        agent = support.SessionAgent(self, pwd=self.tmp)
        agent.hello()
        r = agent.roundtrip("c", "fbz_import.sub", "__name__.upper", requires=["foo-bar-baz", "nope_q"])
        self.assertEqual(r["modules"], {"foo-bar-baz": "1.2.3", "nope_q": None})
        self.assertEqual(r["value"], "FBZ_IMPORT.SUB")
        r = agent.roundtrip("d", "math", "sqrt", 4)
        self.assertNotIn("modules", r)

    def test_a_distribution_installed_after_start_is_seen(self):
        agent = support.SessionAgent(self, pwd=self.tmp)
        agent.hello()
        agent.send({"v": PROTOCOL_VERSION, "kind": "probe", "id": "1", "requires": ["lonely-dist", "only_version_mod"]})
        self.assertEqual(agent.result("1")["modules"], {"lonely-dist": None, "only_version_mod": None})
        make_site(self.tmp)
        agent.send({"v": PROTOCOL_VERSION, "kind": "probe", "id": "2", "requires": ["lonely-dist", "only_version_mod"]})
        self.assertEqual(agent.result("2")["modules"], {"lonely-dist": "0.5", "only_version_mod": "9.9"})
        self.assertEqual(agent.roundtrip("3", "only_version_mod", "__version__.upper")["value"], "9.9")


if __name__ == "__main__":
    unittest.main()
