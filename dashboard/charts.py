"""Plotly figure builders. They take engine DataFrames and return figures; no state, no I/O."""
from __future__ import annotations

import pandas as pd
import plotly.express as px
import plotly.graph_objects as go


def weekly_cases(counts: pd.DataFrame, statuses: list[str]) -> go.Figure:
    """Stacked bars: cases per week per service line (from engine.feeds.weekly_case_counts)."""
    d = counts[counts["status"].isin(statuses)].groupby(["week", "service_line"], as_index=False)["cases"].sum()
    fig = px.bar(d, x="week", y="cases", color="service_line", labels={"week": "week starting", "service_line": "service line"})
    fig.update_layout(barmode="stack", height=380, margin=dict(l=10, r=10, t=30, b=10), legend_title_text="")
    return fig


def duration_distribution(durations: pd.DataFrame) -> go.Figure:
    """Box plots of room minutes per service line, ordered by median."""
    order = durations.groupby("service_line")["room_minutes"].median().sort_values().index.tolist()
    fig = px.box(
        durations,
        x="service_line",
        y="room_minutes",
        color="service_line",
        category_orders={"service_line": order},
        points=False,
        labels={"room_minutes": "room time (min, wheels in to wheels out)", "service_line": ""},
    )
    fig.update_layout(showlegend=False, height=420, margin=dict(l=10, r=10, t=30, b=10))
    return fig
