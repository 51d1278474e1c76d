"""Plugins the agent must refuse at load: another API version, and a factory that builds no Source."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from edge.gateway_config import BusConfig
from edge.sources.base import SOURCE_API_VERSION, BoundDevice, ContractSample
from yiwang_toy.source import sample


class FutureSource:
    """Written for a Source API this agent does not speak."""

    api_version: ClassVar[int] = SOURCE_API_VERSION + 1

    def __init__(self, bus: BusConfig, devices: Sequence[BoundDevice]) -> None:
        self.name = bus.id

    @staticmethod
    def contract_sample() -> ContractSample:
        return sample("toy_future")


class NotASource:
    """Builds an object that lists devices but cannot be read: it fails the load contract."""

    api_version: ClassVar[int] = SOURCE_API_VERSION

    def __init__(self, bus: BusConfig, devices: Sequence[BoundDevice]) -> None:
        self.name = bus.id

    def devices(self) -> list[object]:
        return []

    @staticmethod
    def contract_sample() -> ContractSample:
        return sample("toy_misfit")
