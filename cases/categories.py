"""Case categories as data (``config/categories.yaml``): names and the time limits of every SLA stage."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from contract.catalog import load_model
from contract.ids import FieldName

CategoryCode = FieldName  # e.g. flooding, fire_lane_blocked


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Category(_Model):
    code: CategoryCode
    name_zh: str
    name_en: str
    sla_hours: float = Field(gt=0, description="Opened → completed.")
    accept_minutes: float = Field(default=30, gt=0, description="NEW → accepted (受理).")
    sign_minutes: float = Field(default=60, gt=0, description="ASSIGNED → signed for (签收).")
    urgent_factor: float = Field(
        default=0.5, gt=0, le=1, description="An urgent case gets this share of every time limit."
    )
    clock: Literal["continuous", "working"] = Field(
        default="working", description="Urgent categories count every hour; others only working time."
    )


class CategoryFile(_Model):
    categories: list[Category]


def load_categories(config_dir: Path) -> dict[str, Category]:
    return {c.code: c for c in load_model(CategoryFile, config_dir / "categories.yaml").categories}
