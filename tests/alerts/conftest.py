"""Fixtures of the alerts tests: the relational store comes from ``tests/conftest.py`` (``db``)."""
