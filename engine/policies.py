"""Scheduling policies for comparison: the optimizer's plan, the block rules, the bookings as they
stand; and the historical replay of a week under each (the orchestration of plan and simulation).

Beside :mod:`engine.whatif`: it calls :mod:`engine.plan` (to make the schedules) and
:mod:`engine.sim` (to replay them); neither of those calls it. Plans are returned as values
(:func:`policy_plans`), not hidden in ``DataFrame.attrs``.
"""
from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandas as pd

from engine.contract import SCHEDULE_COLUMNS, SCHEDULE_TIME_COLUMNS
from engine.errors import InputError
from engine.forecast.fallback import booked_forecasts
from engine.hospital import Hospital
from engine.plan import PlanParams, PlanResult, plan
from engine.sim.instance import Actuals
from engine.sim.params import SimParams
from engine.sim.runner import PolicyComparison, compare_policies, replay_actuals
from engine.sim.scenario import Scenario
from engine.timeutil import hhmm_to_minutes

log = logging.getLogger(__name__)

POLICIES = ("optimized", "rules", "as_booked")
PLANNED = {"optimized": "highs", "rules": "rules"}  # policy -> the solver that makes its plan


def as_booked_schedule(hospital: Hospital, forecasts: pd.DataFrame, start_date, days: int = 1,
                       cases: pd.DataFrame | None = None) -> pd.DataFrame:
    """The booked cases at their booked room and ``scheduled_start`` (contract schedule form).

    Where ``scheduled_start`` is missing the room's list is sequenced the coordinators' way:
    booking order, back to back by ``booked_minutes`` plus turnover from the room's open time.
    ``end_p50``/``end_p80`` use the forecasts; ``planned_end`` (an added column) is the
    coordinators' own promise, start + booked minutes, and is what reliability is measured against.
    """
    start = pd.Timestamp(start_date).normalize()
    dates = [start + pd.Timedelta(days=i) for i in range(days)]
    src = hospital.cases if cases is None else cases
    b = src[(src["status"] == "booked") & src["surgery_date"].isin(dates)].copy()
    f = forecasts.drop_duplicates("case_id").set_index("case_id")
    missing = sorted(set(b["case_id"]) - set(f.index))
    if missing:
        raise InputError(f"no forecast for {len(missing)} booked cases, e.g. {missing[:3]}", file="forecasts")
    turn = hospital.settings.turnover_minutes
    pacu = hospital.settings.pacu_minutes
    opens = hospital.rooms.set_index("room_id")["open_time"].map(hhmm_to_minutes).to_dict()
    rows = []
    for (d, room), g in b.groupby([b["surgery_date"], b["room_id"].fillna("")], sort=True):
        g = g.assign(_o=g["scheduled_start"].fillna(g["booked_at"]).fillna(pd.Timestamp.max.as_unit(g["scheduled_start"].dt.unit))).sort_values(["_o", "case_id"])
        cursor = None
        for c in g.itertuples():
            if not room:
                rows.append({"case_id": c.case_id, "surgeon_id": c.surgeon_id, "service_line": c.service_line, "date": d,
                             "room_id": np.nan, "status": "deferred", "reason": "booked without a room"})
                continue
            booked = float(c.booked_minutes) if pd.notna(c.booked_minutes) else float(f.at[c.case_id, "p50"])
            if pd.notna(c.scheduled_start):
                st = pd.Timestamp(c.scheduled_start)
            else:
                st = cursor if cursor is not None else d + pd.Timedelta(minutes=opens.get(room, 450.0))
            cursor = st + pd.Timedelta(minutes=booked + turn)
            p50, p80 = float(f.at[c.case_id, "p50"]), float(max(f.at[c.case_id, "p80"], f.at[c.case_id, "p50"]))
            e50 = st + pd.Timedelta(minutes=p50)
            rows.append({"case_id": c.case_id, "surgeon_id": c.surgeon_id, "service_line": c.service_line, "date": d,
                         "room_id": room, "status": "scheduled", "start": st, "end_p50": e50,
                         "end_p80": st + pd.Timedelta(minutes=p80), "pacu_in": e50, "pacu_out": e50 + pd.Timedelta(minutes=pacu),
                         "reason": f"as booked: {room} at {st:%H:%M}, {booked:.0f} booked minutes",
                         "planned_end": st + pd.Timedelta(minutes=booked)})
    out = pd.DataFrame(rows, columns=SCHEDULE_COLUMNS + ["planned_end"])
    for col in (*SCHEDULE_TIME_COLUMNS, "planned_end", "date"):
        out[col] = pd.to_datetime(out[col])
    return out


def _check_policies(policies: Sequence[str]) -> None:
    unknown = [p for p in policies if p not in POLICIES]
    if unknown:
        raise ValueError(f"policies must be among {', '.join(POLICIES)}, got {unknown[0]!r}")


def policy_plans(hospital: Hospital, forecasts: pd.DataFrame, start_date, days: int = 1,
                 plan_params: PlanParams | None = None, policies: Sequence[str] = ("optimized", "rules")
                 ) -> dict[str, PlanResult]:
    """The plans of the planned policies among ``policies`` (``optimized``: HiGHS, ``rules``: block
    rules), each with its solver used and fallback banner (a HiGHS plan may fall back to rules)."""
    _check_policies(policies)
    base = (plan_params or PlanParams(days=days)).with_(days=days)
    out: dict[str, PlanResult] = {}
    for name in policies:
        if name not in PLANNED:
            continue
        res = plan(hospital, forecasts, start_date, base.with_(solver=PLANNED[name]))
        if res.banner:
            log.warning("%s plan fell back: %s", name, res.banner)
        out[name] = res
    return out


def policy_schedules(hospital: Hospital, forecasts: pd.DataFrame, start_date, days: int = 1,
                     plan_params: PlanParams | None = None, policies: Sequence[str] = POLICIES) -> dict[str, pd.DataFrame]:
    """The schedules compared, in ``policies`` order: ``optimized`` (HiGHS plan), ``rules`` (block
    rules), ``as_booked``. For the plans themselves (solver used, banner) see :func:`policy_plans`."""
    plans = policy_plans(hospital, forecasts, start_date, days, plan_params, policies)
    return {name: (plans[name].schedule if name in plans else as_booked_schedule(hospital, forecasts, start_date, days))
            for name in policies}


# ----------------------------------------------------------------------------- historical replay


@dataclass
class Replay:
    comparison: PolicyComparison
    schedules: dict[str, pd.DataFrame]
    forecasts: pd.DataFrame
    actuals: Actuals
    dates: list[pd.Timestamp]


def as_of_hospital(hospital: Hospital, start, days: int = 1) -> tuple[Hospital, pd.DataFrame, pd.DataFrame]:
    """The hospital as it stood the evening before a past ``start``: history before it, the elective cases of
    ``days`` days from it (completed or cancelled) booked again with their outcomes blanked.
    Returns (hospital, those cases, history). Shared by the week replay and engine.pilot."""
    start = pd.Timestamp(start).normalize()
    dates = [start + pd.Timedelta(days=i) for i in range(days)]
    c = hospital.cases
    history = c[c["surgery_date"] < start]
    wk = c[c["surgery_date"].isin(dates) & (c["urgency"].fillna("elective") == "elective")
           & c["status"].isin(["completed", "cancelled"])].copy()
    wk["status"] = "booked"
    for col in ("wheels_in", "wheels_out", "procedure_start", "procedure_end"):
        wk[col] = pd.NaT
    wk["cancellation_reason"] = np.nan
    h2 = dataclasses.replace(hospital, cases=pd.concat([history, wk], ignore_index=True),
                             settings=hospital.settings.with_updates(as_of=start.date()))
    return h2, wk, history


def replay_week(
    hospital: Hospital,
    week_start,
    forecaster=None,
    days: int = 7,
    scenario: Scenario | str = "normal",
    reps: int = 200,
    seed: int = 0,
    params: SimParams | None = None,
    plan_params: PlanParams | None = None,
    policies: Sequence[str] = POLICIES,
) -> Replay:
    """Replay a past week: its elective cases re-planned by each policy, run on what happened.

    The week's elective cases (completed or cancelled) are treated as booked as of
    ``week_start``; forecasts come from ``forecaster`` (it should be trained on data before
    ``week_start``; ``predict`` only sees history before it) or, when None, from booked minutes.
    Each policy plans them; the simulation then uses the ACTUAL durations, patient/booking
    cancellations and add-ons of the week. Cases cancelled by the day itself (ran out of time,
    no staff) have no actual duration and are drawn from their forecast; turnovers, PACU stays,
    late starts and downtime are drawn (history cannot say how another schedule would have gone).
    """
    start = pd.Timestamp(week_start).normalize()
    dates = [start + pd.Timedelta(days=i) for i in range(days)]
    if start >= hospital.as_of():
        raise InputError(f"week_start {start:%Y-%m-%d} is not in the past (as of {hospital.as_of():%Y-%m-%d})",
                         file="command line")
    h2, wk, history = as_of_hospital(hospital, start, days)
    if forecaster is not None:
        forecasts = forecaster.predict(wk, history, as_of=start)[["case_id", "p50", "p80", "p95", "cancel_prob"]]
    else:
        forecasts = booked_forecasts(wk, history, timezone=hospital.settings.timezone)
    schedules = policy_schedules(h2, forecasts, start, days, plan_params, policies)
    actuals = replay_actuals(hospital, dates)
    cmp_ = compare_policies(h2, schedules, forecasts, scenario, reps, seed, pd.DataFrame(columns=["date", "service_line", "expected_cases"]),
                            params, actuals=actuals)
    return Replay(cmp_, schedules, forecasts, actuals, dates)
