"""Yiwang (一网): the CLI and the small shared plumbing every part may import."""

__version__ = "0.1.0"
