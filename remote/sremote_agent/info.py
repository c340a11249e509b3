"""What the agent says about itself: `hello.agent`, `result.agent` and `--info`
(docs/protocol.md section 2)."""

import os
import sys

from . import PROTOCOL_VERSION, __version__, codec

DEFAULT_MAX_FRAME = 256 * 1024 * 1024
"""The session's frame size limit unless `--max-frame` says otherwise (`maxFrameBytes`).
Here rather than in frames.py, which the file carrier does not load."""


def _numpy_version():
    """numpy's version without importing it (importing numpy takes ~100 ms); None if absent."""
    module = sys.modules.get("numpy")
    if module is not None:
        return str(getattr(module, "__version__", ""))
    try:
        from importlib.machinery import PathFinder

        spec = PathFinder.find_spec("numpy")
    except Exception:
        spec = None
    if spec is None or not spec.submodule_search_locations:
        return None
    package_dir = list(spec.submodule_search_locations)[0]
    parent = os.path.dirname(package_dir)
    try:
        entries = os.listdir(parent)
    except OSError:
        entries = []
    for entry in entries:
        if entry.startswith("numpy-") and entry.endswith((".dist-info", ".egg-info")):
            return entry[len("numpy-") :].rsplit(".", 1)[0].split("-")[0]
    try:
        import re

        with open(os.path.join(package_dir, "version.py")) as f:
            m = re.search(r"^version\s*(?::\s*str\s*)?=\s*['\"]([^'\"]+)['\"]", f.read(), re.M)
        if m:
            return m.group(1)
    except OSError:
        pass
    try:
        import numpy

        return str(numpy.__version__)
    except Exception:
        return None


def agent_info(workers=1, max_frame=DEFAULT_MAX_FRAME, with_numpy=True):
    """The `hello.agent` object (also `result.agent` and `--info`). Without `numpy` when
    `with_numpy` is false: finding numpy's version searches sys.path and lists
    site-packages, which the file carrier only does for a probe (its calls' results carry
    the other facts, which cost nothing)."""
    info = {
        "version": __version__,
        "protocol": PROTOCOL_VERSION,
        "python": "%d.%d.%d" % sys.version_info[:3],
        "implementation": sys.implementation.name,
        "executable": sys.executable or "",
        "codec": codec.CODEC,
    }
    if with_numpy:
        info["numpy"] = _numpy_version()
    info["pid"] = os.getpid()
    info["host"] = os.uname().nodename
    info["workers"] = workers
    info["maxFrameBytes"] = max_frame
    return info
