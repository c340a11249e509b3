"""The file carrier, driven for real: `sh interpreter.sh <req> <resp> <dir> <tmp> <pwd>`."""

import os
import unittest

import support
from sremote_agent import PROTOCOL_VERSION, __version__, codec


class FileCarrierTest(support.TempDirTestCase):
    def run_call(self, *args, **fields):
        return support.run_file_carrier(self, support.call_message("0" * 32, *args, **fields))

    def test_a_call_writes_a_private_response_with_the_agent_info(self):
        status, r, out, err = self.run_call("agent_fixtures", "shout", "file")
        self.assertEqual(status, 0, err)
        self.assertEqual(self.response_mode, 0o600)
        self.assertEqual((r["kind"], r["id"], r["ok"], r["value"]), ("result", "0" * 32, True, 4))
        self.assertEqual(r["stdout"], "FILE\n")
        self.assertEqual(r["stderr"], "warning: file\n")
        self.assertEqual(r["agent"]["version"], __version__)
        self.assertEqual(r["agent"]["codec"], codec.CODEC)
        self.assertEqual(r["agent"]["protocol"], PROTOCOL_VERSION)
        # every fact of `hello.agent` but numpy's version, which needs a search of sys.path
        facts = {"version", "protocol", "python", "implementation", "executable", "codec", "pid", "host"}
        self.assertEqual(set(r["agent"]), facts | {"workers", "maxFrameBytes"})
        self.assertEqual(out, "")  # what the call printed went into the response only

    def test_a_failing_call_still_exits_0_with_an_error_result(self):
        status, r, _, _ = self.run_call("agent_fixtures", "fail_chained")
        self.assertEqual(status, 0)
        self.assertEqual((r["ok"], r["error"]["kind"], r["error"]["type"]), (False, "exception", "ValueError"))
        self.assertIn("KeyError", r["error"]["traceback"])
        status, r, _, _ = self.run_call("agent_fixtures", "unserializable")
        self.assertEqual(status, 0)
        self.assertEqual((r["error"]["kind"], r["error"]["path"]), ("serialization", "result.ok[2].owner"))
        self.assertIn("agent", r)

    def test_fd_level_and_subprocess_output_is_captured(self):
        status, r, out, _ = self.run_call("agent_fixtures", "write_fd", 1, "fd one\n")
        self.assertEqual((status, r["stdout"], out), (0, "fd one\n", ""))
        status, r, out, _ = self.run_call("agent_fixtures", "subprocess_print", "kid")
        self.assertEqual((status, r["stdout"], r["stderr"], out), (0, "kid\n", "err:kid", ""))

    @unittest.skipUnless(hasattr(os, "fork"), "os.fork")
    def test_forked_children_print_into_the_response_and_never_answer_themselves(self):
        status, r, out, _ = self.run_call("agent_fixtures", "pool_prints", 3)
        self.assertEqual((status, r["value"], out), (0, [0, 1, 4], ""))
        self.assertEqual(sorted(r["stdout"].splitlines()), ["pool done"] + ["worker says %d" % i for i in range(3)])
        status, r, out, _ = self.run_call("agent_fixtures", "fork_and_return", "back")
        # One response, the parent's: the child ended with status 0 when it came back.
        self.assertEqual((status, r["value"], out), (0, 0, ""))
        self.assertIn("child: back", r["stdout"])

    def test_a_multiprocessing_pool_with_spawn_works(self):
        # Its workers import the agent's __main__.py as __mp_main__: no agent may start there.
        status, r, out, err = self.run_call("agent_fixtures", "pool_prints_with", "spawn", 3)
        self.assertEqual((status, r["value"], out), (0, [0, 1, 4], ""), err)
        self.assertEqual(sorted(r["stdout"].splitlines()), ["worker says %d" % i for i in range(3)])
        self.assertNotIn("no mode given", err)

    def test_env_and_cwd(self):
        status, r, _, _ = self.run_call(
            "agent_fixtures", "envs", "SREMOTE_T_X", "PATH", env={"SREMOTE_T_X": "x"}, pathAppend=["/opt/p"]
        )
        self.assertEqual(r["value"]["SREMOTE_T_X"], "x")
        self.assertTrue(r["value"]["PATH"].endswith(":/opt/p"))
        status, r, _, _ = self.run_call("agent_fixtures", "cwd", cwd=self.tmp)
        self.assertEqual(r["value"], os.path.realpath(self.tmp))
        status, r, _, _ = self.run_call("agent_fixtures", "sys_path0")
        self.assertEqual(r["value"], support.FIXTURES)

    def test_probe_reports_modules_and_agent(self):
        status, r, _, _ = support.run_file_carrier(
            self, {"v": PROTOCOL_VERSION, "kind": "probe", "id": "p", "requires": ["agent_fixtures", "no_such_mod_q"]}
        )
        self.assertEqual(status, 0)
        self.assertEqual((r["ok"], r["value"]), (True, None))
        self.assertEqual(r["modules"], {"agent_fixtures": "", "no_such_mod_q": None})
        np = support.numpy_or_none()
        self.assertEqual(r["agent"]["numpy"], np.__version__ if np else None)
        self.assertEqual(r["agent"]["version"], __version__)

    def test_an_undecodable_request_exits_3_with_a_protocol_error_response(self):
        status, r, _, err = support.run_file_carrier(self, b"\xc1 not msgpack")
        self.assertEqual(status, 3)
        self.assertEqual((r["id"], r["ok"], r["error"]["kind"]), ("", False, "protocol"))
        self.assertIn("agent", r)
        self.assertIn("sremote-agent:", err)

    def test_an_invalid_request_exits_3_naming_the_key(self):
        status, r, _, _ = support.run_file_carrier(self, {"v": PROTOCOL_VERSION, "kind": "call", "id": "i", "module": "m"})
        self.assertEqual(status, 3)
        self.assertEqual((r["id"], r["error"]["kind"]), ("i", "protocol"))
        self.assertIn("'function'", r["error"]["message"])
        status, r, _, _ = support.run_file_carrier(self, {"v": PROTOCOL_VERSION, "kind": "ping", "id": "i"})
        self.assertEqual(status, 3)

    def test_a_missing_request_exits_3(self):
        tmp = os.path.join(self.tmp, "t")
        os.makedirs(tmp)
        resp = os.path.join(tmp, "x.resp")
        proc = support.subprocess.run(
            [support.SH, support.INTERPRETER, os.path.join(tmp, "x.req"), resp, support.REMOTE_DIR, tmp, support.FIXTURES],
            env=self.agent_env(), capture_output=True, timeout=support.TIMEOUT,
        )
        self.assertEqual(proc.returncode, 3)
        with open(resp, "rb") as f:
            r = codec.unpackb(f.read())
        self.assertIn("cannot read the request", r["error"]["message"])

    def test_an_unwritable_response_exits_1(self):
        tmp = os.path.join(self.tmp, "t")
        os.makedirs(tmp)
        req = os.path.join(tmp, "x.req")
        with open(req, "wb") as f:
            f.write(codec.packb(support.call_message("x", "math", "sqrt", 4), "message"))
        resp = os.path.join(tmp, "no", "such", "folder", "x.resp")
        proc = support.subprocess.run(
            [support.SH, support.INTERPRETER, req, resp, support.REMOTE_DIR, tmp, support.FIXTURES],
            env=self.agent_env(), capture_output=True, timeout=support.TIMEOUT,
        )
        self.assertEqual(proc.returncode, 1)
        self.assertIn(b"cannot write the response", proc.stderr)

    def test_threads_left_running_do_not_delay_the_exit(self):
        status, r, _, _ = self.run_call("agent_fixtures", "start_thread", 600)
        self.assertEqual((status, r["value"]), (0, True))

    def test_stream_is_ignored(self):
        status, r, _, _ = self.run_call("agent_fixtures", "stream", 2, 0, stream=True)
        self.assertEqual((status, r["stdout"]), (0, "line 0\nline 1\n"))


if __name__ == "__main__":
    unittest.main()
