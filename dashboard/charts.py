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


def calibration(points: pd.DataFrame) -> go.Figure:
    """Nominal against observed coverage (points: nominal, observed, group)."""
    fig = px.line(points, x="nominal", y="observed", color="group", markers=True,
                  labels={"nominal": "stated coverage (quantile level)", "observed": "observed share of cases at or below"})
    fig.add_trace(go.Scatter(x=[0.4, 1.0], y=[0.4, 1.0], mode="lines", name="perfect calibration",
                             line=dict(dash="dash", color="grey")))
    fig.update_layout(height=380, margin=dict(l=10, r=10, t=30, b=10), xaxis_range=[0.4, 1.0], yaxis_range=[0.4, 1.0])
    return fig


def error_by_group(table: pd.DataFrame, group: str) -> go.Figure:
    """MAE of the model's P50 against the baselines, per group (e.g. service line)."""
    long = table.melt(id_vars=[group], value_vars=["mae_p50", "mae_baseline_history", "mae_baseline_booked"],
                      var_name="forecast", value_name="MAE (min)").dropna()
    names = {"mae_p50": "model P50", "mae_baseline_history": "surgeon x procedure median", "mae_baseline_booked": "booked minutes"}
    long["forecast"] = long["forecast"].map(names)
    fig = px.bar(long, x=group, y="MAE (min)", color="forecast", barmode="group")
    fig.update_layout(height=380, margin=dict(l=10, r=10, t=30, b=10), legend_title_text="", xaxis_title="")
    return fig


def under_prediction(table: pd.DataFrame, group: str, nominal: float = 0.2) -> go.Figure:
    """Share of cases running past their P80, per group, against the nominal 20%."""
    fig = px.bar(table, x=group, y="under_prediction_rate", labels={"under_prediction_rate": "share of cases longer than P80"})
    fig.add_hline(y=nominal, line_dash="dash", annotation_text=f"nominal {nominal:.0%}")
    fig.update_layout(height=320, margin=dict(l=10, r=10, t=30, b=10), xaxis_title="", yaxis_tickformat=".0%")
    return fig


def psi_bars(drift: pd.DataFrame, warn: float, stop: float) -> go.Figure:
    colors = {"ok": "#2e7d32", "warn": "#f9a825", "stop": "#c62828", "n/a": "#9e9e9e"}
    fig = px.bar(drift, x="quantity", y="psi", color="state", color_discrete_map=colors, labels={"psi": "PSI"})
    fig.add_hline(y=warn, line_dash="dot", annotation_text="warn")
    fig.add_hline(y=stop, line_dash="dash", annotation_text="stop")
    fig.update_layout(height=320, margin=dict(l=10, r=10, t=30, b=10), xaxis_title="")
    return fig
