"""`yiwang chaos run`: whole-system fault injection against the real stack on this machine."""
