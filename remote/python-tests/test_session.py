"""The session carrier, driven for real: `sh interpreter.sh --serve` in a subprocess."""

import multiprocessing
import os
import struct
import subprocess
import tempfile
import time
import unittest
from unittest import mock

import support
from sremote_agent import PROTOCOL_VERSION, __version__, capture, codec, fdio
from sremote_agent import session as session_module


def release_call(path):
    """Lets an agent_fixtures.wait_for_file call end."""
    open(path, "w").close()


def wait_for_path(path, timeout=support.TIMEOUT):
    end = time.monotonic() + timeout
    while not os.path.exists(path):
        if time.monotonic() >= end:
            raise AssertionError("%s was not created within %s s" % (path, timeout))
        time.sleep(0.005)


def voluntary_switches(pid):
    """Voluntary context switches of all of process `pid`'s threads so far (Linux)."""
    total = 0
    for task in os.listdir("/proc/%d/task" % pid):
        with open("/proc/%d/task/%s/status" % (pid, task)) as f:
            for line in f:
                if line.startswith("voluntary_ctxt_switches:"):
                    total += int(line.split()[1])
    return total


class SessionTest(support.TempDirTestCase):
    def agent(self, **kwargs):
        agent = support.SessionAgent(self, **kwargs)
        self.hello = agent.hello()
        return agent

    # -- start, calls, errors ---------------------------------------------------

    def test_hello_comes_first_and_describes_the_agent(self):
        self.agent(workers=3, max_frame=1 << 20)
        info = self.hello["agent"]
        self.assertEqual(self.hello["v"], PROTOCOL_VERSION)
        self.assertEqual(info["version"], __version__)
        self.assertEqual(info["protocol"], PROTOCOL_VERSION)
        self.assertEqual(info["codec"], codec.CODEC)
        self.assertEqual(info["workers"], 3)
        self.assertEqual(info["maxFrameBytes"], 1 << 20)
        self.assertEqual(os.path.realpath(info["executable"]), support.PYTHON)
        self.assertIsInstance(info["pid"], int)
        self.assertTrue(info["host"])
        self.assertIn(info["implementation"], ("cpython", "pypy"))
        np = support.numpy_or_none()
        self.assertEqual(info["numpy"], np.__version__ if np else None)

    def test_a_call_returns_its_value_output_and_duration(self):
        agent = self.agent()
        r = agent.roundtrip("c1", "agent_fixtures", "shout", "hi")
        self.assertEqual(r["kind"], "result")
        self.assertTrue(r["ok"], r)
        self.assertEqual(r["value"], 2)
        self.assertEqual(r["stdout"], "HI\n")
        self.assertEqual(r["stderr"], "warning: hi\n")
        self.assertIsInstance(r["durationNs"], int)
        self.assertNotIn("agent", r)
        self.assertNotIn("truncated", r)
        # stderr of calls is copied to the agent's own stderr too
        agent.send({"v": PROTOCOL_VERSION, "kind": "shutdown"})
        self.assertEqual(agent.wait(), 0)
        self.assertIn("warning: hi", agent.stderr)

    def test_args_kwargs_and_dotted_functions(self):
        agent = self.agent()
        r = agent.roundtrip("a", "agent_fixtures", "echo", 1, "x", kwargs={"k": [True, None]})
        self.assertEqual(r["value"], {"args": [1, "x"], "kwargs": {"k": [True, None]}})
        r = agent.roundtrip("b", "agent_fixtures", "Queue.valid_name", "my_queue")
        self.assertIs(r["value"], True)
        r = agent.roundtrip("c", "agent_fixtures", "Queue.Inner.deep")
        self.assertEqual(r["value"], "deep")
        r = agent.roundtrip("d", "os.path", "join", "a", "b")
        self.assertEqual(r["value"], "a/b")
        agent.send({"v": PROTOCOL_VERSION, "kind": "call", "id": "e", "module": "math", "function": "sqrt", "args": None, "kwargs": None, "x-future": 1})
        self.assertEqual(agent.result("e")["error"]["type"], "TypeError")  # sqrt() needs an argument

    def test_error_kinds(self):
        agent = self.agent()
        r = agent.roundtrip("1", "no_such_module_xyz", "f")
        self.assertEqual((r["ok"], r["error"]["kind"], r["error"]["type"]), (False, "import", "ModuleNotFoundError"))
        r = agent.roundtrip("2", "agent_fixtures_broken", "f")
        self.assertEqual((r["error"]["kind"], r["error"]["type"]), ("import", "RuntimeError"))
        self.assertIn("broken at import time", r["error"]["traceback"])
        self.assertNotIn("frozen importlib", r["error"]["traceback"])
        r = agent.roundtrip("3", "agent_fixtures", "Queue.nope")
        self.assertEqual((r["error"]["kind"], r["error"]["type"]), ("attribute", "AttributeError"))
        r = agent.roundtrip("4", "agent_fixtures", "not_callable")
        self.assertEqual((r["error"]["kind"], r["error"]["type"]), ("attribute", "TypeError"))
        self.assertIn("not callable", r["error"]["message"])
        r = agent.roundtrip("5", "agent_fixtures", "fail_chained")
        err = r["error"]
        self.assertEqual((err["kind"], err["type"], err["message"]), ("exception", "ValueError", "could not find the key"))
        self.assertIn("KeyError: 'missing'", err["traceback"])
        self.assertIn("direct cause", err["traceback"])
        self.assertIn("agent_fixtures.py", err["traceback"])
        self.assertNotIn("runner.py", err["traceback"])
        r = agent.roundtrip("6", "agent_fixtures", "unserializable")
        err = r["error"]
        self.assertEqual((err["kind"], err["path"]), ("serialization", "result.ok[2].owner"))
        self.assertIn("object", err["message"])
        r = agent.roundtrip("7", "agent_fixtures", "fail_exit")
        self.assertEqual((r["error"]["kind"], r["error"]["type"]), ("exception", "SystemExit"))
        # the agent survived all of that
        self.assertEqual(agent.roundtrip("8", "agent_fixtures", "add", 2, 3)["value"], 5)

    def test_user_modules_come_from_the_working_folder_not_the_endpoint(self):
        agent = self.agent()
        self.assertEqual(agent.roundtrip("p", "agent_fixtures", "sys_path0")["value"], support.FIXTURES)
        # `codec` is a module of the agent package; from the endpoint folder it must not be importable
        r = agent.roundtrip("q", "codec", "packb")
        self.assertEqual(r["error"]["kind"], "import")

    # -- capture ------------------------------------------------------------------

    def test_fd_level_and_subprocess_output_is_captured(self):
        agent = self.agent()
        r = agent.roundtrip("1", "agent_fixtures", "write_fd", 1, "raw one\n")
        self.assertEqual(r["stdout"], "raw one\n")
        r = agent.roundtrip("2", "agent_fixtures", "write_fd", 2, "raw two\n")
        self.assertEqual(r["stderr"], "raw two\n")
        r = agent.roundtrip("3", "agent_fixtures", "subprocess_print", "from child")
        self.assertEqual(r["stdout"], "from child\n")
        self.assertEqual(r["stderr"], "err:from child")
        r = agent.roundtrip("4", "sys", "stdout.buffer.write", b"via buffer\n")
        self.assertEqual((r["value"], r["stdout"]), (11, "via buffer\n"))
        r = agent.roundtrip("5", "sys", "__stdout__.write", "python-level fd 1\n")
        self.assertEqual(r["stdout"], "python-level fd 1\n")
        # C stdio, no newline, no fflush: still this call's output, and only this call's
        r = agent.roundtrip("5c", "agent_fixtures", "c_printf", "from C")
        self.assertEqual(r["stdout"], "from C")
        self.assertEqual(agent.roundtrip("5d", "math", "sqrt", 4)["stdout"], "")
        # and the frame stream is intact
        self.assertEqual(agent.roundtrip("6", "math", "sqrt", 9)["value"], 3.0)

    def test_fd_level_output_is_never_lost_to_the_capture_thread(self):
        # The capture thread and the end of a call both collect fd output; whichever reads
        # the bytes, they belong to the call (a race here once lost a child's stderr).
        # Writes bigger than the pipe keep the capture thread reading while the call ends.
        agent = self.agent()
        for i in range(80):
            fd = 1 + i % 2
            text = ("%d" % (i % 10)) * 300000
            r = agent.roundtrip("w%d" % i, "agent_fixtures", "write_fd", fd, text)
            self.assertEqual(len(r["stdout" if fd == 1 else "stderr"]), len(text), "call %d lost output" % i)

    def test_output_limit_cuts_and_flags_truncation(self):
        agent = self.agent()
        r = agent.roundtrip("1", "agent_fixtures", "print_many", 100, 9, outputLimit=55)
        self.assertEqual(r["stdout"], "xxxxxxxxx\n" * 5 + "xxxxx")
        self.assertIs(r["truncated"], True)
        r = agent.roundtrip("2", "agent_fixtures", "print_many", 5, 9, outputLimit=50)
        self.assertNotIn("truncated", r)

    def test_start_up_imports_neither_signal_nor_its_enums(self):
        # Every session start pays for what the agent imports before its hello (issue 16,
        # "first result after connect"): `signal` builds enums on import (~4 ms here). The
        # agent uses the C module `_signal` at start-up and imports `signal` when it needs it.
        bare = subprocess.run(
            [support.PYTHON, "-E", "-c", "import sys; print('enum' in sys.modules or 'signal' in sys.modules)"],
            stdout=subprocess.PIPE,
            check=True,
        )
        if bare.stdout.strip() != b"False":
            self.skipTest("this Python imports enum or signal at start-up by itself")
        agent = self.agent()
        for name in ("signal", "enum"):
            r = agent.roundtrip(name, "sys", "modules.__contains__", name)
            self.assertIs(r["value"], False, "%s was imported before the first call" % name)
        # C stdio's stdout was made unbuffered after the hello, before the first call ran.
        r = agent.roundtrip("c", "sys", "modules.__contains__", "ctypes")
        self.assertIs(r["value"], True)

    def test_stream_sends_output_frames_while_running(self):
        agent = self.agent()
        agent.call("s", "agent_fixtures", "stream", 3, stream=True)
        frames = []
        while True:
            msg = agent.recv()
            frames.append(msg)
            if msg["kind"] == "result":
                break
        outputs = [m for m in frames if m["kind"] == "output"]
        self.assertEqual("".join(m["data"] for m in outputs), "line 0\nline 1\nline 2\n")
        self.assertTrue(all(m["id"] == "s" and m["stream"] == "stdout" for m in outputs))
        self.assertEqual(frames[-1]["stdout"], "line 0\nline 1\nline 2\n")

    def streamed(self, agent, call_id):
        """The output frames of `call_id` up to its result, and the result."""
        frames = []
        while True:
            msg = agent.recv()
            if msg["kind"] == "result":
                self.assertEqual(msg["id"], call_id)
                return frames, msg
            self.assertEqual((msg["kind"], msg["id"]), ("output", call_id))
            frames.append(msg)

    def test_stream_sends_many_small_prints_in_few_frames(self):
        # A frame per piece (print writes the text and the newline apart) cost ~17 µs each:
        # 100,000 prints took 3.3 s streamed against 0.2 s captured.
        agent = self.agent()
        agent.call("s", "agent_fixtures", "print_many", 20000, stream=True)
        frames, result = self.streamed(agent, "s")
        self.assertEqual("".join(m["data"] for m in frames), "x\n" * 20000)
        self.assertEqual(result["stdout"], "x\n" * 20000)
        self.assertLess(len(frames), 400, "40,000 pieces in %d frames" % len(frames))

    def test_stream_sends_output_of_a_call_that_is_still_running(self):
        agent = self.agent()
        release = os.path.join(self.tmp, "release")
        agent.call("s", "agent_fixtures", "print_then_wait", "before", release, stream=True)
        data = ""
        while data != "before\n":  # the call waits for `release`: these frames left while it ran
            msg = agent.recv()
            self.assertEqual((msg["kind"], msg["id"], msg["stream"]), ("output", "s", "stdout"), msg)
            data += msg["data"]
        open(release, "w").close()
        frames, result = self.streamed(agent, "s")
        self.assertEqual((frames, result["value"], result["stdout"]), ([], True, "before\n"))

    def test_stream_escapes_a_lone_surrogate_as_the_result_does(self):
        agent = self.agent()
        agent.call("s", "agent_fixtures", "print_lone_surrogate", stream=True)
        frames, result = self.streamed(agent, "s")
        self.assertEqual((result["ok"], result["stdout"]), (True, "a\\ud800b\n"))
        self.assertEqual("".join(m["data"] for m in frames), "a\\ud800b\n")

    def test_stream_keeps_the_order_of_stdout_and_stderr(self):
        agent = self.agent()
        agent.call("s", "agent_fixtures", "alternate_streams", 50, stream=True)
        frames, result = self.streamed(agent, "s")
        runs = []  # (stream, text) with consecutive frames of one stream joined
        for m in frames:
            if runs and runs[-1][0] == m["stream"]:
                runs[-1] = (m["stream"], runs[-1][1] + m["data"])
            else:
                runs.append((m["stream"], m["data"]))
        pieces = [(stream, line) for stream, text in runs for line in text.splitlines()]
        expected = []
        for i in range(50):
            expected += [("stdout", "o%d" % i), ("stderr", "e%d" % i)]
        self.assertEqual(pieces, expected)
        self.assertEqual(result["stderr"], "".join("e%d\n" % i for i in range(50)))

    # -- processes a call forks -----------------------------------------------------

    def assert_session_goes_on(self, agent, forked_id):
        """The next call is answered, and nothing else came for `forked_id` (a forked child
        that wrote frames would have answered it twice)."""
        self.assertEqual(agent.roundtrip("next", "math", "sqrt", 9)["value"], 3.0)
        self.assertNotIn(forked_id, agent.pending)
        self.assertEqual([m for m in agent.others if m.get("id") == forked_id], [])

    @unittest.skipUnless(hasattr(os, "fork"), "os.fork")
    def test_what_a_forked_child_prints_is_in_the_calls_output(self):
        agent = self.agent()
        r = agent.roundtrip("f", "agent_fixtures", "fork_and_print", "hi")
        self.assertTrue(r["ok"], r)
        # The child's line reaches the capture pipe; the parent's the call's own buffer.
        self.assertEqual(sorted(r["stdout"].splitlines()), ["child: hi", "parent: hi"])
        self.assert_session_goes_on(agent, "f")

    @unittest.skipUnless(hasattr(os, "fork"), "os.fork")
    def test_a_multiprocessing_pools_workers_print_into_the_calls_output(self):
        agent = self.agent()
        r = agent.roundtrip("p", "agent_fixtures", "pool_prints", 4)
        self.assertEqual(r["value"], [0, 1, 4, 9], r)
        lines = r["stdout"].splitlines()
        self.assertEqual(sorted(lines), sorted(["worker says %d" % i for i in range(4)] + ["pool done"]))
        self.assert_session_goes_on(agent, "p")

    def test_multiprocessing_pools_with_spawn_and_forkserver_work(self):
        # Their workers import the main module of the process (the agent's __main__.py, as
        # __mp_main__): it must not start an agent there.
        agent = self.agent()
        methods = [m for m in ("spawn", "forkserver") if m in multiprocessing.get_all_start_methods()]
        for method in methods:
            with self.subTest(method=method):
                r = agent.roundtrip(method, "agent_fixtures", "pool_prints_with", method, 3)
                self.assertEqual((r["ok"], r.get("value")), (True, [0, 1, 4]), r)
                self.assertEqual(sorted(r["stdout"].splitlines()), ["worker says %d" % i for i in range(3)])
                self.assert_session_goes_on(agent, method)
        self.assertNotIn("no mode given", agent.stderr)

    @unittest.skipUnless(hasattr(os, "fork"), "os.fork")
    def test_a_forked_child_that_returns_into_the_agent_ends_there(self):
        agent = self.agent()
        r = agent.roundtrip("f", "agent_fixtures", "fork_and_return", "back")
        # The parent's answer only: the child ended (status 0) instead of answering too.
        self.assertEqual((r["ok"], r["value"]), (True, 0), r)
        self.assertIn("child: back", r["stdout"])
        self.assert_session_goes_on(agent, "f")
        r = agent.roundtrip("g", "agent_fixtures", "fork_and_return", "exit", 7)
        self.assertEqual(r["value"], 7)  # sys.exit(7) in the child: its exit status
        self.assert_session_goes_on(agent, "g")

    # -- concurrency and per-call state -------------------------------------------

    def test_four_workers_run_calls_concurrently_and_match_by_id(self):
        agent = self.agent(workers=4)
        for i in range(4):
            agent.call("t%d" % i, "agent_fixtures", "tick", 0.4, "t%d" % i)
        results = [agent.result("t%d" % i) for i in range(4)]
        self.assertEqual([r["value"]["tag"] for r in results], ["t0", "t1", "t2", "t3"])
        latest_start = max(r["value"]["start"] for r in results)
        earliest_end = min(r["value"]["end"] for r in results)
        self.assertLess(latest_start, earliest_end, "the four calls did not overlap")
        self.assertEqual(len({r["value"]["thread"] for r in results}), 4)

    @unittest.skipUnless(os.path.isdir("/proc/self/task"), "counts context switches in /proc (Linux)")
    def test_with_several_workers_quick_pipelined_calls_stay_on_the_reading_thread(self):
        # Handing reading over to another thread for every call that has more input behind it
        # cost ~3x the CPU per call (agent, client and sshd; docs/performance.md): while calls
        # end quickly, the reader runs them itself and reads on, and no other thread wakes.
        agent = self.agent(workers=4)
        pid = agent.roundtrip("warm", "os", "getpid")["value"]  # also a quick call
        n = 300
        calls = [
            {"v": PROTOCOL_VERSION, "kind": "call", "id": "q%d" % i, "module": "threading", "function": "get_ident"}
            for i in range(n)
        ]
        before = voluntary_switches(pid)
        started = time.monotonic()
        agent.send_raw(b"".join(support.frame(c) for c in calls))
        threads = [agent.result("q%d" % i)["value"] for i in range(n)]
        elapsed = time.monotonic() - started
        woken = voluntary_switches(pid) - before
        switches = sum(1 for a, b in zip(threads, threads[1:]) if a != b)
        # Handed over, each call woke threads (700-800 wake-ups for 300 calls, measured).
        # Otherwise threads wake for the reads and for the standby, which checks every
        # _TAKEOVER_SECONDS while calls keep coming (16-63 in all, measured); a thread that
        # stalls past _INLINE_SECONDS (a loaded machine) hands over once. The allowance
        # grows with the time the calls took, so that a slow machine does not fail this.
        standby_checks = int(elapsed / session_module._TAKEOVER_SECONDS)
        allowed = n // 2 + standby_checks
        self.assertLess(woken, allowed, "%d thread wake-ups for %d pipelined calls in %.3f s" % (woken, n, elapsed))
        self.assertLess(switches, n // 3, "%d of %d pipelined calls changed threads" % (switches, n))

    def test_after_quick_calls_long_calls_sent_together_still_overlap(self):
        agent = self.agent(workers=4)
        for i in range(20):
            agent.roundtrip("warm%d" % i, "math", "sqrt", 4)
        sent = b""
        for i in range(4):
            tag = "t%d" % i
            call = {"v": PROTOCOL_VERSION, "kind": "call", "id": tag, "module": "agent_fixtures", "function": "tick"}
            sent += support.frame(dict(call, args=[0.4, tag]))
        agent.send_raw(sent)  # in one write: the reader has the next calls when each starts
        results = [agent.result("t%d" % i)["value"] for i in range(4)]
        self.assertLess(max(r["start"] for r in results), min(r["end"] for r in results), "the four calls did not overlap")
        self.assertEqual(len({r["thread"] for r in results}), 4)

    def test_one_worker_runs_calls_one_after_another_in_order(self):
        agent = self.agent()
        for i in range(3):
            agent.call("t%d" % i, "agent_fixtures", "tick", 0.05, "t%d" % i)
        results = [agent.result("t%d" % i) for i in range(3)]
        for a, b in zip(results, results[1:]):
            self.assertLessEqual(a["value"]["end"], b["value"]["start"])

    def overlapping_calls(self, function, count):
        """Results of `count` calls of agent_fixtures.`function`("call<i>") on as many workers."""
        agent = self.agent(workers=count)
        for i in range(count):
            agent.call("c%d" % i, "agent_fixtures", function, "call%d" % i)
        return [agent.result("c%d" % i) for i in range(count)]

    def test_concurrent_prints_are_captured_per_call(self):
        for i, r in enumerate(self.overlapping_calls("shout", 8)):
            self.assertEqual(r["stdout"], "CALL%d\n" % i)
            self.assertEqual(r["stderr"], "warning: call%d\n" % i)

    def test_writes_to_the_original_streams_are_captured_per_call(self):
        # sys.__stdout__ is the router too: overlapping calls each keep their own output,
        # also after code restores sys.stdout from sys.__stdout__.
        for i, r in enumerate(self.overlapping_calls("print_to_original_streams", 3)):
            self.assertEqual((r["stdout"], r["stderr"]), ("call%d\nCALL%d\n" % (i, i), "err:call%d" % i))

    def test_env_env_default_path_append_and_cwd_apply_to_one_call_and_are_restored(self):
        agent = self.agent(workers=4)
        os.makedirs(os.path.join(self.tmp, "work"))
        fields = {
            "env": {"SREMOTE_T_A": "a"},
            "envDefault": {"SREMOTE_T_B": "b", "HOME": "/not/used"},
            "pathAppend": ["/opt/one", "/opt/two"],
            "cwd": os.path.join(self.tmp, "work"),
        }
        r = agent.roundtrip("1", "agent_fixtures", "envs", "SREMOTE_T_A", "SREMOTE_T_B", "HOME", "PATH", **fields)
        value = r["value"]
        self.assertEqual(value["SREMOTE_T_A"], "a")
        self.assertEqual(value["SREMOTE_T_B"], "b")
        self.assertEqual(value["HOME"], self.tmp)  # envDefault does not override
        self.assertTrue(value["PATH"].endswith(":/opt/one:/opt/two"), value["PATH"])
        r = agent.roundtrip("2", "agent_fixtures", "cwd", cwd=os.path.join(self.tmp, "work"))
        self.assertEqual(r["value"], os.path.realpath(os.path.join(self.tmp, "work")))
        # restored afterwards
        r = agent.roundtrip("3", "agent_fixtures", "envs", "SREMOTE_T_A", "SREMOTE_T_B", "PATH")
        self.assertEqual(r["value"]["SREMOTE_T_A"], None)
        self.assertEqual(r["value"]["SREMOTE_T_B"], None)
        self.assertNotIn("/opt/one", r["value"]["PATH"])
        self.assertEqual(agent.roundtrip("4", "agent_fixtures", "cwd")["value"], support.FIXTURES)
        # a bad cwd is an error of that call only
        r = agent.roundtrip("5", "agent_fixtures", "cwd", cwd=os.path.join(self.tmp, "missing"))
        self.assertEqual((r["error"]["kind"], r["error"]["type"]), ("exception", "FileNotFoundError"))
        self.assertEqual(agent.roundtrip("6", "agent_fixtures", "cwd")["value"], support.FIXTURES)

    def test_path_append_also_extends_old_virtual_path(self):
        env = self.agent_env(_OLD_VIRTUAL_PATH="/usr/bin")
        agent = self.agent(env=env)
        r = agent.roundtrip("1", "agent_fixtures", "envs", "_OLD_VIRTUAL_PATH", pathAppend=["/opt/x"])
        self.assertEqual(r["value"]["_OLD_VIRTUAL_PATH"], "/usr/bin:/opt/x")

    def test_a_call_with_env_runs_alone(self):
        agent = self.agent(workers=4)
        agent.call("a", "agent_fixtures", "tick", 0.3, "a")
        agent.call("e", "agent_fixtures", "tick", 0.3, "e", env={"X": "1"})
        agent.call("b", "agent_fixtures", "tick", 0.3, "b")
        a, e, b = agent.result("a")["value"], agent.result("e")["value"], agent.result("b")["value"]
        self.assertLessEqual(a["end"], e["start"])
        self.assertLessEqual(e["end"], b["start"])

    # -- cancel, ping, shutdown ---------------------------------------------------

    def test_cancel_a_queued_call_answers_cancelled_and_it_never_runs(self):
        agent = self.agent()
        agent.call("long", "agent_fixtures", "tick", 0.5)
        agent.call("queued", "agent_fixtures", "set_env", "SREMOTE_T_RAN", "yes")
        agent.send({"v": PROTOCOL_VERSION, "kind": "cancel", "id": "queued"})
        r = agent.result("queued")
        self.assertEqual((r["ok"], r["error"]["kind"]), (False, "cancelled"))
        self.assertTrue(agent.result("long")["ok"])
        self.assertIsNone(agent.roundtrip("check", "agent_fixtures", "env", "SREMOTE_T_RAN")["value"])

    def test_cancel_a_running_call_interrupts_it(self):
        agent = self.agent()
        agent.call("run", "agent_fixtures", "busy", 30)
        time.sleep(0.3)
        agent.send({"v": PROTOCOL_VERSION, "kind": "cancel", "id": "run"})
        r = agent.result("run", timeout=20)
        self.assertEqual((r["ok"], r["error"]["kind"], r["error"]["type"]), (False, "exception", "Cancelled"))
        # a cancel after the result, and one for an unknown id, are ignored
        agent.send({"v": PROTOCOL_VERSION, "kind": "cancel", "id": "run"})
        agent.send({"v": PROTOCOL_VERSION, "kind": "cancel", "id": "nobody"})
        self.assertEqual(agent.roundtrip("after", "math", "sqrt", 4)["value"], 2.0)
        agent.send({"v": PROTOCOL_VERSION, "kind": "ping", "id": "p"})
        self.assertEqual(agent.recv(), {"v": PROTOCOL_VERSION, "kind": "pong", "id": "p"})

    def test_with_one_worker_a_ping_and_a_cancel_sent_right_after_a_call_get_through(self):
        # With one worker the reader does not look for input behind a call it runs itself:
        # frames still in the pipe are read by the standby thread once the call has run
        # for _TAKEOVER_SECONDS.
        agent = self.agent(workers=1)
        agent.call("run", "agent_fixtures", "busy", 30)
        agent.send({"v": PROTOCOL_VERSION, "kind": "ping", "id": "p"})
        agent.send({"v": PROTOCOL_VERSION, "kind": "cancel", "id": "run"})
        self.assertEqual(agent.recv(timeout=5), {"v": PROTOCOL_VERSION, "kind": "pong", "id": "p"})
        r = agent.result("run", timeout=5)
        self.assertEqual((r["ok"], r["error"]["type"]), (False, "Cancelled"))
        self.assertEqual(agent.roundtrip("after", "math", "sqrt", 4)["value"], 2.0)

    def test_pipelined_calls_are_each_answered_once_with_results_written_together(self):
        agent = self.agent(workers=1)
        calls = [
            {"v": PROTOCOL_VERSION, "kind": "call", "id": "p%d" % i, "module": "agent_fixtures", "function": "echo", "args": [i]}
            for i in range(300)
        ]
        agent.send_raw(b"".join(support.frame(c) for c in calls))  # one write: all buffered at once
        for i in range(300):
            self.assertEqual(agent.result("p%d" % i)["value"], i)
        agent.send({"v": PROTOCOL_VERSION, "kind": "ping", "id": "after"})
        self.assertEqual(agent.recv(), {"v": PROTOCOL_VERSION, "kind": "pong", "id": "after"})
        self.assertEqual(agent.pending, {})

    def test_a_result_held_for_a_joint_write_does_not_wait_for_a_long_next_call(self):
        # "quick" is answered while "slow" (buffered behind it) runs: its result, held to
        # leave with the next one, is written when the standby takes reading over. "slow"
        # ends only once the test has received that result, so a result held until the next
        # call ends would never come (recv fails after its timeout).
        for workers in (1, 2):
            with self.subTest(workers=workers):
                agent = self.agent(workers=workers)
                release = os.path.join(self.tmp, "release-%d" % workers)
                quick = {"v": PROTOCOL_VERSION, "kind": "call", "id": "quick", "module": "math", "function": "sqrt", "args": [4]}
                slow = {
                    "v": PROTOCOL_VERSION, "kind": "call", "id": "slow",
                    "module": "agent_fixtures", "function": "wait_for_file", "args": [release, 600],
                }
                agent.send_raw(support.frame(quick) + support.frame(slow))
                first = agent.recv()
                self.assertEqual((first["id"], first["value"]), ("quick", 2.0))
                release_call(release)
                self.assertIs(agent.result("slow")["value"], True)

    def test_every_call_is_answered_exactly_once_under_cancels(self):
        agent = self.agent(workers=4)
        ids = ["c%d" % i for i in range(200)]
        for i, call_id in enumerate(ids):
            agent.call(call_id, "agent_fixtures", "tick", 0.002 * (i % 5), call_id)
            if i % 3 == 0:
                agent.send({"v": PROTOCOL_VERSION, "kind": "cancel", "id": ids[i // 2]})
        agent.send({"v": PROTOCOL_VERSION, "kind": "ping", "id": "end"})
        answered = {}
        pong = False
        while len(answered) < len(ids) or not pong:
            msg = agent.recv()
            if msg["kind"] == "pong":
                pong = True
                continue
            self.assertNotIn(msg["id"], answered, "answered twice")
            answered[msg["id"]] = msg
        self.assertEqual(set(answered), set(ids))
        kinds = {m["error"]["kind"] if not m["ok"] else "ok" for m in answered.values()}
        self.assertLessEqual(kinds, {"ok", "cancelled", "exception"})
        for m in answered.values():
            if m["ok"]:
                self.assertEqual(m["value"]["tag"], m["id"])
            elif m["error"]["kind"] == "exception":
                self.assertEqual(m["error"]["type"], "Cancelled")
        agent.send({"v": PROTOCOL_VERSION, "kind": "ping", "id": "after"})
        self.assertEqual(agent.recv()["id"], "after")  # nothing else was pending

    def test_ping_is_answered_while_a_call_runs(self):
        agent = self.agent()
        release = os.path.join(self.tmp, "release")
        agent.call("slow", "agent_fixtures", "wait_for_file", release, 600)
        agent.send({"v": PROTOCOL_VERSION, "kind": "ping", "id": "p1"})
        # The call ends only after the test has the pong: the pong did not wait for it.
        self.assertEqual(agent.recv(), {"v": PROTOCOL_VERSION, "kind": "pong", "id": "p1"})
        release_call(release)
        self.assertIs(agent.result("slow")["value"], True)

    def test_a_long_call_after_an_idle_spell_still_lets_pings_through(self):
        # The reader runs a lone call itself; once the session has been idle (no standby
        # thread polling), a long call must still lose the reader role to an idle thread.
        agent = self.agent()
        self.assertEqual(agent.roundtrip("warm", "math", "sqrt", 4)["value"], 2.0)
        time.sleep(session_module._ACTIVE_SECONDS + 0.3)  # set-up: the session goes idle
        release, started = os.path.join(self.tmp, "release"), os.path.join(self.tmp, "started")
        agent.call("slow", "agent_fixtures", "wait_for_file", release, 600, started)
        wait_for_path(started)  # the ping arrives while the call runs, not with it
        agent.send({"v": PROTOCOL_VERSION, "kind": "ping", "id": "p"})
        # The call ends only after the test has the pong: the pong did not wait for it.
        self.assertEqual(agent.recv(), {"v": PROTOCOL_VERSION, "kind": "pong", "id": "p"})
        release_call(release)
        self.assertIs(agent.result("slow")["value"], True)

    def test_a_call_arriving_while_a_lone_call_runs_starts_at_once_on_another_worker(self):
        agent = self.agent(workers=2)
        agent.call("long", "agent_fixtures", "tick", 1.0, "long")
        time.sleep(0.05)
        agent.call("short", "agent_fixtures", "tick", 0.0, "short")
        first = agent.recv()
        self.assertEqual(first["id"], "short")
        self.assertNotEqual(first["value"]["thread"], agent.result("long")["value"]["thread"])

    def test_shutdown_finishes_running_and_queued_calls_then_exits_0(self):
        agent = self.agent()
        agent.call("1", "agent_fixtures", "tick", 0.2, "1")
        agent.call("2", "agent_fixtures", "tick", 0.1, "2")
        agent.send({"v": PROTOCOL_VERSION, "kind": "shutdown"})
        self.assertEqual(agent.result("1")["value"]["tag"], "1")
        self.assertEqual(agent.result("2")["value"]["tag"], "2")
        self.assertEqual(agent.wait(), 0)

    def test_end_of_input_is_a_shutdown(self):
        agent = self.agent()
        agent.call("1", "agent_fixtures", "tick", 0.2, "1")
        agent.close_stdin()
        self.assertTrue(agent.result("1")["ok"])
        self.assertEqual(agent.wait(), 0)

    def test_threads_left_running_by_a_call_do_not_keep_the_agent_alive(self):
        agent = self.agent()
        self.assertIs(agent.roundtrip("t", "agent_fixtures", "start_thread", 600)["value"], True)
        agent.close_stdin()
        self.assertEqual(agent.wait(), 0)

    # -- invalid input ----------------------------------------------------------------

    def test_an_invalid_message_is_answered_and_the_session_goes_on(self):
        agent = self.agent()
        agent.send({"v": PROTOCOL_VERSION, "kind": "call", "id": "bad", "function": "f"})
        r = agent.result("bad")
        self.assertEqual((r["ok"], r["error"]["kind"]), (False, "protocol"))
        self.assertIn("module", r["error"]["message"])
        agent.send({"v": PROTOCOL_VERSION, "kind": "frobnicate", "id": "x"})
        self.assertEqual(agent.result("x")["error"]["kind"], "protocol")
        agent.send({"v": 2, "kind": "ping", "id": "y"})
        self.assertEqual(agent.result("y")["error"]["kind"], "protocol")
        agent.send([1, 2])
        self.assertEqual(agent.result("")["error"]["kind"], "protocol")
        self.assertEqual(agent.roundtrip("ok", "math", "sqrt", 4)["value"], 2.0)

    def test_a_duplicate_id_in_flight_is_refused(self):
        agent = self.agent()
        agent.call("same", "agent_fixtures", "tick", 0.3, "first")
        agent.call("same", "agent_fixtures", "tick", 0.0, "second")
        first = agent.result("same")
        self.assertEqual(first["error"]["kind"], "protocol")
        self.assertIn("already", first["error"]["message"])
        self.assertEqual(agent.result("same")["value"]["tag"], "first")

    def assertFatalProtocolError(self, agent, contains):
        r = agent.result("")
        self.assertEqual((r["ok"], r["error"]["kind"]), (False, "protocol"))
        self.assertIn(contains, r["error"]["message"])
        self.assertEqual(agent.wait(), 3)
        self.assertIn("sremote-agent: protocol error", agent.stderr)

    def test_garbage_frame_is_a_protocol_error_and_the_agent_exits_3(self):
        agent = self.agent()
        agent.send_raw(struct.pack(">I", 3) + b"\xc1\xc1\xc1")
        self.assertFatalProtocolError(agent, "undecodable")

    def test_truncated_frame_is_a_protocol_error(self):
        agent = self.agent()
        body = codec.packb(support.call_message("x", "math", "sqrt", 4), "message")
        agent.send_raw(struct.pack(">I", len(body)) + body[:-2])
        agent.close_stdin()
        self.assertFatalProtocolError(agent, "inside a frame")

    def test_truncated_header_is_a_protocol_error(self):
        agent = self.agent()
        agent.send_raw(b"\x00\x00")
        agent.close_stdin()
        self.assertFatalProtocolError(agent, "header")

    def test_frames_at_the_limit_pass_and_over_it_are_refused(self):
        limit = 1 << 16
        agent = self.agent(max_frame=limit)
        msg = support.call_message("big", "agent_fixtures", "length", b"")
        overhead = len(codec.packb(msg, "message")) + 1  # bin8 (2-byte header) -> bin16 (3 bytes)
        msg["args"] = [b"y" * (limit - overhead)]
        body = codec.packb(msg, "message")
        self.assertEqual(len(body), limit)
        agent.send_raw(struct.pack(">I", len(body)) + body)
        self.assertEqual(agent.result("big")["value"], limit - overhead)
        # a result over the limit becomes an error for that call
        r = agent.roundtrip("huge", "agent_fixtures", "big_bytes", limit)
        self.assertEqual((r["ok"], r["error"]["kind"]), (False, "serialization"))
        self.assertIn("frame limit", r["error"]["message"])
        # one byte more than the limit ends the session
        msg["args"] = [b"y" * (limit - overhead + 1)]
        body = codec.packb(msg, "message")
        agent.send_raw(struct.pack(">I", len(body)) + body)
        self.assertFatalProtocolError(agent, "exceeds the limit")

    def test_big_payloads_round_trip(self):
        agent = self.agent()
        data = os.urandom(8 << 20)
        r = agent.roundtrip("b", "agent_fixtures", "echo", data)
        self.assertEqual(r["value"], data)

    def test_bad_options_are_usage_errors(self):
        for args in (["--workers", "0"], ["--workers", "x"], ["--max-frame", "1"], ["--bogus"]):
            with self.subTest(args=args):
                agent = support.SessionAgent(self, extra_args=args)
                self.assertEqual(agent.wait(), 2)
                self.assertIn("usage", agent.stderr)


class HeldResultsTest(unittest.TestCase):
    """How results of pipelined calls are grouped into writes, seen in-process: a pipe
    between two processes may join writes, so the test records each write itself."""

    def run_session(self, frames, workers=1):
        # No standby takes reading over during the test: on a busy machine a call can take
        # longer than _TAKEOVER_SECONDS, and the other thread would then run the buffered
        # calls from the queue, each result written on its own (what is tested elsewhere).
        patch = mock.patch.object(session_module, "_TAKEOVER_SECONDS", 3600.0)
        patch.start()
        self.addCleanup(patch.stop)

        class RecordingSession(session_module.Session):
            def _write(self, data):  # called for every write of the session, in order
                writes.append(bytes(data))

        writes = []
        r, w = os.pipe()
        log_r, log_w = os.pipe()
        try:
            os.write(w, b"".join(frames))  # all buffered before the agent reads
            os.close(w)
            w = None
            router = capture.OutputRouter(log_w)
            code = RecordingSession(router, r, log_w, workers, 1 << 20).run()
        finally:
            for fd in (r, w, log_r, log_w):
                if fd is not None:
                    os.close(fd)
        self.assertEqual(code, 0)
        return [self.split(data) for data in writes]

    @staticmethod
    def split(data):
        messages = []
        while data:
            (size,) = struct.unpack(">I", data[:4])
            messages.append(codec.unpackb(data[4 : 4 + size]))
            data = data[4 + size :]
        return messages

    def test_pipelined_results_leave_in_writes_of_at_most_hold_frames(self):
        # 40 calls arrive at once: their results leave 16, 16, then 8 at the end of input.
        # One write of all 40 would keep the first result until the last call has run, and
        # the client idle meanwhile.
        calls = [
            support.frame({"v": PROTOCOL_VERSION, "kind": "call", "id": "c%d" % i, "module": "math", "function": "sqrt", "args": [i * i]})
            for i in range(40)
        ]
        writes = self.run_session(calls)
        self.assertEqual([m["kind"] for m in writes[0]], ["hello"])
        self.assertEqual([len(w) for w in writes[1:]], [16, 16, 8])
        results = [m for w in writes[1:] for m in w]
        self.assertEqual([m["id"] for m in results], ["c%d" % i for i in range(40)])
        self.assertEqual([m["value"] for m in results], [float(i) for i in range(40)])

    def calls(self, count):
        return [
            support.frame({"v": PROTOCOL_VERSION, "kind": "call", "id": "c%d" % i, "module": "math", "function": "sqrt", "args": [i * i]})
            for i in range(count)
        ]

    def test_sixteen_calls_in_one_read_leave_in_two_writes(self):
        # ~16 calls in flight: one write of all 16 results kept the client and the agent in
        # lock-step (each idle while the other worked); two groups of 8 let them overlap.
        writes = self.run_session(self.calls(16))
        self.assertEqual([len(w) for w in writes[1:]], [8, 8])
        self.assertEqual([m["id"] for w in writes[1:] for m in w], ["c%d" % i for i in range(16)])

    def test_a_few_calls_in_one_read_leave_in_one_write(self):
        # A second write would cost more than the overlap it buys.
        writes = self.run_session(self.calls(6))
        self.assertEqual([len(w) for w in writes[1:]], [6])


class ReadinessCheckTest(unittest.TestCase):
    """fdio.readiness_check: whether input waits, checked around every call."""

    def test_a_pipe_is_ready_with_bytes_waiting_or_when_its_writer_closed(self):
        r, w = os.pipe()
        try:
            ready = fdio.readiness_check([r])
            self.assertFalse(ready())
            os.write(w, b"x")
            self.assertTrue(ready())
            os.read(r, 1)
            self.assertFalse(ready())
            os.close(w)
            w = None
            self.assertTrue(ready())  # end of input: the reader must see it
        finally:
            os.close(r)
            if w is not None:
                os.close(w)

    def test_a_regular_file_falls_back_to_select(self):
        # epoll refuses regular files; select calls them always readable.
        with tempfile.TemporaryFile() as f:
            self.assertTrue(fdio.readiness_check([f.fileno()])())


if __name__ == "__main__":
    unittest.main()
