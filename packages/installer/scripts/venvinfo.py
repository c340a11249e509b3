# Facts about the endpoint's venv (or any Python): `venv {json}` with its distributions.

import sys, json
from importlib import metadata
dists = {}
for d in metadata.distributions():
    try:
        name = d.metadata["Name"]
    except Exception:
        name = None
    if name:
        dists[name] = d.version
def has(m):
    import importlib.util
    return importlib.util.find_spec(m) is not None
print("venv " + json.dumps({
    "executable": sys.executable,
    "version": "%d.%d.%d" % tuple(sys.version_info[:3]),
    "pip": dists.get("pip"),
    "setuptools": dists.get("setuptools") if has("setuptools") else None,
    "wheel": has("wheel"),
    "distributions": dists,
}))
