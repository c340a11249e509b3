"""Command line of the agent, as interpreter.sh runs it:

    __main__.py --file <request> <response>
    __main__.py --serve [--workers N] [--max-frame BYTES] [--grace-ms MS]
    __main__.py --info [--workers N] [--max-frame BYTES]

`--grace-ms` (default: $SREMOTE_END_GRACE_MS, else 2000): how long running calls may go on
once the client is gone (session.py).

Exit statuses: 0 done; 1 the agent failed (e.g. could not write the response, or the
client went away and calls had to be ended); 2 bad usage; 3 protocol error (undecodable
request or frame); 5 (file carrier) the response could not be written to the temp folder
(full, read-only or not writable: stderr says which).
"""

import os

import sys

from .info import DEFAULT_MAX_FRAME, agent_info

USAGE = (
    "usage: sh interpreter.sh <request> <response> [<sremote_dir> [<tmp> [<pwd>]]]\n"
    "       sh interpreter.sh --serve <sremote_dir> <tmp> <pwd> [--workers N] [--max-frame BYTES] [--grace-ms MS]\n"
    "       sh interpreter.sh --info [<sremote_dir>]\n"
)


class UsageError(Exception):
    pass


def _int_option(name, text, minimum):
    try:
        value = int(text)
    except (TypeError, ValueError):
        raise UsageError("%s needs an integer, got %r" % (name, text))
    if value < minimum:
        raise UsageError("%s must be at least %d, got %d" % (name, minimum, value))
    return value


DEFAULT_GRACE_MS = 2000


def _options(args):
    workers, max_frame = 1, DEFAULT_MAX_FRAME
    grace_ms = os.environ.get("SREMOTE_END_GRACE_MS") or None
    if grace_ms is not None:
        grace_ms = _int_option("SREMOTE_END_GRACE_MS", grace_ms, 0)
    i = 0
    while i < len(args):
        arg = args[i]
        if arg in ("--workers", "--max-frame", "--grace-ms"):
            if i + 1 >= len(args):
                raise UsageError("%s needs a value" % arg)
            if arg == "--workers":
                workers = _int_option(arg, args[i + 1], 1)
            elif arg == "--max-frame":
                max_frame = _int_option(arg, args[i + 1], 64)
            else:
                grace_ms = _int_option(arg, args[i + 1], 0)
            i += 2
        else:
            raise UsageError("unknown argument %r" % arg)
    return workers, max_frame, DEFAULT_GRACE_MS if grace_ms is None else grace_ms


def main(argv):
    try:
        if not argv:
            raise UsageError("no mode given")
        mode = argv[0]
        if mode == "--file":
            if len(argv) != 3:
                raise UsageError("--file needs <request> <response>")
            request, response = argv[1], argv[2]
        elif mode in ("--serve", "--info"):
            workers, max_frame, grace_ms = _options(argv[1:])
        else:
            raise UsageError("unknown mode %r" % mode)
    except UsageError as exc:
        sys.stderr.write("sremote-agent: %s\n%s" % (exc, USAGE))
        return 2
    sys.argv = [sys.argv[0]]
    if sys.getrecursionlimit() < 3000:
        # The codecs recurse once per nesting level (up to 512) below the caller's frames.
        sys.setrecursionlimit(3000)
    if mode == "--info":
        import json

        sys.stdout.write(json.dumps(agent_info(workers, max_frame)) + "\n")
        sys.stdout.flush()
        return 0
    if mode == "--file":
        from .file_carrier import serve_file

        return serve_file(request, response)
    from .session import serve_session

    return serve_session(workers, max_frame, grace_ms / 1000.0)
