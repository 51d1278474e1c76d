"""A plugin whose module raises at import, as one with a missing native library does."""

raise ImportError("libtoy.so.1: cannot open shared object file")
