# SRemote agent entry point, run by interpreter.sh as a script:
#     python -E <sremote_dir>/sremote_agent/__main__.py --file|--serve|--info ...
# Kept parseable by old Pythons so that they fail with a clear message (exit 4).
import os
import sys

if sys.version_info < (3, 8):
    sys.stderr.write(
        "sremote-agent: Python %s is too old (%s): the agent needs Python 3.8 or newer\n"
        % (sys.version.split()[0], sys.executable)
    )
    sys.stderr.flush()
    os._exit(4)


def _untune_environment():
    """interpreter.sh set GLIBC_TUNABLES for this process's own allocations (huge pages for
    big values); this process read it at start, and what the called code starts must get
    the caller's environment as it was."""
    env = os.environ
    if env.pop("SREMOTE_GLIBC_TUNED", None) is None:
        return
    caller = env.pop("SREMOTE_CALLER_GLIBC_TUNABLES", None)
    if caller is None:
        env.pop("GLIBC_TUNABLES", None)
    else:
        env["GLIBC_TUNABLES"] = caller


def _run():
    _untune_environment()
    if __package__:
        # python -m sremote_agent: the endpoint folder is already importable.
        from sremote_agent.main import main
    else:
        # Run as a script: sys.path[0] is this package's folder. Import the package from
        # its parent, then give sys.path[0] to the working folder, as `python script.py`
        # there would, so that the endpoint never shadows the user's modules.
        sys.path[0] = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        from sremote_agent.main import main
    sys.path[0] = os.environ.get("SREMOTE_PWD") or os.getcwd()
    status = main(sys.argv[1:])
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except Exception:
        pass
    # os._exit: threads the called functions left running must not keep the agent alive.
    os._exit(status)


# Only when run: multiprocessing's "spawn" and "forkserver" start methods import the main
# module of the process that uses them (here, a call of this agent) as `__mp_main__` in
# every new worker, which must not start an agent (it failed, and the pool started workers
# over and over: the call never ended).
if __name__ == "__main__":
    _run()
