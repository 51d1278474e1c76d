"""The two datasources every dashboard reads, by the uids the provisioning gives them, and the InfluxQL
query the Grafana Foundation SDK has no builder for.

The uids and names here and in ``deploy/grafana/provisioning/datasources/yiwang.yaml`` must agree: the
dashboards' test reads that file and refuses a panel whose datasource it does not provision.
"""

from __future__ import annotations

from typing import Any

from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.cog import variants as cogvariants
from grafana_foundation_sdk.models.dashboard import DataSourceRef

INFLUXDB_UID = "yiwang-influxdb"
PROMETHEUS_UID = "yiwang-prometheus"


def influxdb() -> DataSourceRef:
    """InfluxDB through its v1-compatible InfluxQL API: the one every supported InfluxDB serves."""
    return DataSourceRef(type_val="influxdb", uid=INFLUXDB_UID)


def prometheus() -> DataSourceRef:
    return DataSourceRef(type_val="prometheus", uid=PROMETHEUS_UID)


class InfluxQLQuery(cogvariants.Dataquery):
    """A raw InfluxQL target, serialised as Grafana's InfluxDB datasource stores one."""

    def __init__(self, query: str, alias: str = "", ref_id: str = "A") -> None:
        self.query = query
        self.alias = alias
        self.ref_id = ref_id

    def to_json(self) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "datasource": {"type": "influxdb", "uid": INFLUXDB_UID},
            "query": self.query,
            "rawQuery": True,
            "refId": self.ref_id,
            "resultFormat": "time_series",
        }
        if self.alias:
            payload["alias"] = self.alias
        return payload


class InfluxQL(cogbuilder.Builder[InfluxQLQuery]):
    """Builds an :class:`InfluxQLQuery` (the SDK's panels take builders of data queries)."""

    def __init__(self, query: str, alias: str = "", ref_id: str = "A") -> None:
        self._internal = InfluxQLQuery(query, alias, ref_id)

    def build(self) -> InfluxQLQuery:
        return self._internal
