"""Installed versions of required modules (`requires` -> `modules`, docs/protocol.md
section 2): the distribution of that name (PEP 503 normalised), else the distribution that
provides that import name, else the module's `__version__` after importing it; "" when
importable without any version; None when not importable and no distribution matches."""

import importlib
import re
import sys

_NORMALIZE_RE = re.compile(r"[-_.]+")


def normalize(name):
    """PEP 503 normalised distribution name."""
    return _NORMALIZE_RE.sub("-", name).lower()


def _metadata():
    import importlib.metadata as metadata

    return metadata


def _dist_name(dist):
    try:
        return dist.metadata["Name"] or ""
    except Exception:
        return ""


def _distribution_version(metadata, name):
    wanted = normalize(name)
    for candidate in (name, wanted, wanted.replace("-", "_")):
        try:
            version = metadata.version(candidate)
        except Exception:
            continue
        if version is not None:
            return str(version)
    if sys.version_info >= (3, 10):
        return None  # importlib.metadata itself matches PEP 503 normalised names
    # Older importlib.metadata matches folder names loosely: compare normalised names.
    for dist in metadata.distributions():
        if normalize(_dist_name(dist)) == wanted:
            version = dist.version
            if version is not None:
                return str(version)
    return None


def _top_level_names(dist):
    text = None
    try:
        text = dist.read_text("top_level.txt")
    except Exception:
        text = None
    if text:
        return [line.strip() for line in text.split() if line.strip()]
    names = []
    for path in dist.files or ():
        parts = getattr(path, "parts", ())
        if not parts:
            continue
        first = parts[0]
        if len(parts) == 1:
            if first.endswith(".py"):
                names.append(first[:-3])
            continue
        if not first.endswith((".dist-info", ".egg-info", ".data")) and first != "..":
            names.append(first)
    return names


def _packages_distributions(metadata):
    """import name -> [distribution names] (importlib.metadata.packages_distributions, 3.10+, or ours)."""
    builtin = getattr(metadata, "packages_distributions", None)
    if builtin is not None:
        try:
            return builtin()
        except Exception:
            pass
    mapping = {}
    for dist in metadata.distributions():
        name = _dist_name(dist)
        for top in _top_level_names(dist):
            mapping.setdefault(top, []).append(name)
    return mapping


def module_versions(names):
    """{name: version str, "" or None} for each required name."""
    if not names:
        return {}
    metadata = _metadata()
    out = {}
    providers = None
    for name in names:
        if name in out:
            continue
        version = None
        try:
            version = _distribution_version(metadata, name)
        except Exception:
            version = None
        if version is None:
            if providers is None:
                try:
                    providers = _packages_distributions(metadata)
                except Exception:
                    providers = {}
            top = name.split(".", 1)[0]
            for dist_name in providers.get(top, ()):
                try:
                    version = _distribution_version(metadata, dist_name)
                except Exception:
                    version = None
                if version is not None:
                    break
        if version is None:
            version = _imported_version(name)
        out[name] = version
    return out


def _imported_version(name):
    module = sys.modules.get(name)
    if module is None:
        try:
            importlib.invalidate_caches()
            module = importlib.import_module(name)
        except BaseException:  # a module that raises anything while importing is not importable
            return None
    version = getattr(module, "__version__", None)
    if version is None:
        return ""
    return str(version)
