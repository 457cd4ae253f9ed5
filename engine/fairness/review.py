"""Fairness over history, trends, patient-group audit, flags and the board's review pack."""
from __future__ import annotations

import html
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from fairlearn.metrics import MetricFrame

from engine.fairness.guardrails import load_guardrails
from engine.fairness.metrics import schedule_fairness
from engine.hospital import Hospital
from engine.timeutil import room_minutes


@dataclass(frozen=True)
class FairnessParams:
    """Flag thresholds: a group is flagged when it falls short of its demand share of prime time by
    more than ``max_prime_gap_points`` (fraction points), or when its late-slot share or deferral rate
    exceeds the best group's by more than the given difference. Groups with fewer than
    ``min_group_cases`` booked cases are never flagged nor used as the "best group" (one deferred
    case out of one is a 100% deferral rate, not a finding); their counts are still shown."""

    max_prime_gap_points: float = 0.05
    max_late_share_difference: float = 0.25
    max_deferral_rate_difference: float = 0.15
    trend_weeks: int = 4
    min_group_cases: int = 5

    def __post_init__(self) -> None:
        for name in ("max_prime_gap_points", "max_late_share_difference", "max_deferral_rate_difference"):
            v = getattr(self, name)
            if not 0 <= v <= 1:
                raise ValueError(f"{name} must be within 0..1, got {v!r}")
        if self.trend_weeks < 1:
            raise ValueError(f"trend_weeks must be >= 1, got {self.trend_weeks!r}")
        if isinstance(self.min_group_cases, bool) or not isinstance(self.min_group_cases, int) or self.min_group_cases < 1:
            raise ValueError(f"min_group_cases must be an integer >= 1, got {self.min_group_cases!r}")


def possessive(name: str) -> str:
    """English possessive of a group name: "Urology's", "Orthopedics'"."""
    name = str(name)
    return f"{name}'" if name.endswith(("s", "S")) else f"{name}'s"


def history_as_schedule(h: Hospital, start: pd.Timestamp, end: pd.Timestamp) -> pd.DataFrame:
    """Past cases in [start, end) shaped like a schedule: actual times, cancellations as deferrals."""
    c = h.cases[(h.cases["surgery_date"] >= start) & (h.cases["surgery_date"] < end)
                & h.cases["status"].isin(["completed", "cancelled"])]
    done = c["status"] == "completed"
    return pd.DataFrame({
        "case_id": c["case_id"], "surgeon_id": c["surgeon_id"], "service_line": c["service_line"],
        "date": c["surgery_date"], "room_id": c["room_id"].where(done),
        "status": np.where(done, "scheduled", "deferred"),
        "start": c["wheels_in"].where(done), "end_p50": c["wheels_out"].where(done), "end_p80": c["wheels_out"].where(done),
        "pacu_in": c["wheels_out"].where(done), "pacu_out": c["wheels_out"].where(done),
        "reason": np.where(done, "history", c["cancellation_reason"].fillna("cancelled")),
    })


def history_demand(h: Hospital, sched: pd.DataFrame) -> pd.DataFrame:
    """Demand of past cases: actual minutes when done, booked minutes when cancelled."""
    c = h.cases.set_index("case_id")
    actual = room_minutes(c, h.settings.timezone)
    demand = actual.fillna(pd.to_numeric(c["booked_minutes"], errors="coerce"))
    return pd.DataFrame({"case_id": sched["case_id"], "p50": sched["case_id"].map(demand).to_numpy()})


def trends(h: Hospital, weeks: int = 4, periods: int = 13, by: str = "service_line") -> pd.DataFrame:
    """Per period of ``weeks`` weeks up to the as-of date: each group's prime-time gap, late-slot
    share and cancellation (deferral) rate in history."""
    end = h.as_of().normalize()
    rows = []
    for k in range(periods, 0, -1):
        a = end - pd.Timedelta(weeks=weeks * k)
        b = a + pd.Timedelta(weeks=weeks)
        sched = history_as_schedule(h, a, b)
        if not len(sched):
            continue
        table, _ = schedule_fairness(h, sched, by, history_demand(h, sched))
        table["period_start"] = a
        rows.append(table)
    if not rows:
        return pd.DataFrame()
    return pd.concat(rows, ignore_index=True)


def flags(table: pd.DataFrame, by: str, params: FairnessParams) -> pd.DataFrame:
    """Groups beyond the thresholds, each with the metric, its value, the group's case count and a
    plain sentence. Groups smaller than ``params.min_group_cases`` are neither flagged nor compared against."""
    cols = [by, "metric", "value", "threshold", "n_cases", "message"]
    if not len(table):
        return pd.DataFrame(columns=cols)
    n = table["n_cases"] if "n_cases" in table else pd.Series(params.min_group_cases, index=table.index)
    big = table[n >= params.min_group_cases]
    if not len(big):
        return pd.DataFrame(columns=cols)
    out = []
    best_late = big["late_slot_share"].min(skipna=True)
    best_def = big["deferral_rate"].min(skipna=True)
    for r in big.to_dict("records"):
        g, nc = r[by], int(r.get("n_cases", 0))
        cases = f"{nc} case{'s' if nc != 1 else ''}"
        if r["prime_time_gap"] > params.max_prime_gap_points:
            out.append({by: g, "metric": "prime_time_gap", "value": r["prime_time_gap"], "threshold": params.max_prime_gap_points,
                        "n_cases": nc,
                        "message": f"{g} asks for {r['demand_share']:.1%} of the OR minutes but gets {r['prime_time_share']:.1%} "
                                   f"of prime time ({r['prime_time_gap'] * 100:.1f} points short; {cases})"})
        if pd.notna(r["late_slot_share"]) and pd.notna(best_late) and r["late_slot_share"] - best_late > params.max_late_share_difference:
            out.append({by: g, "metric": "late_slot_share", "value": r["late_slot_share"], "threshold": params.max_late_share_difference,
                        "n_cases": nc,
                        "message": f"{r['late_slot_share']:.0%} of {possessive(g)} scheduled cases end after prime time "
                                   f"(best group {best_late:.0%}; {cases})"})
        if pd.notna(r["deferral_rate"]) and pd.notna(best_def) and r["deferral_rate"] - best_def > params.max_deferral_rate_difference:
            out.append({by: g, "metric": "deferral_rate", "value": r["deferral_rate"], "threshold": params.max_deferral_rate_difference,
                        "n_cases": nc,
                        "message": f"{r['deferral_rate']:.0%} of {possessive(g)} cases are deferred or cancelled "
                                   f"(best group {best_def:.0%}; {cases})"})
    return pd.DataFrame(out, columns=cols)


def patient_group_audit(h: Hospital, schedule: pd.DataFrame, forecasts: pd.DataFrame | None = None) -> pd.DataFrame:
    """Audit only: late-slot share, deferral rate and mean predicted cancellation risk by patient
    group (age band, sex where present). The models never see sex; this checks outcomes."""
    c = h.cases.set_index("case_id")
    s = schedule.copy()
    s["date"] = pd.to_datetime(s["date"])
    pe = s["date"] + pd.Timedelta(minutes=h.settings.prime_end_minute)
    sched = s["status"] == "scheduled"
    late = np.where(sched, (pd.to_datetime(s["end_p50"]) > pe).astype(float), np.nan)
    deferred = (~sched).astype(float)
    risk = s["case_id"].map(forecasts.set_index("case_id")["cancel_prob"]) if forecasts is not None and "cancel_prob" in forecasts else pd.Series(np.nan, index=s.index)
    groups = {}
    if "patient_age" in c.columns:
        age = s["case_id"].map(c["patient_age"])
        groups["age_band"] = pd.cut(age, [0, 40, 65, 80, 200], right=False, labels=["<40", "40-64", "65-79", "80+"]).astype(str)
    if "patient_sex" in c.columns:
        groups["patient_sex"] = s["case_id"].map(c["patient_sex"]).fillna("unknown").astype(str)
    rows = []
    for gname, sf in groups.items():
        for metric, values in (("late_slot_share", late), ("deferral_rate", deferred), ("mean_cancel_risk", risk.to_numpy(dtype=float))):
            mf = MetricFrame(metrics=lambda yt, yp: float(np.nanmean(yp)) if np.isfinite(yp).any() else np.nan,
                             y_true=np.zeros(len(s)), y_pred=np.asarray(values, dtype=float), sensitive_features=sf)
            for g, v in mf.by_group.items():
                rows.append({"attribute": gname, "group": g, "metric": metric, "value": v, "n": int((sf == g).sum())})
    return pd.DataFrame(rows, columns=["attribute", "group", "metric", "value", "n"])


def review_pack_html(hospital_name: str, title: str, tables: dict[str, pd.DataFrame], flag_table: pd.DataFrame,
                     notes: dict[str, Any]) -> str:
    """A self-contained HTML review pack for the board meeting (prints to PDF from any browser)."""
    g = load_guardrails()
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title><style>"
             "body{font-family:sans-serif;font-size:10.5pt;margin:24px} table{border-collapse:collapse;margin:8px 0 18px}"
             "td,th{border:1px solid #aaa;padding:3px 6px;text-align:right} td:first-child,th:first-child{text-align:left}"
             ".flag{color:#b00020}</style></head><body>",
             f"<h1>{html.escape(title)}</h1><p>{html.escape(hospital_name)}. Generated {pd.Timestamp.now():%Y-%m-%d %H:%M}.</p>"]
    for k, v in notes.items():
        parts.append(f"<p><b>{html.escape(str(k))}</b>: {html.escape(str(v))}</p>")
    parts.append("<h2>Flags</h2>")
    if len(flag_table):
        parts.append("<ul>" + "".join(f"<li class='flag'>{html.escape(m)}</li>" for m in flag_table["message"]) + "</ul>")
    else:
        parts.append("<p>No group beyond the thresholds.</p>")
    for name, t in tables.items():
        parts.append(f"<h2>{html.escape(name)}</h2>" + t.round(3).to_html(index=False, na_rep="n/a", border=0))
    parts.append("<h2>What the system uses and refuses</h2>")
    parts.append(f"<p>{html.escape(g.uses)}</p><p>{html.escape(g.refuses)}</p></body></html>")
    return "\n".join(parts)


def fairness_term_cost(h: Hospital, forecasts: pd.DataFrame, start, days: int = 5, max_gap_points: float | None = None,
                       params: Any = None) -> pd.DataFrame:
    """Day-by-day plans without and with the fairness policy (``max_gap_points``, default the
    hospital's ``[fairness]`` limit): its cost in utilization, expected overtime and deferrals, as
    measured on the plans, and the prime-time gap it buys (largest over the days, each day counted
    as the fairness report counts it, over lines with at least the policy's ``min_group_cases``)."""
    from engine.fairness.policy import check_policy
    from engine.plan import PlanParams, plan
    from engine.plan.planner import addon_reserve_minutes, needs_addon_reserve

    base = (params or PlanParams(time_limit_s=20.0)).with_(days=1)
    limit = h.settings.fairness.max_prime_time_gap_points if max_gap_points is None else max_gap_points
    policy = h.settings.fairness.model_copy(update={"max_prime_time_gap_points": limit})
    rows = []
    dates = pd.date_range(pd.Timestamp(start).normalize(), periods=days)
    # Both plans of a day hold rooms for the same add-ons: one reserve a day.
    reserves = {d: addon_reserve_minutes(h, d, 1) if needs_addon_reserve(base) else None for d in dates}
    for label, p in (("without the fairness policy", base.with_(fairness_policy=False)),
                     (f"with the policy (max gap {limit:g} points)", base.with_(fairness_max_gap_points=limit))):
        k, gaps = [], []
        for d in dates:
            r = plan(h, forecasts, d, p, addon_reserve=reserves[d])
            k.append(r.kpis)
            gaps.append(check_policy(h, r.schedule, policy, forecasts).max_prime_time_gap_points)
        rows.append({"plan": label, "scheduled": sum(x["n_scheduled"] for x in k), "deferred": sum(x["n_deferred"] for x in k),
                     "utilization": float(np.mean([x["utilization"] for x in k])),
                     "expected_overtime_minutes": float(sum(x["expected_overtime_minutes"] for x in k)),
                     "max_prime_time_gap_points": float(max(gaps)),
                     "days_within_policy": int(sum(g <= limit + 1e-9 for g in gaps))})
    return pd.DataFrame(rows)
