"""The file carrier with fewer round trips (issue 16), the sweep of stale temp files and the
agent that ends with the client reading its output (issue 15), driven for real:
`sh interpreter.sh <req> <resp> <dir> <tmp> <pwd>` with `inlineReply` / `sweep` requests."""

import base64
import os
import subprocess
import time
import unittest

import support
from sremote_agent import codec
from test_lifecycle import assert_gone_soon, read_pid

ID = "0123456789abcdef0123456789abcdef"
PREFIX = b"sremote-reply:"


def reply_of(stdout):
    """The response bytes of the last reply line, 'file', or None."""
    lines = stdout.rstrip(b"\n").split(b"\n")
    last = lines[-1] if lines else b""
    if last.startswith(PREFIX):
        return base64.b64decode(last[len(PREFIX) :], validate=True)
    if last == b"sremote-reply-file":
        return "file"
    return None


class InlineReplyTest(support.TempDirTestCase):
    def setUp(self):
        support.TempDirTestCase.setUp(self)
        self.folder = os.path.join(self.tmp, "file-tmp")
        os.makedirs(self.folder, mode=0o700)
        self.req = os.path.join(self.folder, ID + ".req")
        self.resp = os.path.join(self.folder, ID + ".resp")

    def start(self, request, env=None, stdout=subprocess.PIPE):
        with open(self.req, "wb") as f:
            f.write(request if isinstance(request, bytes) else codec.packb(request, "message"))
        return subprocess.Popen(
            [support.SH, support.INTERPRETER, self.req, self.resp, support.REMOTE_DIR, self.folder, support.FIXTURES],
            stdin=subprocess.DEVNULL,
            stdout=stdout,
            stderr=subprocess.PIPE,
            env=self.agent_env(**(env or {})),
        )

    def run_agent(self, request, env=None):
        proc = self.start(request, env)
        out, err = proc.communicate(timeout=support.TIMEOUT)
        return proc.returncode, out, err.decode("utf-8", "replace")

    def call(self, *args, **fields):
        fields.setdefault("inlineReply", 1 << 20)
        return support.call_message(ID, "agent_fixtures", *args, **fields)

    def test_a_small_response_comes_back_on_stdout_and_no_file_is_left(self):
        status, out, err = self.run_agent(self.call("shout", "inline"))
        self.assertEqual(status, 0, err)
        r = codec.unpackb(reply_of(out))
        self.assertEqual((r["id"], r["ok"], r["value"], r["stdout"]), (ID, True, 6, "INLINE\n"))
        self.assertEqual(out.count(b"\n"), 1)  # the call's own output went into the response only
        self.assertEqual(os.listdir(self.folder), [])  # the agent removed its request

    def test_a_response_over_the_inline_limit_goes_to_the_response_file(self):
        status, out, err = self.run_agent(self.call("big_bytes", 5000, inlineReply=1000))
        self.assertEqual((status, reply_of(out)), (0, "file"), err)
        self.assertEqual(os.listdir(self.folder), [ID + ".resp"])
        self.assertEqual(os.stat(self.resp).st_mode & 0o777, 0o600)
        with open(self.resp, "rb") as f:
            self.assertEqual(len(codec.unpackb(f.read())["value"]), 5000)

    def test_a_result_over_the_clients_frame_limit_is_a_serialization_error(self):
        status, out, err = self.run_agent(self.call("big_bytes", 5000, maxFrameBytes=1000))
        r = codec.unpackb(reply_of(out))
        self.assertEqual((status, r["ok"], r["error"]["kind"]), (0, False, "serialization"), err)
        self.assertIn("over the frame limit of 1000 bytes", r["error"]["message"])

    def test_inline_limit_zero_always_uses_the_file(self):
        status, out, _ = self.run_agent(self.call("add", 1, 2, inlineReply=0))
        self.assertEqual((status, reply_of(out)), (0, "file"))

    def test_an_undecodable_request_is_answered_through_the_file_as_before(self):
        status, out, _ = self.run_agent(b"\xc1 not msgpack")
        self.assertEqual((status, reply_of(out)), (3, None))
        self.assertEqual(sorted(os.listdir(self.folder)), sorted([ID + ".req", ID + ".resp"]))

    def test_an_invalid_request_with_inline_reply_is_a_protocol_error_inline(self):
        status, out, _ = self.run_agent({"v": 1, "kind": "call", "id": ID, "module": "m", "inlineReply": 1 << 20})
        r = codec.unpackb(reply_of(out))
        self.assertEqual((status, r["error"]["kind"]), (3, "protocol"))
        self.assertEqual(os.listdir(self.folder), [])

    def test_a_request_without_inline_reply_keeps_the_seed_flow(self):
        status, out, _ = self.run_agent(support.call_message(ID, "agent_fixtures", "add", 1, 2))
        self.assertEqual((status, out), (0, b""))
        self.assertEqual(sorted(os.listdir(self.folder)), sorted([ID + ".req", ID + ".resp"]))

    def test_a_call_past_its_timeout_is_answered_inline(self):
        pid_file = os.path.join(self.tmp, "child.pid")
        status, out, err = self.run_agent(self.call("spawn_and_sleep", pid_file, 60, timeoutMs=300))
        r = codec.unpackb(reply_of(out))
        self.assertEqual((status, r["error"]["type"]), (0, "Timeout"), err)
        assert_gone_soon(self, read_pid(pid_file))
        self.assertEqual(os.listdir(self.folder), [])

    def test_the_agent_ends_with_the_client_reading_its_output(self):
        # The client (or its sshd) dies mid-call: the read end of the agent's stdout closes.
        pid_file = os.path.join(self.tmp, "child.pid")
        r, w = os.pipe()
        proc = self.start(self.call("spawn_and_sleep", pid_file, 60, own_group=True), stdout=w)
        os.close(w)
        self.addCleanup(lambda: proc.poll() is None and proc.kill())
        child = read_pid(pid_file)
        os.close(r)
        self.assertEqual(proc.wait(timeout=support.TIMEOUT), 1)
        assert_gone_soon(self, child)
        self.assertIn(b"stopped reading", proc.stderr.read())
        proc.stderr.close()

    def test_an_agent_writing_to_a_file_is_not_watched(self):
        out = os.path.join(self.tmp, "out")
        with open(out, "wb") as f:
            proc = self.start(self.call("add", 2, 3), stdout=f)
            proc.communicate(timeout=support.TIMEOUT)
        with open(out, "rb") as f:
            self.assertEqual(codec.unpackb(reply_of(f.read()))["value"], 5)


class SweepTest(support.TempDirTestCase):
    """`sweep`: stale carrier files of dead clients go, everything else stays."""

    def test_the_first_call_of_a_client_removes_stale_files_of_dead_clients_only(self):
        folder = os.path.join(self.tmp, "file-tmp")
        os.makedirs(folder, mode=0o700)
        old = time.time() - 7200
        dead = ["a" * 32 + ".req", "b" * 32 + ".resp", "c" * 32 + ".resp.part", ".%s.req.0a1b2c.sremote-tmp" % ("d" * 32),
                ".%s.req.sremote-0a1b2c.tmp" % ("e" * 32)]
        live = ["f" * 32 + ".req", "1" * 32 + ".resp"]  # a live client's, fresh
        foreign = ["notes.req", "A" * 32 + ".req", "a" * 32 + ".req.bak"]  # not carrier names
        for name in dead + live + foreign:
            with open(os.path.join(folder, name), "wb") as f:
                f.write(b"x")
        for name in dead + foreign:
            os.utime(os.path.join(folder, name), (old, old))
        os.mkdir(os.path.join(folder, "2" * 32 + ".req"))  # not a regular file
        os.utime(os.path.join(folder, "2" * 32 + ".req"), (old, old))
        msg = support.call_message(ID, "agent_fixtures", "add", 1, 2, inlineReply=1 << 20, sweep=True)
        req = os.path.join(folder, ID + ".req")
        with open(req, "wb") as f:
            f.write(codec.packb(msg, "message"))
        os.utime(req, (old, old))  # this call's own request is never swept
        proc = subprocess.run(
            [support.SH, support.INTERPRETER, req, os.path.join(folder, ID + ".resp"), support.REMOTE_DIR, folder,
             support.FIXTURES],
            stdin=subprocess.DEVNULL, capture_output=True, env=self.agent_env(), timeout=support.TIMEOUT,
        )
        self.assertEqual(codec.unpackb(reply_of(proc.stdout))["value"], 3, proc.stderr)
        self.assertEqual(sorted(os.listdir(folder)), sorted(live + foreign + ["2" * 32 + ".req"]))
        self.assertIn(b"removed 5 stale temp file(s)", proc.stderr)

    def test_the_age_bound_comes_from_the_environment_first(self):
        from sremote_agent import sweep

        folder = os.path.join(self.tmp, "f")
        os.makedirs(folder)
        path = os.path.join(folder, "a" * 32 + ".resp")
        with open(path, "wb") as f:
            f.write(b"x")
        os.utime(path, (time.time() - 10, time.time() - 10))
        self.assertEqual(sweep.sweep(folder, sweep.max_age(True)), 0)  # default: an hour
        self.assertEqual(sweep.sweep(folder, sweep.max_age(60)), 0)
        old = os.environ.get("SREMOTE_SWEEP_AGE_S")
        os.environ["SREMOTE_SWEEP_AGE_S"] = "5"
        try:
            self.assertEqual(sweep.max_age(3600), 5.0)
            self.assertEqual(sweep.sweep(folder, sweep.max_age(True)), 1)
        finally:
            if old is None:
                del os.environ["SREMOTE_SWEEP_AGE_S"]
            else:
                os.environ["SREMOTE_SWEEP_AGE_S"] = old
        self.assertEqual(os.listdir(folder), [])
        self.assertEqual(sweep.sweep(os.path.join(self.tmp, "missing"), 0), 0)  # never raises


if __name__ == "__main__":
    unittest.main()
