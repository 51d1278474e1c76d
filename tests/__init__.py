"""Test suite. A package so that ``from tests.servers import ...`` works under plain ``pytest``."""
