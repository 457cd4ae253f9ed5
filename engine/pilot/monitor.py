"""Planned against actual, every day (issue 19): the gaps between the published plan and what happened.

For a past day :func:`monitor_day` takes the plan in force (the governance ledger's published version for
the day; when none was published, the hospital's own booked schedule, ``scheduled_start``) and the day's
records, and measures:

- start-time deviation: wheels-in minus planned start of the plan's cases that ran (mean, P90, share later
  than ``late_start_minutes``);
- overtime: the records' (each room's last wheels-out past its close) against the plan's own (each room's
  last planned P50 end past its close);
- forecast error and coverage: actual wheels-in to wheels-out against the plan's P50 (MAE, bias) and the
  share within the plan's P80 (and P95 when the day's forecasts are known: a kept shadow run of the day);
- override rate: the published version's cases changed by hand (None for the booked schedule);
- PACU holds: estimated from the records (wheels-out order, the hospital's PACU stay, the day's staffed
  beds, first come first served: the records hold no PACU times);
- fairness: the day's outcomes by service line (engine.fairness: overtime burden, late-slot share and
  cancellation differences between the lines, prime-time gap);
- adherence: planned cases that ran, were cancelled, and cases that ran unplanned (add-ons).

:func:`monitor` keeps each day (``pilot_monitor_days``), audits the run (``monitor``) and evaluates the
outcome gate (:func:`engine.governance.gates.gate_outcomes`) over the last kept days that ran on a published
version (days on the hospital's own schedule are the baseline, shown but not judged: the product is not
stopped for what the manual schedule did): a tripped gate withholds the next publish with a plain reason
(``evaluate_gates(..., outcomes=latest_outcomes(...))``).
"""
from __future__ import annotations

import heapq
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from engine.errors import InputError, Problem
from engine.hospital import Hospital
from engine.pilot.replay import _f
from engine.timeutil import hhmm_to_minutes, room_minutes


@dataclass(frozen=True)
class MonitorParams:
    """``late_start_minutes``: a case starting later than this after its planned start counts as late."""

    late_start_minutes: float = 15.0

    def __post_init__(self) -> None:
        if not self.late_start_minutes >= 0:
            raise ValueError(f"late_start_minutes must be >= 0, got {self.late_start_minutes}")


def _minutes(ts: pd.Series, day: pd.Timestamp) -> pd.Series:
    return (pd.to_datetime(ts) - day).dt.total_seconds() / 60


def booked_plan(hospital: Hospital, day: pd.Timestamp) -> pd.DataFrame:
    """The hospital's own plan for a past day: its elective cases at their booked room and ``scheduled_start``
    (coordinators' sequencing where it is missing), P50 and P80 ends from the booked minutes."""
    from engine.policies import as_booked_schedule, as_of_hospital

    h, wk, _ = as_of_hospital(hospital, day)
    fc = pd.DataFrame({"case_id": wk["case_id"], "p50": wk["booked_minutes"].astype(float),
                       "p80": wk["booked_minutes"].astype(float), "p95": wk["booked_minutes"].astype(float),
                       "cancel_prob": 0.0})
    return as_booked_schedule(h, fc, day, 1)


def pacu_holds(wheels_out: np.ndarray, stay: float, beds: int) -> np.ndarray:
    """Minutes each patient waits for a PACU bed (fixed stay, ``beds`` beds, in wheels-out order)."""
    free = [0.0] * max(1, beds)  # min-heap of the times the beds come free
    holds = np.zeros(len(wheels_out))
    for i in np.argsort(wheels_out, kind="stable"):
        soonest = heapq.heappop(free)
        holds[i] = max(0.0, soonest - wheels_out[i])
        heapq.heappush(free, wheels_out[i] + holds[i] + stay)
    return holds


def _fairness(hospital: Hospital, day: pd.Timestamp) -> dict[str, Any]:
    from engine.fairness.metrics import schedule_fairness
    from engine.fairness.review import history_as_schedule

    sched = history_as_schedule(hospital, day, day + pd.Timedelta(days=1))
    if sched.empty:
        return {"max_prime_time_gap": None, "overtime_burden_difference": None, "late_slot_share_difference": None,
                "cancellation_rate_difference": None, "worst_group": None}
    _, s = schedule_fairness(hospital, sched, "service_line", min_group_cases=hospital.settings.fairness.min_group_cases)
    return {"max_prime_time_gap": _f(s["max_prime_time_gap"]), "overtime_burden_difference": _f(s["overtime_burden_difference"]),
            "late_slot_share_difference": _f(s["late_slot_share_difference"]),
            "cancellation_rate_difference": _f(s["deferral_rate_difference"]), "worst_group": s["worst_group"]}


def monitor_day(hospital: Hospital, day, plan: pd.DataFrame, *, source: str, forecasts: pd.DataFrame | None = None,
                override_rate: float | None = None, params: MonitorParams | None = None) -> dict[str, Any]:
    """The day's planned-against-actual metrics (see the module docstring). ``plan`` is in schedule form;
    ``hospital`` holds the day's records; ``forecasts`` (case_id, p95) add P95 coverage."""
    p = params or MonitorParams()
    d = pd.Timestamp(day).normalize()
    if d >= hospital.as_of():
        raise InputError(Problem("command line", None, "--date",
                                 f"{d:%Y-%m-%d} has no actuals yet (the hospital is as of {hospital.as_of():%Y-%m-%d})"))
    plan = plan[(plan["status"] == "scheduled") & (pd.to_datetime(plan["date"]).dt.normalize() == d)].copy()
    c = hospital.cases
    today = c[c["surgery_date"] == d]
    done = today[(today["status"] == "completed") & today["wheels_in"].notna() & today["wheels_out"].notna()]
    close = hospital.rooms.set_index("room_id")["close_time"].map(hhmm_to_minutes)

    pl = plan.set_index("case_id")
    ran = done[done["case_id"].isin(pl.index)].set_index("case_id")
    planned_start = _minutes(pl.loc[ran.index, "start"], d)
    dev = _minutes(ran["wheels_in"], d) - planned_start
    actual_min = room_minutes(ran, hospital.settings.timezone)
    booked = not source.startswith("published")
    if booked and forecasts is not None and set(ran.index) <= set(forecasts["case_id"]):
        fq = forecasts.set_index("case_id").reindex(ran.index)
        p50, p80, fsource = fq["p50"].astype(float), fq["p80"].astype(float), "the day's shadow-run forecasts"
    else:
        p50 = (pd.to_datetime(pl.loc[ran.index, "end_p50"]) - pd.to_datetime(pl.loc[ran.index, "start"])).dt.total_seconds() / 60
        p80 = (pd.to_datetime(pl.loc[ran.index, "end_p80"]) - pd.to_datetime(pl.loc[ran.index, "start"])).dt.total_seconds() / 60
        fsource = "booked minutes" if booked else "the published plan"
    err = actual_min - p50
    n = int(len(ran))
    cov95 = None
    if forecasts is not None and n and "p95" in forecasts.columns:
        f95 = forecasts.set_index("case_id")["p95"].reindex(ran.index)
        cov95 = _f((actual_min[f95.notna()] <= f95.dropna()).mean()) if f95.notna().any() else None

    last_out = _minutes(done.groupby("room_id")["wheels_out"].max(), d)
    observed_ot = (last_out - close.reindex(last_out.index)).clip(lower=0).fillna(0.0)
    planned_end = _minutes(plan.groupby("room_id")["end_p50"].max(), d) if len(plan) else pd.Series(dtype=float)
    planned_ot = (planned_end - close.reindex(planned_end.index)).clip(lower=0).fillna(0.0)
    rooms_used = int(done["room_id"].nunique())

    beds = hospital.staffing.set_index("date")["pacu_beds"] if "pacu_beds" in hospital.staffing.columns else pd.Series(dtype=float)
    n_beds = int(beds.get(d)) if pd.notna(beds.get(d, np.nan)) else max(1, rooms_used)
    holds = pacu_holds(_minutes(done["wheels_out"], d).to_numpy(float), float(hospital.settings.pacu_minutes), n_beds)

    planned_ids = set(pl.index)
    cancelled = today[(today["status"] == "cancelled") & today["case_id"].isin(planned_ids)]
    return {
        "day": f"{d:%Y-%m-%d}", "plan_source": source, "n_planned": len(planned_ids), "n_ran_as_planned": n,
        "n_planned_cancelled": int(len(cancelled)), "n_unplanned_ran": int((~done["case_id"].isin(planned_ids)).sum()),
        "rooms_used": rooms_used,
        "start_deviation": {"mean_minutes": _f(dev.mean()) if n else None, "p90_minutes": _f(dev.quantile(0.9)) if n else None,
                            "late_share": _f((dev > p.late_start_minutes).mean()) if n else None,
                            "late_start_minutes": p.late_start_minutes},
        "overtime": {"observed_minutes": float(observed_ot.sum()), "planned_minutes": float(planned_ot.sum()),
                     "gap_minutes": float(observed_ot.sum() - planned_ot.sum()),
                     "observed_minutes_per_room": float(observed_ot.sum() / rooms_used) if rooms_used else 0.0},
        "forecast": {"n_cases": n, "source": fsource, "mae_p50_minutes": _f(err.abs().mean()) if n else None,
                     "bias_p50_minutes": _f(err.mean()) if n else None,
                     "coverage_p80": _f((actual_min <= p80).mean()) if n else None, "coverage_p95": cov95},
        "override_rate": override_rate,
        "pacu_hold": {"minutes": float(holds.sum()), "minutes_per_case": float(holds.mean()) if len(holds) else 0.0,
                      "beds": n_beds, "estimated": True},
        "fairness": _fairness(hospital, d),
    }


def _weighted(rows: list[dict[str, Any]], section: str, key: str, weight: str = "n_ran_as_planned") -> float | None:
    num = den = 0.0
    for r in rows:
        v = r[section][key] if section else r[key]
        if v is None:
            continue
        w = float(r.get(weight) or 0) if weight else 1.0
        num, den = num + w * float(v), den + w
    return num / den if den else None


def summarize_outcomes(rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The observed outcomes of several kept days, as the outcome gate reads them (None without days)."""
    if not rows:
        return None
    rooms = sum(r["rooms_used"] for r in rows)
    cases = sum(r["n_ran_as_planned"] for r in rows)
    return {"days": [r["day"] for r in rows], "n_days": len(rows),
            "overtime_minutes_per_room_day": sum(r["overtime"]["observed_minutes"] for r in rows) / rooms if rooms else 0.0,
            "overtime_minutes_per_day": sum(r["overtime"]["observed_minutes"] for r in rows) / len(rows),
            "start_delay_mean_minutes": _weighted(rows, "start_deviation", "mean_minutes"),
            "late_start_share": _weighted(rows, "start_deviation", "late_share"),
            # coverage judges the product's forecasts: days judged only against booked minutes do not count
            "coverage_p80": _weighted([r for r in rows if r["forecast"].get("source") != "booked minutes"], "forecast",
                                      "coverage_p80"), "n_cases": cases,
            "pacu_hold_minutes_per_case": _weighted(rows, "pacu_hold", "minutes_per_case"),
            "override_rate": _weighted(rows, "", "override_rate", weight=""),
            "plan_sources": sorted({r["plan_source"] for r in rows})}


def latest_outcomes(store_or_url: Any, hospital_id: str, window_days: int | None = None, until: Any = None,
                    published_only: bool = True) -> dict[str, Any] | None:
    """The outcome gate's input: :func:`summarize_outcomes` of the last ``window_days`` kept days (up to ``until``)
    that ran on a published version (the product's plan: days on the hospital's own booked schedule are kept as
    the baseline but do not judge the product); ``window_days`` defaults to the gate settings' ``outcome_window_days``."""
    from engine.governance.gates import GateParams
    from engine.pilot.store import monitor_days

    k = window_days or GateParams().outcome_window_days
    rows = [r for r in monitor_days(store_or_url, hospital_id, end=until) if not published_only or r["version_id"] is not None]
    return summarize_outcomes([r["metrics"] for r in rows[-k:]])


def _plan_for(gov: Any, hospital_id: str, hospital: Hospital, d: pd.Timestamp) -> tuple[pd.DataFrame, str, int | None, float | None]:
    ver = gov.published_version(hospital_id, d)
    if ver is not None:
        rate, _ = gov.version_override_rate(ver.version_id)
        return ver.schedule, f"published version {ver.version_id}", ver.version_id, float(rate)
    return booked_plan(hospital, d), "booked schedule (nothing published for the day)", None, None


def _shadow_forecasts(store_or_url: Any, hospital_id: str, d: pd.Timestamp) -> pd.DataFrame | None:
    from engine.pilot.store import shadow_rows

    rows = shadow_rows(store_or_url, hospital_id, d)
    return pd.DataFrame(rows[-1]["forecasts"]) if rows else None


def monitor(store_or_url: Any, hospital_id: str, hospital: Hospital, days: list, params: MonitorParams | None = None,
            gate_params: Any = None, actor: tuple[str, str] | None = None) -> dict[str, Any]:
    """Measure, keep and audit each of ``days`` (past days), then the outcome gate over the last kept days."""
    from engine.governance import Governance
    from engine.governance.audit import audit_key
    from engine.governance.gates import GateParams

    audit_key()
    p = params or MonitorParams()
    gov = Governance(store_or_url)
    try:
        return _monitor(gov, hospital_id, hospital, days, p, gate_params or GateParams.from_catalog(gov.catalog), actor)
    finally:
        gov.close()


def _monitor(gov: Any, hospital_id: str, hospital: Hospital, days: list, p: MonitorParams, gp: Any,
             actor: tuple[str, str] | None) -> dict[str, Any]:
    from engine.governance.gates import gate_outcomes
    from engine.pilot.record import record
    from engine.pilot.store import save_monitor_day

    out_days = []
    for d in days:
        d = pd.Timestamp(d).normalize()
        plan, source, vid, rate = _plan_for(gov, hospital_id, hospital, d)
        m = monitor_day(hospital, d, plan, source=source, forecasts=_shadow_forecasts(gov.engine, hospital_id, d),
                        override_rate=rate, params=p)
        m["version_id"] = vid
        seq = record(gov.engine, hospital_id, "monitor", hospital=hospital, params=p, actor=actor,
                     summary={"command": "monitor", **m}).seq
        save_monitor_day(gov.engine, hospital_id, d, m, vid, seq)
        out_days.append(m | {"audit_seq": seq})
    outcomes = latest_outcomes(gov.engine, hospital_id, gp.outcome_window_days)
    g = gate_outcomes(outcomes, gp)
    return {"days": out_days, "outcomes": outcomes,
            "gate": {"gate": g.gate, "passed": g.passed, "message": g.message, "inspect_next": g.inspect_next,
                     "details": g.details},
            "next_publish": "allowed by the outcome gate" if g.passed else f"withheld: {g.message}"}


def outcome_gate(store_or_url: Any, hospital_id: str, gate_params: Any = None):
    """The outcome gate (a GateResult) on the last kept days: what the next publish would meet."""
    from engine.governance.gates import GateParams, gate_outcomes

    gp = gate_params or GateParams()
    return gate_outcomes(latest_outcomes(store_or_url, hospital_id, gp.outcome_window_days), gp)


def monitor_frame(store_or_url: Any, hospital_id: str) -> pd.DataFrame:
    """The kept days as one flat row each (day, plan, start deviation, overtime, forecast, PACU, overrides)."""
    from engine.pilot.store import monitor_days

    rows = []
    for r in monitor_days(store_or_url, hospital_id):
        m = r["metrics"]
        rows.append({"day": m["day"], "plan": m["plan_source"], "cases ran as planned": m["n_ran_as_planned"],
                     "start delay (mean min)": m["start_deviation"]["mean_minutes"],
                     "late starts": m["start_deviation"]["late_share"],
                     "overtime observed (min)": m["overtime"]["observed_minutes"],
                     "overtime planned (min)": m["overtime"]["planned_minutes"],
                     "P50 error (MAE min)": m["forecast"]["mae_p50_minutes"], "within P80": m["forecast"]["coverage_p80"],
                     "forecast judged": m["forecast"].get("source"),
                     "PACU hold per case (min, est.)": m["pacu_hold"]["minutes_per_case"],
                     "override rate": m["override_rate"],
                     "prime-time gap": m["fairness"]["max_prime_time_gap"]})
    return pd.DataFrame(rows)


