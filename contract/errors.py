"""The one exception the contract raises."""

from __future__ import annotations


class ContractError(ValueError):
    """A topic, payload or profile that does not follow the wire contract.

    ``reason`` is a short, human-readable explanation that names the offending field; it is what
    the dead-letter store keeps.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason

    def __str__(self) -> str:
        return self.reason
