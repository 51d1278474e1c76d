"""Case categories: names and the time limits of every SLA stage.

``config/categories.yaml`` is the baseline; categories created or changed through the API are stored
beside it (:mod:`cases.category_store`) and :class:`cases.policy.CasePolicy` merges the two.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from contract.catalog import load_model
from contract.ids import FieldName

CategoryCode = FieldName  # e.g. flooding, fire_lane_blocked
# Every urgency a case can have (``Case.urgency``); each category has a completion limit for each.
URGENCIES: tuple[str, ...] = ("normal", "urgent")


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
    urgent_sla_hours: float | None = Field(
        default=None,
        gt=0,
        description="Opened → completed for an urgent case; default sla_hours × urgent_factor.",
    )

    def sla(self, urgency: str) -> timedelta:
        """Opened → completed for a case of this urgency (anything but urgent counts as normal)."""
        if urgency != "urgent":
            return timedelta(hours=self.sla_hours)
        return timedelta(hours=self.urgent_sla_hours or self.sla_hours * self.urgent_factor)

    def sla_hours_by_urgency(self) -> dict[str, float]:
        return {u: self.sla(u).total_seconds() / 3600 for u in URGENCIES}


class CategoryFile(_Model):
    categories: list[Category]


def load_categories(config_dir: Path) -> dict[str, Category]:
    return {c.code: c for c in load_model(CategoryFile, config_dir / "categories.yaml").categories}
