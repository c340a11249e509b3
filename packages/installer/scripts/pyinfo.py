# Facts about one Python, printed as `info {json}`. Valid Python 2 too, so that an old
# interpreter is reported as too old rather than as broken.

import sys, json, platform
def has(m):
    try:
        import importlib.util
        return importlib.util.find_spec(m) is not None
    except Exception:
        return False
def version(d):
    try:
        from importlib.metadata import version
        return version(d)
    except Exception:
        return None
print("info " + json.dumps({
    "executable": sys.executable,
    "version": "%d.%d.%d" % tuple(sys.version_info[:3]),
    "implementation": platform.python_implementation(),
    "venv": has("venv"),
    "ensurepip": has("ensurepip"),
    "pip": has("pip"),
    "setuptools": version("setuptools") if has("setuptools") else None,
    "wheel": has("wheel"),
    "inVenv": getattr(sys, "base_prefix", sys.prefix) != sys.prefix,
}))
