"""The agent upgrades itself: a signed release verified, installed beside the running version,
switched, and confirmed healthy or rolled back (docs/upgrades.md)."""
