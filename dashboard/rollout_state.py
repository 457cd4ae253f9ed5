"""State for the Pilot & rollout page (pages/rollout.py): role checks, engine calls, results kept in the session.

Runs are started by a button and kept in ``st.session_state`` (each one is audited when it runs, so a
rerun of the page never repeats it or its audit entry).
"""
from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from dashboard import state

from dashboard.keys import REPLAY_KEY  # noqa: E402,F401


def _actor(user) -> tuple[str, str]:
    return user.name, user.role


def replay_params(**fields):
    """The retrospective replay's settings (engine.pilot.replay.ReplayParams' defaults, with ``fields``)."""
    from engine.pilot.replay import ReplayParams

    return ReplayParams(**fields)


def shadow_params(**fields):
    """Shadow mode's settings (engine.pilot.shadow.ShadowParams' defaults, with ``fields``)."""
    from engine.pilot.shadow import ShadowParams

    return ShadowParams(**fields)


def run_replay(hospital_id: str, loaded, start, params, progress=None) -> dict[str, Any]:
    """Replay past days (engine.pilot.replay.audited_replay) for the signed-in user; kept in the session."""
    from engine.pilot.record import require_pilot
    from engine.pilot.replay import audited_replay

    user = state.active_user()
    require_pilot(user, "replay")
    out = audited_replay(state.governance().engine, hospital_id, loaded.hospital, start, params, actor=_actor(user),
                         progress=progress)
    st.session_state[REPLAY_KEY] = {"hospital_id": hospital_id, "report": out}
    return out


def last_replay(hospital_id: str) -> dict[str, Any] | None:
    got = st.session_state.get(REPLAY_KEY)
    return got["report"] if got and got["hospital_id"] == hospital_id else None


def replay_tables(report: dict[str, Any]) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(policies side by side: metric x optimized/rules/actual means; paired differences; per-day frame)."""
    pol = report["policies"]
    side = pd.DataFrame({p: {m: v["mean"] for m, v in pol[p].items()} for p in ("optimized", "rules", "actual") if p in pol})
    side["recorded"] = pd.Series({m: v["mean"] for m, v in report.get("observed", {}).items()})
    paired = pd.DataFrame([{"metric": m, "optimized - rules (mean a day)": v["diff_mean"],
                            f"{v['level']:.0%} interval low": v["ci_lo"], f"{v['level']:.0%} interval high": v["ci_hi"],
                            "days better": v["better_days"], "days worse": v["worse_days"]}
                           for m, v in report["paired"].items()])
    per_day = pd.DataFrame(report["per_day"])
    return side, paired, per_day


from dashboard.keys import MONITOR_KEY, SHADOW_REPORT_KEY  # noqa: E402,F401


def run_shadow(hospital_id: str, loaded, start, days: int, params, iterations: int | None = None) -> list[dict[str, Any]]:
    """Shadow-run ``days`` weekdays from ``start`` for the signed-in user (engine.pilot.shadow.shadow_days).
    Coming days use the registered model; past days a model trained before the first of them."""
    from engine.errors import InputError
    from engine.pilot.record import require_pilot
    from engine.pilot.replay import ReplayParams, weekdays_from
    from engine.pilot.shadow import shadow_days

    user = state.active_user()
    require_pilot(user, "shadow_run")
    h = loaded.hospital
    dates = weekdays_from(start, int(days))
    fc = mv = None
    if dates[0] >= h.as_of():
        model = state.current_model(hospital_id)
        if model is None:
            raise InputError("no forecasting model registered for this hospital: train one on the Forecasts page first")
        fc, mv = model.forecaster, model.version
    return shadow_days(state.governance().engine, hospital_id, h, dates, params, forecaster=fc, model_version=mv,
                       iterations=iterations or ReplayParams().iterations, actor=_actor(user))


def shadow_table(hospital_id: str) -> pd.DataFrame:
    from engine.pilot.shadow import shadow_runs

    return shadow_runs(state.governance().engine, hospital_id)


def run_shadow_report(hospital_id: str, loaded, start, days: int, params) -> dict[str, Any]:
    """The kept shadow runs of ``days`` past weekdays against what happened; audited, kept in the session."""
    from engine.pilot.record import require_pilot
    from engine.pilot.replay import weekdays_from
    from engine.pilot.shadow import shadow_report

    user = state.active_user()
    require_pilot(user, "shadow_report")
    h = loaded.hospital
    dates = [d for d in weekdays_from(start, int(days)) if d < h.as_of()]
    out = shadow_report(state.governance().engine, hospital_id, h, dates, params, actor=_actor(user))
    st.session_state[SHADOW_REPORT_KEY] = {"hospital_id": hospital_id, "report": out}
    return out


def last_shadow_report(hospital_id: str) -> dict[str, Any] | None:
    got = st.session_state.get(SHADOW_REPORT_KEY)
    return got["report"] if got and got["hospital_id"] == hospital_id else None


def shadow_report_table(report: dict[str, Any]) -> pd.DataFrame:
    """One row per reported day: forecast error, overtime of the recommendation against the real schedule, deferrals."""
    return pd.DataFrame([{
        "day": r["day"], "shadow version": r["shadow_version"], "P50 error (MAE min)": r["forecast"]["mae_p50_minutes"],
        "within P80": r["forecast"]["coverage_p80"], "overtime, recommendation (min)": r["overtime"]["shadow_minutes"],
        "overtime, real schedule (min)": r["overtime"]["actual_schedule_minutes"],
        "overtime avoided (min)": r["overtime"]["avoided_minutes"], "overtime caused (min)": r["overtime"]["caused_minutes"],
        "would defer": r["would_defer"]["n"], "of which ran": r["would_defer"]["ran_anyway"]} for r in report["days"]])


def run_monitor(hospital_id: str, loaded, start, days: int) -> dict[str, Any]:
    """Planned against actual for ``days`` past weekdays from ``start`` (engine.pilot.monitor.monitor); audited."""
    from engine.pilot.monitor import monitor
    from engine.pilot.record import require_pilot
    from engine.pilot.replay import weekdays_from

    user = state.active_user()
    require_pilot(user, "monitor")
    h = loaded.hospital
    dates = [d for d in weekdays_from(start, int(days)) if d < h.as_of()]
    if not dates:
        from engine.errors import InputError

        raise InputError(f"no past weekday from {pd.Timestamp(start):%Y-%m-%d}: the hospital is as of {h.as_of():%Y-%m-%d}")
    out = monitor(state.governance().engine, hospital_id, h, dates, actor=_actor(user))
    st.session_state[MONITOR_KEY] = {"hospital_id": hospital_id, "report": out}
    return out


def monitored(hospital_id: str):
    """(the kept days as a table, the outcome gate on them under the catalog's thresholds)."""
    from engine.governance.gates import GateParams
    from engine.pilot.monitor import monitor_frame, outcome_gate

    gov = state.governance()
    return monitor_frame(gov.engine, hospital_id), outcome_gate(gov.engine, hospital_id, GateParams.from_catalog(gov.catalog))
