"""`yiwang bench <area> --json`: benchmarks against real components, each with a ceiling from the same run."""
