"""Test suite. A package so that ``from tests.platform import ...`` works under plain ``pytest``."""
