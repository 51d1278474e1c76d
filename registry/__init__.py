"""The registry: the district's places, gateways and devices as data, changed while the platform runs."""
