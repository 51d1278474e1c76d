"""Logging setup, called only from each service's entry point."""

from __future__ import annotations

import logging
import os


def setup_logging(service: str, level: str | None = None) -> None:
    logging.basicConfig(
        level=(level or os.environ.get("YIWANG_LOG_LEVEL", "INFO")).upper(),
        format=f"%(asctime)s {service:<7} %(levelname)-5s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    # paho and httpx are chatty at INFO about every connection.
    logging.getLogger("httpx").setLevel(logging.WARNING)
