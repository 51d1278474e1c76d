"""What every panel of ours shares: a legend and tooltip on time series, last-value stats."""

from __future__ import annotations

from grafana_foundation_sdk.builders import common, stat, timeseries
from grafana_foundation_sdk.models.common import (
    BigValueGraphMode,
    LegendDisplayMode,
    LegendPlacement,
    SortOrder,
    TooltipDisplayMode,
)


def series_panel(title: str, unit: str, height: int = 8, span: int = 12) -> timeseries.Panel:
    """A time series with a listed legend and a tooltip of every line, highest first."""
    legend = common.VizLegendOptions().display_mode(LegendDisplayMode.LIST).placement(LegendPlacement.BOTTOM)
    tooltip = common.VizTooltipOptions().mode(TooltipDisplayMode.MULTI).sort(SortOrder.DESCENDING)
    return (
        timeseries.Panel()
        .title(title)
        .unit(unit)
        .height(height)
        .span(span)
        .legend(legend.show_legend(True))
        .tooltip(tooltip)
    )


def stat_panel(title: str, unit: str, height: int = 4, span: int = 6) -> stat.Panel:
    """One number: the last value, with its recent course behind it."""
    reduce = common.ReduceDataOptions().calcs(["lastNotNull"]).values(False)
    return (
        stat.Panel()
        .title(title)
        .unit(unit)
        .height(height)
        .span(span)
        .reduce_options(reduce)
        .graph_mode(BigValueGraphMode.AREA)
    )
