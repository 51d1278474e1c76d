"""Yiwang (一网), the roof: the `yiwang` CLI, the `up` supervisor, migrations, benchmarks and chaos runs.

Nothing below the roof imports it; the parts read the version with ``importlib.metadata``.
"""

__version__ = "0.1.0"
