"""`yiwang bench <area> --json`: benchmarks against real components, each with a ceiling from the same run."""


class BenchError(RuntimeError):
    """The benchmark cannot give the figure asked for; the message says why."""
