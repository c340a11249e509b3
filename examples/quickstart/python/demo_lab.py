"""Functions the quickstart calls remotely. Any module on the agent's sys.path works the same way."""
import statistics


def describe(values, *, label="data"):
    """Summary statistics; prints a line so the demo can show captured stdout."""
    print(f"describing {len(values)} values of {label!r}")
    return {
        "label": label,
        "n": len(values),
        "mean": statistics.fmean(values),
        "stdev": statistics.stdev(values) if len(values) > 1 else 0.0,
    }


def load_config(path):
    """Fails with a chained exception, to show remote tracebacks."""
    try:
        with open(path) as f:
            return f.read()
    except OSError as err:
        raise RuntimeError(f"cannot load the configuration {path!r}") from err
