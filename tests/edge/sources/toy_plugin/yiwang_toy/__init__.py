"""A toy protocol plugin for Yiwang: ``READ <unit>`` over TCP, answered ``field=value;field=value``."""
