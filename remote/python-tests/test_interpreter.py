"""interpreter.sh under dash (Debian's /bin/sh): arguments, defaults, folders, PATH,
preamble, venv, Python selection, -E, exit statuses."""

import glob
import json
import os
import shutil
import stat
import subprocess
import unittest

import support
from sremote_agent import PROTOCOL_VERSION, codec


def make_endpoint(parent, name="endpoint"):
    """An endpoint laid out as syncAgent leaves it: interpreter.sh and sremote_agent/*.py."""
    endpoint = os.path.join(parent, name)
    os.makedirs(os.path.join(endpoint, "sremote_agent"))
    shutil.copy(support.INTERPRETER, endpoint)
    for path in glob.glob(os.path.join(support.REMOTE_DIR, "sremote_agent", "*.py")):
        shutil.copy(path, os.path.join(endpoint, "sremote_agent"))
    return endpoint


class InterpreterTest(support.TempDirTestCase):
    def setUp(self):
        support.TempDirTestCase.setUp(self)
        self.endpoint = make_endpoint(self.tmp)
        self.home = os.path.join(self.tmp, "home")
        os.makedirs(self.home)
        shutil.copy(os.path.join(support.FIXTURES, "agent_fixtures.py"), self.home)

    def sh(self, args, env=None, cwd=None, script=None):
        return subprocess.run(
            [support.SH, script or os.path.join(self.endpoint, "interpreter.sh")] + list(args),
            env=env if env is not None else self.agent_env(HOME=self.home),
            cwd=cwd or self.tmp,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=support.TIMEOUT,
        )

    def request(self, path, message):
        with open(path, "wb") as f:
            f.write(codec.packb(message, "message"))

    def response(self, path):
        with open(path, "rb") as f:
            return codec.unpackb(f.read())

    def call_envs(self, *names, **kwargs):
        """Runs agent_fixtures.envs(names) with the file carrier and default folders."""
        req, resp = os.path.join(self.tmp, "c.req"), os.path.join(self.tmp, "c.resp")
        self.request(req, support.call_message("c", "agent_fixtures", "envs", *names))
        proc = self.sh([req, resp], **kwargs)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        return self.response(resp)

    def info(self, *args, **kwargs):
        proc = self.sh(["--info"] + list(args), **kwargs)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        return json.loads(proc.stdout)

    # -- the script itself -------------------------------------------------------

    def test_the_script_parses_under_dash(self):
        self.assertEqual(subprocess.run([support.SH, "-n", support.INTERPRETER]).returncode, 0)

    def test_bad_usage_exits_2(self):
        for args in ([], ["only-one"], ["a", "b", "c", "d", "e", "f"], ["--bogus"], ["--info", "a", "b"], ["-x"], ["", "r"]):
            with self.subTest(args=args):
                proc = self.sh(args)
                self.assertEqual(proc.returncode, 2)
                self.assertIn(b"usage:", proc.stderr)

    # -- defaults and folders ----------------------------------------------------------

    def test_defaults_are_the_scripts_folder_its_tmp_and_home(self):
        r = self.call_envs("SREMOTE_DIR", "SREMOTE_TMP", "SREMOTE_PWD", "SREMOTE_BACKUP_ENV")
        self.assertEqual(
            r["value"],
            {
                "SREMOTE_DIR": self.endpoint,
                "SREMOTE_TMP": os.path.join(self.endpoint, "tmp"),
                "SREMOTE_PWD": self.home,
                "SREMOTE_BACKUP_ENV": "",
            },
        )
        self.assertEqual(stat.S_IMODE(os.stat(os.path.join(self.endpoint, "tmp")).st_mode), 0o700)

    def test_relative_paths_are_taken_from_the_starting_folder(self):
        os.makedirs(os.path.join(self.tmp, "work"))
        self.request(os.path.join(self.tmp, "work", "r.req"), support.call_message("r", "agent_fixtures", "cwd"))
        proc = self.sh(["r.req", "r.resp", "../endpoint", "t", "../home"], cwd=os.path.join(self.tmp, "work"))
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertEqual(self.response(os.path.join(self.tmp, "work", "r.resp"))["value"], os.path.realpath(self.home))
        self.assertTrue(os.path.isdir(os.path.join(self.tmp, "work", "t")))

    def test_missing_tmp_and_pwd_are_created(self):
        tmp = os.path.join(self.tmp, "a", "tmp")
        pwd = os.path.join(self.tmp, "b", "pwd")
        req = os.path.join(self.tmp, "x.req")
        self.request(req, support.call_message("x", "os", "getcwd"))
        proc = self.sh([req, os.path.join(self.tmp, "x.resp"), self.endpoint, tmp, pwd])
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertEqual(stat.S_IMODE(os.stat(tmp).st_mode), 0o700)
        self.assertEqual(self.response(os.path.join(self.tmp, "x.resp"))["value"], pwd)

    def test_paths_with_spaces_and_quotes(self):
        endpoint = make_endpoint(self.tmp, "end point 'q' $HOME")
        pwd = os.path.join(self.tmp, "work dir \"x\"")
        os.makedirs(pwd)
        req = os.path.join(self.tmp, "a b.req")
        self.request(req, support.call_message("q", "os", "getcwd"))
        proc = self.sh([req, os.path.join(self.tmp, "a b.resp"), endpoint, os.path.join(self.tmp, "t m p"), pwd])
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertEqual(self.response(os.path.join(self.tmp, "a b.resp"))["value"], pwd)

    def test_works_in_an_empty_environment(self):
        env = {"SREMOTE_PYTHON": support.PYTHON}
        info = self.info(self.endpoint, env=env)
        self.assertEqual(info["protocol"], PROTOCOL_VERSION)
        req = os.path.join(self.tmp, "e.req")
        self.request(req, support.call_message("e", "agent_fixtures", "envs", "PATH"))
        proc = self.sh([req, os.path.join(self.tmp, "e.resp"), self.endpoint, os.path.join(self.tmp, "t"), self.home], env=env)
        self.assertEqual(proc.returncode, 0, proc.stderr)
        path = self.response(os.path.join(self.tmp, "e.resp"))["value"]["PATH"].split(":")
        # dash gives an unset PATH its own default; the standard folders must be there once each
        for folder in ("/usr/local/bin", "/usr/bin", "/bin"):
            self.assertEqual(path.count(folder), 1, path)

    def test_standard_folders_are_appended_to_path_once(self):
        r = self.call_envs("PATH", env=self.agent_env(HOME=self.home, PATH="/opt/x:/usr/bin"))
        self.assertEqual(r["value"]["PATH"], "/opt/x:/usr/bin:/usr/local/bin:/bin")

    # -- preamble and venv --------------------------------------------------------------

    def test_the_preamble_is_sourced_and_its_output_kept_off_stdout(self):
        with open(os.path.join(self.endpoint, "preamble.sh"), "w") as f:
            f.write('echo "preamble noise"\nSREMOTE_T_PRE=from-preamble\nexport SREMOTE_T_PRE\nset -- clobbered\n')
        r = self.call_envs("SREMOTE_T_PRE")
        self.assertEqual(r["value"]["SREMOTE_T_PRE"], "from-preamble")
        proc = self.sh(["--info"])
        self.assertEqual(proc.returncode, 0)
        self.assertIn(b"preamble noise", proc.stderr)
        json.loads(proc.stdout)
        # the session's first frame is still the hello, and options survive `set --` in the preamble
        agent = support.SessionAgent(self, endpoint=self.endpoint, workers=2, env=self.agent_env(HOME=self.home))
        self.assertEqual(agent.hello()["agent"]["workers"], 2)

    def fake_venv(self):
        venv = os.path.join(self.endpoint, "env")
        os.makedirs(os.path.join(venv, "bin"))
        os.symlink(support.PYTHON, os.path.join(venv, "bin", "python"))
        with open(os.path.join(venv, "bin", "activate"), "w") as f:
            f.write(
                'VIRTUAL_ENV="%s"\nexport VIRTUAL_ENV\n_OLD_VIRTUAL_PATH="$PATH"\nexport _OLD_VIRTUAL_PATH\n'
                'PATH="$VIRTUAL_ENV/bin:$PATH"\nexport PATH\necho activated\n' % venv
            )
        return venv

    def test_the_venv_is_activated_and_its_python_used(self):
        venv = self.fake_venv()
        env = self.agent_env(HOME=self.home, SREMOTE_PYTHON=None)
        r = self.call_envs("VIRTUAL_ENV", "SREMOTE_BACKUP_ENV", "PATH", env=env)
        self.assertEqual(r["value"]["VIRTUAL_ENV"], venv)
        self.assertEqual(r["value"]["SREMOTE_BACKUP_ENV"], venv)
        self.assertTrue(r["value"]["PATH"].startswith(venv + "/bin:"))
        self.assertEqual(r["agent"]["executable"], os.path.join(venv, "bin", "python"))

    def test_sremote_python_wins_over_the_venv(self):
        self.fake_venv()
        other = os.path.join(self.tmp, "bin")
        os.makedirs(other)
        os.symlink(support.PYTHON, os.path.join(other, "py-explicit"))
        info = self.info(env=self.agent_env(HOME=self.home, SREMOTE_PYTHON=os.path.join(other, "py-explicit")))
        self.assertEqual(info["executable"], os.path.join(other, "py-explicit"))

    def test_the_installers_python_file_comes_before_path(self):
        bin_dir = os.path.join(self.tmp, "bin")
        os.makedirs(bin_dir)
        os.symlink(support.PYTHON, os.path.join(bin_dir, "py-chosen"))
        os.symlink(support.PYTHON, os.path.join(bin_dir, "python3"))
        env = self.agent_env(HOME=self.home, SREMOTE_PYTHON=None, PATH=bin_dir + ":/usr/bin:/bin")
        self.assertEqual(self.info(env=env)["executable"], os.path.join(bin_dir, "python3"))
        with open(os.path.join(self.endpoint, "python"), "w") as f:
            f.write(os.path.join(bin_dir, "py-chosen"))  # no trailing newline
        self.assertEqual(self.info(env=env)["executable"], os.path.join(bin_dir, "py-chosen"))

    def test_no_suitable_python_exits_4(self):
        proc = self.sh(["--info"], env=self.agent_env(HOME=self.home, SREMOTE_PYTHON="/nonexistent/python9"))
        self.assertEqual(proc.returncode, 4)
        self.assertIn(b"/nonexistent/python9", proc.stderr)
        with open(os.path.join(self.endpoint, "python"), "w") as f:
            f.write("/nonexistent/python8\n")
        proc = self.sh(["--info"], env=self.agent_env(HOME=self.home, SREMOTE_PYTHON=None))
        self.assertEqual(proc.returncode, 4)
        self.assertIn(b"/nonexistent/python8", proc.stderr)

    def test_a_python_older_than_3_8_exits_4(self):
        main = os.path.join(self.endpoint, "sremote_agent", "__main__.py")
        code = "import sys; sys.version_info = (3, 7, 9); exec(compile(open(sys.argv[1]).read(), sys.argv[1], 'exec'))"
        proc = subprocess.run([support.PYTHON, "-c", code, main], capture_output=True, timeout=support.TIMEOUT)
        self.assertEqual(proc.returncode, 4)
        self.assertIn(b"3.8 or newer", proc.stderr)

    def test_python_runs_with_dash_E(self):
        extra = os.path.join(self.tmp, "pp")
        os.makedirs(extra)
        with open(os.path.join(extra, "pp_only_mod.py"), "w") as f:
            f.write("X = 1\n")
        req, resp = os.path.join(self.tmp, "p.req"), os.path.join(self.tmp, "p.resp")
        self.request(req, support.call_message("p", "pp_only_mod", "X"))
        proc = self.sh([req, resp], env=self.agent_env(HOME=self.home, PYTHONPATH=extra))
        self.assertEqual(proc.returncode, 0, proc.stderr)
        self.assertEqual(self.response(resp)["error"]["kind"], "import")

    @unittest.skipUnless(support.THP_MADVISE, "needs transparent huge pages in 'madvise' mode (Linux)")
    def test_the_agent_gets_huge_pages_and_called_code_the_callers_glibc_tunables(self):
        # (caller's GLIBC_TUNABLES, whether the agent's big buffers are on huge pages)
        cases = [
            (None, True),
            ("", True),
            ("glibc.malloc.arena_max=4", True),
            ("glibc.malloc.hugetlb=0", False),  # the caller's choice wins
        ]
        for caller, huge in cases:
            with self.subTest(caller=caller):
                env = self.agent_env(HOME=self.home, GLIBC_TUNABLES=caller)
                req, resp = os.path.join(self.tmp, "g.req"), os.path.join(self.tmp, "g.resp")
                self.request(req, support.call_message("g", "agent_fixtures", "huge_pages_for", 16))
                proc = self.sh([req, resp], env=env)
                self.assertEqual(proc.returncode, 0, proc.stderr)
                self.assertEqual(self.response(resp)["value"] > 0, huge)
                seen = self.call_envs("GLIBC_TUNABLES", "SREMOTE_GLIBC_TUNED", "SREMOTE_CALLER_GLIBC_TUNABLES", env=env)
                self.assertEqual(
                    seen["value"],
                    {"GLIBC_TUNABLES": caller, "SREMOTE_GLIBC_TUNED": None, "SREMOTE_CALLER_GLIBC_TUNABLES": None},
                )

    def test_a_missing_agent_exits_1(self):
        shutil.rmtree(os.path.join(self.endpoint, "sremote_agent"))
        proc = self.sh(["--info"])
        self.assertEqual(proc.returncode, 1)
        self.assertIn(b"agent is missing", proc.stderr)

    # -- --info ------------------------------------------------------------------------

    def test_info_prints_the_hello_fields_as_json(self):
        info = self.info()
        self.assertEqual(
            sorted(info),
            sorted(["version", "protocol", "python", "implementation", "executable", "codec", "numpy", "pid", "host", "workers", "maxFrameBytes"]),
        )
        self.assertEqual(info["codec"], codec.CODEC)
        self.assertFalse(os.path.exists(os.path.join(self.endpoint, "tmp")), "--info must not create folders")

    def test_serve_takes_the_folders_as_defaults_too(self):
        proc = subprocess.run(
            [support.SH, os.path.join(self.endpoint, "interpreter.sh"), "--serve", "--workers", "2"],
            input=b"",
            env=self.agent_env(HOME=self.home),
            capture_output=True,
            timeout=support.TIMEOUT,
        )
        self.assertEqual(proc.returncode, 0, proc.stderr)
        n = int.from_bytes(proc.stdout[:4], "big")
        hello = codec.unpackb(proc.stdout[4 : 4 + n])
        self.assertEqual((hello["kind"], hello["agent"]["workers"]), ("hello", 2))
        self.assertTrue(os.path.isdir(os.path.join(self.endpoint, "tmp")))


if __name__ == "__main__":
    unittest.main()
