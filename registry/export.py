"""`yiwang registry export`: the stored registry written back in the format of ``config/communities/``.

Grids, gateways and devices come out sorted by id (the database keeps no order), positions of a
polygon one per line as ``[lon, lat]``.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from contract.catalog import Community
from registry.rows import Rows
from registry.snapshot import communities_of

HEADER = "# Exported from the Yiwang registry; `yiwang registry import` reads it back unchanged.\n"


def community_yaml(community: Community) -> str:
    body = community.model_dump(mode="json", exclude_defaults=True)
    return HEADER + yaml.safe_dump(
        body, sort_keys=False, allow_unicode=True, width=110, default_flow_style=None
    )


def export(rows: Rows, out_dir: Path) -> list[Path]:
    """One ``<community>.yaml`` per community; returns the files written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for community in communities_of(rows):
        path = out_dir / f"{community.id}.yaml"
        path.write_text(community_yaml(community), encoding="utf-8")
        written.append(path)
    return written
