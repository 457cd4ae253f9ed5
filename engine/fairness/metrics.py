"""Fairness of a schedule across groups (service line, surgeon, site), with fairlearn's MetricFrame.

Definitions (per group g, over the booked cases of the schedule's horizon):

- demand_share: g's share of the P50 minutes requested (scheduled and deferred cases);
- prime_time_share: g's share of the scheduled minutes that fall inside prime time
  (overlap of [start, end_p50) with settings.prime_time);
- late_slot_share: share of g's scheduled cases whose P50 end falls after prime time; undefined
  (NaN in the table, None in the JSON report) when g has no scheduled case;
- overtime_burden_minutes: g's minutes past the room's close at P80 (sum over its cases of
  the part of [start, end_p80) after close);
- deferral_rate: deferred cases / booked cases of g;
- prime_time_gap: demand_share - prime_time_share (positive = g gets less prime time than
  it asks for); ``max_prime_time_gap`` is the largest over groups, in fraction points.

MetricFrame computes the per-group sums and rates; shares divide group sums by the overall sum.
Each group carries ``n_cases`` (booked) and ``n_scheduled``. Disparities are max - min and
min / max over the groups with at least ``min_group_cases`` booked cases (smaller groups stay in
the table but one case there would swing a rate by 100%); a disparity is None when fewer than two
such groups have the metric defined.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from fairlearn.metrics import MetricFrame

from engine.hospital import Hospital
from engine.timeutil import hhmm_to_minutes

GROUPS = ("service_line", "surgeon_id", "site")


def case_table(h: Hospital, schedule: pd.DataFrame, forecasts: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per booked case of the schedule with the minutes the metrics add up."""
    s = schedule.copy()
    s["date"] = pd.to_datetime(s["date"])
    for col in ("start", "end_p50", "end_p80"):
        s[col] = pd.to_datetime(s[col])
    cases = h.cases.set_index("case_id")
    s["site"] = s["room_id"].map(h.rooms.set_index("room_id")["site"])
    booked_room_site = cases["room_id"].map(h.rooms.set_index("room_id")["site"])
    s["site"] = s["site"].fillna(s["case_id"].map(cases["site"] if "site" in cases.columns else booked_room_site))
    s["site"] = s["site"].fillna(s["case_id"].map(booked_room_site)).fillna("unknown")
    sched = s["status"] == "scheduled"
    p50 = (s["end_p50"] - s["start"]).dt.total_seconds() / 60
    if forecasts is not None and len(forecasts):
        demand = s["case_id"].map(forecasts.set_index("case_id")["p50"])
    else:
        demand = s["case_id"].map(pd.to_numeric(cases["booked_minutes"], errors="coerce"))
    s["demand_minutes"] = np.where(sched, p50, demand).astype(float)
    s["demand_minutes"] = s["demand_minutes"].fillna(s["demand_minutes"].median() if s["demand_minutes"].notna().any() else 0.0)
    ps, pe = h.settings.prime_window
    day = s["date"]
    p_start, p_end = day + pd.to_timedelta(ps, unit="min"), day + pd.to_timedelta(pe, unit="min")
    overlap = (np.minimum(s["end_p50"], p_end) - np.maximum(s["start"], p_start)).dt.total_seconds() / 60
    s["prime_minutes"] = np.where(sched, overlap.clip(lower=0).fillna(0), 0.0)
    s["late"] = np.where(sched, (s["end_p50"] > p_end).astype(float), np.nan)
    close = s["room_id"].map(h.rooms.set_index("room_id")["close_time"])
    close_t = day + pd.to_timedelta(close.fillna("23:59").map(hhmm_to_minutes), unit="min")
    over = (s["end_p80"] - np.maximum(s["start"], close_t)).dt.total_seconds() / 60
    s["overtime_minutes"] = np.where(sched, over.clip(lower=0).fillna(0), 0.0)
    s["deferred"] = (~sched).astype(float)
    return s


def _sum(y_true, y_pred):  # noqa: ARG001 - MetricFrame's signature
    return float(np.nansum(y_pred))


def _mean(y_true, y_pred):  # noqa: ARG001
    v = np.asarray(y_pred, dtype=float)
    v = v[np.isfinite(v)]
    return float(v.mean()) if len(v) else float("nan")


def _spread(values: pd.Series) -> tuple[float | None, float | None]:
    """(max - min, min / max) over the defined values; None when fewer than two are defined."""
    v = values.dropna().astype(float)
    if len(v) < 2:
        return None, None
    hi, lo = float(v.max()), float(v.min())
    return hi - lo, (lo / hi if hi > 0 else None)


def schedule_fairness(h: Hospital, schedule: pd.DataFrame, by: str = "service_line",
                      forecasts: pd.DataFrame | None = None,
                      min_group_cases: int = 1, cases: pd.DataFrame | None = None) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Per-group metrics and disparities for one grouping (service_line, surgeon_id or site).
    ``cases``: this schedule's :func:`case_table`, when the caller has already built it.

    Disparities and the worst group consider only groups with ``min_group_cases`` booked cases or more."""
    if by not in GROUPS:
        raise ValueError(f"by must be one of {', '.join(GROUPS)}, got {by!r}")
    if int(min_group_cases) < 1:
        raise ValueError(f"min_group_cases must be >= 1, got {min_group_cases!r}")
    empty_summary: dict[str, Any] = {
        "max_prime_time_gap": 0.0, "worst_group": None, "late_slot_share_difference": None,
        "deferral_rate_difference": None, "deferral_rate_ratio": None, "overtime_burden_difference": None,
        "min_group_cases": int(min_group_cases), "small_groups": [],
    }
    t = case_table(h, schedule, forecasts) if cases is None else cases
    if not len(t):
        return pd.DataFrame(columns=[by]), empty_summary
    sf = t[by].astype(str)
    frames = {}
    for name, col, fn in (("demand_minutes", "demand_minutes", _sum), ("prime_minutes", "prime_minutes", _sum),
                          ("overtime_burden_minutes", "overtime_minutes", _sum), ("late_slot_share", "late", _mean),
                          ("deferral_rate", "deferred", _mean)):
        frames[name] = MetricFrame(metrics=fn, y_true=np.zeros(len(t)), y_pred=t[col].to_numpy(dtype=float),
                                   sensitive_features=sf)
    table = pd.DataFrame({name: mf.by_group for name, mf in frames.items()}).astype(float)
    table.index.name = by
    total_demand = table["demand_minutes"].sum()
    total_prime = table["prime_minutes"].sum()
    table["demand_share"] = table["demand_minutes"] / total_demand if total_demand else 0.0
    table["prime_time_share"] = table["prime_minutes"] / total_prime if total_prime else 0.0
    table["prime_time_gap"] = table["demand_share"] - table["prime_time_share"]
    table["n_cases"] = sf.value_counts().reindex(table.index).fillna(0).astype(int)
    table["n_scheduled"] = sf[t["status"] == "scheduled"].value_counts().reindex(table.index).fillna(0).astype(int)
    # No scheduled case: the late-slot share has no denominator (NaN, never 0 nor an error).
    table.loc[table["n_scheduled"] == 0, "late_slot_share"] = np.nan
    table = table.reset_index()
    big = table[table["n_cases"] >= int(min_group_cases)]
    summary = dict(empty_summary)
    summary["small_groups"] = [str(g) for g in table.loc[table["n_cases"] < int(min_group_cases), by]]
    if len(big):
        summary["max_prime_time_gap"] = float(big["prime_time_gap"].max())
        summary["worst_group"] = str(big.loc[big["prime_time_gap"].idxmax(), by])
    summary["late_slot_share_difference"], _ = _spread(big["late_slot_share"])
    summary["deferral_rate_difference"], summary["deferral_rate_ratio"] = _spread(big["deferral_rate"])
    summary["overtime_burden_difference"], _ = _spread(big["overtime_burden_minutes"])
    return table, summary


def fairness_report(h: Hospital, schedule: pd.DataFrame, forecasts: pd.DataFrame | None = None) -> dict[str, Any]:
    """The contract's JSON: by_service_line and max_prime_time_gap (plus extras).

    ``max_prime_time_gap`` is taken over the lines with at least the fairness policy's
    ``min_group_cases`` booked cases (settings ``[fairness]``, default 5); smaller lines stay in
    ``by_service_line`` with their ``n_cases``. ``policy`` is the schedule against the policy."""
    from engine.fairness.policy import check_policy

    table, summary = schedule_fairness(h, schedule, "service_line", forecasts,
                                       min_group_cases=h.settings.fairness.min_group_cases)
    keys = ["demand_share", "prime_time_share", "late_slot_share", "overtime_burden_minutes", "deferral_rate"]
    by_sl = {
        r["service_line"]: {k: (None if pd.isna(r[k]) else float(r[k])) for k in keys + ["prime_time_gap"]}
        | {"n_cases": int(r["n_cases"]), "n_scheduled": int(r["n_scheduled"])}
        for r in table.to_dict("records")
    }
    return {"by_service_line": by_sl, "max_prime_time_gap": summary["max_prime_time_gap"], "disparities": summary,
            "policy": check_policy(h, schedule, forecasts=forecasts).to_dict()}
