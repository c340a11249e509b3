"""Sessions that heal (a call that breaks fds 0-2 or `sys.std*` does not break the calls
after it) and agents that end with their clients (issue 15), driven for real."""

import errno
import os
import time
import unittest
from unittest import mock

import support
from sremote_agent import PROTOCOL_VERSION, file_carrier


def wait_for_path(path, timeout=support.TIMEOUT):
    end = time.monotonic() + timeout
    while not os.path.exists(path):
        if time.monotonic() >= end:
            raise AssertionError("%s was not created within %s s" % (path, timeout))
        time.sleep(0.005)


def read_pid(path):
    wait_for_path(path)
    with open(path) as f:
        return int(f.read())


def process_gone(pid):
    """True when `pid` no longer runs (gone, or a zombie nobody reaped yet)."""
    try:
        with open("/proc/%d/stat" % pid, "rb") as f:
            data = f.read()
    except OSError:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False
        return False
    return data[data.rfind(b")") + 2 :].split()[0] == b"Z"


def assert_gone_soon(test, pid, timeout=support.TIMEOUT):
    end = time.monotonic() + timeout
    while not process_gone(pid):
        if time.monotonic() >= end:
            try:
                os.kill(pid, 9)
            except OSError:
                pass
            test.fail("process %d still runs" % pid)
        time.sleep(0.02)


class HealingTest(support.TempDirTestCase):
    """After each breaking call, the next call's output is captured normally and is its own."""

    def agent(self, **kwargs):
        agent = support.SessionAgent(self, **kwargs)
        agent.hello()
        return agent

    def check_output_after(self, function, *args, workers=None):
        agent = self.agent(workers=workers)
        broke = agent.roundtrip("break", "agent_fixtures", function, *args)
        self.assertTrue(broke["ok"], broke)
        for tag in ("one", "two"):
            r = agent.roundtrip(tag, "agent_fixtures", "everywhere", tag)
            self.assertTrue(r["ok"], r)
            self.assertEqual(r["value"], 0, r)  # os.system("echo ...") succeeded
            for line in ("print-", "fd1-", "sh-"):
                self.assertIn(line + tag + "\n", r["stdout"])
            for line in ("stderr-", "fd2-", "sh-err-"):
                self.assertIn(line + tag + "\n", r["stderr"])
            for other in ("one", "two"):
                if other != tag:
                    self.assertNotIn(other, r["stdout"] + r["stderr"])
            self.assertNotIn(tag, broke["stdout"] + broke["stderr"])
        agent.send({"v": PROTOCOL_VERSION, "kind": "shutdown"})
        self.assertEqual(agent.wait(), 0)
        return agent

    def test_a_call_that_closes_fd_1(self):
        agent = self.check_output_after("close_fd", 1)
        self.assertIn("fd 1", agent.stderr)  # the agent says what it put back

    def test_a_call_that_points_fd_1_at_dev_null(self):
        self.check_output_after("devnull_over_fd", 1)

    def test_a_call_that_closes_fd_2(self):
        self.check_output_after("close_fd", 2)

    def test_a_call_that_points_fd_2_at_dev_null_with_two_workers(self):
        self.check_output_after("devnull_over_fd", 2, workers=2)

    def test_a_call_that_closes_fd_0(self):
        self.check_output_after("close_fd", 0)

    def test_a_call_that_replaces_sys_stdout(self):
        agent = self.check_output_after("replace_sys_stdout")
        self.assertIn("sys.stdout", agent.stderr)

    def test_a_call_that_redirects_sys_stderr_and_closes_sys_stdin(self):
        agent = self.agent()
        self.assertTrue(agent.roundtrip("b", "agent_fixtures", "redirect_sys_stderr")["ok"])
        r = agent.roundtrip("n", "agent_fixtures", "everywhere", "n")
        self.assertIn("stderr-n\n", r["stderr"])
        self.assertIn("print-n\n", r["stdout"])
        r = agent.roundtrip("s", "agent_fixtures", "stdin_state")
        self.assertEqual(r["value"], [True, "", ""], r)

    def test_fd_0_closed_or_replaced_is_put_back_once_the_session_is_idle(self):
        # fd 0 cannot be checked without a system call, so it is checked when the session
        # falls idle (a second without calls), not after every call.
        agent = self.agent()
        self.assertTrue(agent.roundtrip("b", "agent_fixtures", "close_fd", 0)["ok"])
        for attempt in range(40):  # bounded: about a minute
            time.sleep(1.5)
            state = agent.roundtrip("s%d" % attempt, "agent_fixtures", "stdin_state")["value"]
            if state[0]:
                break
        self.assertEqual(state, [True, "", ""])


class EndWithClientTest(support.TempDirTestCase):
    def agent(self, **kwargs):
        agent = support.SessionAgent(self, **kwargs)
        agent.hello()
        return agent

    def check_ends_hung_call(self, own_group):
        agent = self.agent()  # the default grace (2 s)
        pid_file = os.path.join(self.tmp, "child.pid")
        agent.call("hung", "agent_fixtures", "spawn_and_sleep", pid_file, 60, own_group)
        child = read_pid(pid_file)
        agent.close_stdin()
        self.assertEqual(agent.wait(timeout=support.TIMEOUT), 1)
        assert_gone_soon(self, child)
        self.assertIn("ending", agent.stderr)
        with self.assertRaises(EOFError):
            agent.result("hung", timeout=5)

    def test_a_client_that_goes_away_ends_a_hung_call_and_its_subprocess(self):
        self.check_ends_hung_call(False)

    def test_a_subprocess_in_its_own_process_group_is_ended_too(self):
        self.check_ends_hung_call(True)

    def test_a_call_that_ends_within_the_grace_still_sends_its_result(self):
        agent = self.agent(extra_args=["--grace-ms", "600000"])
        release = os.path.join(self.tmp, "release")
        started = os.path.join(self.tmp, "started")
        agent.call("1", "agent_fixtures", "wait_for_file", release, 60.0, started)
        agent.call("2", "agent_fixtures", "echo", "queued")
        wait_for_path(started)
        agent.close_stdin()
        # The queued call never starts: answered at once, before the running one ends.
        r2 = agent.recv()
        self.assertEqual((r2["id"], r2["ok"], r2["error"]["kind"]), ("2", False, "cancelled"))
        open(release, "w").close()
        r1 = agent.result("1")
        self.assertEqual((r1["ok"], r1["value"]), (True, True))
        self.assertEqual(agent.wait(), 0)

    def test_grace_comes_from_the_environment_when_not_given(self):
        env = self.agent_env(SREMOTE_END_GRACE_MS="0")
        agent = self.agent(env=env)
        pid_file = os.path.join(self.tmp, "child.pid")
        agent.call("hung", "agent_fixtures", "spawn_and_sleep", pid_file, 60)
        child = read_pid(pid_file)
        agent.close_stdin()
        self.assertEqual(agent.wait(), 1)
        assert_gone_soon(self, child)
        self.assertIn("get 0 s to finish", agent.stderr)

    def test_bad_grace_is_a_usage_error(self):
        agent = support.SessionAgent(self, extra_args=["--grace-ms", "-1"])
        self.assertEqual(agent.wait(), 2)
        self.assertIn("--grace-ms", agent.stderr)

    def test_a_closed_output_channel_ends_the_agent_too(self):
        import subprocess

        r, w = os.pipe()
        pid_file = os.path.join(self.tmp, "child.pid")
        proc = subprocess.Popen(
            [support.SH, support.INTERPRETER, "--serve", support.REMOTE_DIR, os.path.join(self.tmp, "t"), support.FIXTURES],
            stdin=subprocess.PIPE,
            stdout=w,
            stderr=subprocess.DEVNULL,
            env=self.agent_env(SREMOTE_END_GRACE_MS="100"),
        )
        os.close(w)
        self.addCleanup(lambda: proc.poll() is None and proc.kill())
        proc.stdin.write(support.frame(support.call_message("c", "agent_fixtures", "spawn_and_sleep", pid_file, 60)))
        proc.stdin.flush()
        child = read_pid(pid_file)
        os.close(r)  # the client stops reading; its input stays open
        try:
            self.assertEqual(proc.wait(timeout=support.TIMEOUT), 1)
        finally:
            proc.stdin.close()
        assert_gone_soon(self, child)


class FileCarrierLifecycleTest(support.TempDirTestCase):
    def test_a_call_past_its_timeout_is_ended_with_its_processes(self):
        pid_file = os.path.join(self.tmp, "child.pid")
        msg = support.call_message("0" * 32, "agent_fixtures", "spawn_and_sleep", pid_file, 60, timeoutMs=300)
        status, r, _, err = support.run_file_carrier(self, msg)
        self.assertEqual(status, 0, err)
        self.assertEqual((r["ok"], r["error"]["kind"], r["error"]["type"]), (False, "exception", "Timeout"))
        self.assertIn("timeoutMs", r["error"]["message"])
        self.assertIn("agent", r)
        assert_gone_soon(self, read_pid(pid_file))

    def test_a_call_within_its_timeout_is_answered_normally(self):
        msg = support.call_message("0" * 32, "agent_fixtures", "add", 1, 2, timeoutMs=600000)
        status, r, _, err = support.run_file_carrier(self, msg)
        self.assertEqual((status, r["ok"], r["value"]), (0, True, 3), err)

    def test_a_bad_timeout_is_a_protocol_error(self):
        for bad in (-1, "5", True):
            msg = support.call_message("0" * 32, "agent_fixtures", "add", 1, 2, timeoutMs=bad)
            status, r, _, _ = support.run_file_carrier(self, msg)
            self.assertEqual((status, r["error"]["kind"]), (3, "protocol"))
            self.assertIn("timeoutMs", r["error"]["message"])

    def test_a_full_or_read_only_temp_folder_is_a_clear_error_and_leaves_no_part_file(self):
        path = os.path.join(self.tmp, "x.resp")
        logged = []

        class Router(object):
            def log(self, message):
                logged.append(message)

        for code, words in ((errno.ENOSPC, "full"), (errno.EROFS, "read-only"), (errno.EDQUOT, "quota")):
            with mock.patch.object(file_carrier, "write_all", side_effect=OSError(code, os.strerror(code))):
                with self.assertRaises(OSError) as caught:
                    file_carrier.write_response(path, b"body")
            self.assertEqual(os.listdir(self.tmp), [])  # no .part left behind
            self.assertEqual(file_carrier._write_failed(Router(), path, caught.exception), file_carrier.EXIT_TMP_UNWRITABLE)
            self.assertIn(words, logged[-1])
            self.assertIn("temp folder", logged[-1])
        self.assertEqual(file_carrier._write_failed(Router(), path, OSError(errno.EIO, "I/O error")), 1)


if __name__ == "__main__":
    unittest.main()
