"""What-if planning: change staffing, PACU beds, add-on volume, durations or cancellations,
re-plan with the optimizer, re-simulate, and compare with the baseline.

Pure engine code: the What-if page calls :func:`run_whatif` and :func:`compare_runs`.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Iterator

import numpy as np
import pandas as pd

from engine.forecast import addon_forecast_for
from engine.hospital import Hospital
from engine.plan import PlanParams, PlanResult, plan
from engine.plan.memo import remember
from engine.plan.planner import addon_reserve_minutes, needs_addon_reserve
from engine.sim import SimParams, load_scenario, schedule_dates, simulate


@dataclass(frozen=True)
class WhatIf:
    """A what-if: changes to the planning inputs. Validated on construction.

    ``staffed_rooms_delta`` applies to every day; ``staffed_rooms_by_day`` (ISO date -> rooms)
    sets single days. Anesthesia teams follow staffed rooms unless changed themselves.
    """

    name: str = "baseline"
    staffed_rooms_delta: int = 0
    staffed_rooms_by_day: tuple[tuple[str, int], ...] = ()
    anesthesia_teams_delta: int = 0
    pacu_beds_delta: int = 0
    addon_multiplier: float = 1.0
    duration_inflation: float = 0.0
    cancel_multiplier: float = 1.0

    def __post_init__(self) -> None:
        if not 0.5 <= self.addon_multiplier <= 2.0:
            raise ValueError(f"addon_multiplier must be within 0.5..2, got {self.addon_multiplier!r}")
        if not -0.3 <= self.duration_inflation <= 1.0:
            raise ValueError(f"duration_inflation must be within -0.3..1, got {self.duration_inflation!r}")
        if not 0.0 <= self.cancel_multiplier <= 5.0:
            raise ValueError(f"cancel_multiplier must be within 0..5, got {self.cancel_multiplier!r}")
        for name in ("staffed_rooms_delta", "anesthesia_teams_delta", "pacu_beds_delta"):
            if not -50 <= getattr(self, name) <= 50:
                raise ValueError(f"{name} must be within -50..50, got {getattr(self, name)!r}")
        for day, rooms in self.staffed_rooms_by_day:
            pd.Timestamp(day)
            if rooms < 0:
                raise ValueError(f"staffed_rooms_by_day[{day}] must be >= 0, got {rooms!r}")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["staffed_rooms_by_day"] = dict(self.staffed_rooms_by_day)
        return d


def apply_whatif(h: Hospital, forecasts: pd.DataFrame, w: WhatIf) -> tuple[Hospital, pd.DataFrame]:
    """A copy of the hospital with the what-if's staffing, and forecasts with its durations and cancellations."""
    st = h.staffing.copy()
    st["staffed_rooms"] = (st["staffed_rooms"] + w.staffed_rooms_delta).clip(lower=0)
    st["anesthesia_teams"] = (st["anesthesia_teams"] + w.staffed_rooms_delta + w.anesthesia_teams_delta).clip(lower=0)
    for day, rooms in w.staffed_rooms_by_day:
        m = st["date"] == pd.Timestamp(day)
        delta = rooms - st.loc[m, "staffed_rooms"]
        st.loc[m, "staffed_rooms"] = rooms
        st.loc[m, "anesthesia_teams"] = (st.loc[m, "anesthesia_teams"] + delta).clip(lower=0)
    st["pacu_beds"] = (st["pacu_beds"] + w.pacu_beds_delta).clip(lower=0)
    h2 = replace(h, staffing=st)
    f = forecasts.copy()
    for col in ("p50", "p80", "p95"):
        if col in f.columns:
            f[col] = f[col] * (1.0 + w.duration_inflation)
    if "cancel_prob" in f.columns:
        f["cancel_prob"] = (f["cancel_prob"] * w.cancel_multiplier).clip(0, 1)
    return h2, f


@dataclass
class WhatIfRun:
    """A what-if's plan, simulated days and KPIs. ``final`` is False for a first answer that a
    refined one follows (see whatif_answers)."""

    whatif: WhatIf
    plan: PlanResult
    per_rep: pd.DataFrame
    kpis: dict[str, float]
    seconds: dict[str, float] = field(default_factory=dict)
    final: bool = True


@dataclass
class WhatIfSession:
    """What a day's what-ifs share, so that a slider move only redoes what it changes.

    - ``memo``: the optimizer's answers by everything the model reads (``engine.plan.model_key``):
      moving a slider the model does not see (cancellation rate; PACU beds when the PACU load term
      is off) or back to a value
      seen before re-sequences and re-simulates without solving again;
    - ``warm_start``: the latest optimizer answer (at first the baseline), handed to HiGHS as a
      MIP start for the next what-if, which usually differs from it in a few cases only;
    - ``addon_forecast`` / ``addon_totals``: the day's add-on forecast from history, per service
      line for the simulation and in total for the rooms the plan holds; no what-if changes them
      (the add-on slider scales them);
    - ``runs``: final runs by what-if and settings, so moving back to a setting shows it at once.
    Not thread-safe; one per user session and day.
    """

    memo: dict = field(default_factory=dict)
    warm_start: pd.DataFrame | None = None
    addon_forecast: pd.DataFrame | None = None
    addon_totals: pd.DataFrame | None = None
    runs: dict = field(default_factory=dict)

    @classmethod
    def after(cls, baseline: "WhatIfRun", reps: int | None = None, seed: int | None = None) -> "WhatIfSession":
        """A session warm-starting from ``baseline``'s schedule when the optimizer made it. Given the
        baseline's ``reps`` and ``seed``, the baseline is also the answer to the what-if that
        changes nothing (so it shows no change, whatever the solver would find on a second try)."""
        session = cls()
        if baseline.plan.solve is not None and baseline.plan.banner is None:
            session.warm_start = baseline.plan.assignment()
            remember(session.memo, baseline.plan)
        if reps is not None and seed is not None:
            session.runs[run_key(baseline.whatif, baseline.plan.params, reps, seed)] = baseline
        return session


def run_key(w: WhatIf, params: PlanParams, reps: int, seed: int) -> tuple:
    """The settings a what-if run depends on (its name is only a label)."""
    return (replace(w, name=""), params, reps, seed)


def run_whatif(h: Hospital, forecasts: pd.DataFrame, start, w: WhatIf, params: PlanParams | None = None,
               reps: int = 200, seed: int = 0, scenario: str = "normal", published: pd.DataFrame | None = None,
               session: WhatIfSession | None = None) -> WhatIfRun:
    """Re-plan under the what-if and simulate it; KPIs from the plan and the simulation.
    With a ``session``, work that the what-if does not change is reused (see WhatIfSession)."""
    params = params or PlanParams()
    t0 = time.perf_counter()
    h2, f2 = apply_whatif(h, forecasts, w)
    memo = session.memo if session is not None else None
    warm = session.warm_start if session is not None else None
    reserve = None
    if needs_addon_reserve(params):
        # The rooms held for add-ons follow the add-on volume (the P80 reserve scaled with it).
        totals = session.addon_totals if session is not None else None
        if totals is None:
            totals = addon_reserve_minutes(h, start, params.days)
            if session is not None:
                session.addon_totals = totals
        reserve = totals.assign(reserve_minutes=totals["reserve_minutes"] * w.addon_multiplier)
    result = plan(h2, f2, start, params, published=published, warm_start=warm, memo=memo, addon_reserve=reserve)
    if session is not None and result.solve is not None and result.banner is None:
        session.warm_start = result.assignment()
    t1 = time.perf_counter()
    sc = load_scenario(scenario).with_(addon_multiplier=w.addon_multiplier)
    addon_fc = session.addon_forecast if session is not None else None
    if addon_fc is None:
        addon_fc = addon_forecast_for(h, schedule_dates({"": result.schedule}))
        if session is not None:
            session.addon_forecast = addon_fc
    sim = simulate(h2, result.schedule, f2, sc, reps, seed, addon_forecast=addon_fc, params=SimParams())
    t2 = time.perf_counter()
    pr = sim.per_rep
    kpis = {
        "prime_time_utilization": float(pr["utilization"].mean()),
        "p95_overtime_minutes": float(np.percentile(pr["overtime_minutes"], 95)),
        "mean_overtime_minutes": float(pr["overtime_minutes"].mean()),
        "deferred_cases": float(result.kpis["n_deferred"]),
        "scheduled_cases": float(result.kpis["n_scheduled"]),
        "pacu_hold_minutes": float(pr["pacu_hold_minutes"].mean()),
        "cancellations": float(pr["total_cancellations"].mean()) if "total_cancellations" in pr else float(pr["cancellations"].mean()),
        "bumped_cases": float(pr["bumped_cases"].mean()) if "bumped_cases" in pr else 0.0,
        "spillover_cases": float(pr["spillover_cases"].mean()),
    }
    return WhatIfRun(w, result, pr, kpis, {"plan_s": t1 - t0, "simulate_s": t2 - t1})


# Seconds HiGHS gets for a what-if's first answer (the refined answer gets the plan's own limit).
FIRST_ANSWER_S = 0.2


def whatif_answers(h: Hospital, forecasts: pd.DataFrame, start, w: WhatIf, params: PlanParams, session: WhatIfSession,
                   reps: int = 200, seed: int = 0, first_answer_s: float = FIRST_ANSWER_S) -> Iterator[WhatIfRun]:
    """A fast first answer, then the refined one: what an interactive page shows while a slider moves.

    With HiGHS, the first answer is the optimizer's best schedule after ``first_answer_s``
    seconds (warm-started from the session's last answer), kept whatever its gap (the gap is in
    ``plan.solve``; it is a preview, never published); when that gap is above ``params.mip_gap``
    the plan is solved again with the full time limit, warm-started from the first answer, and
    yielded as the final run. A setting seen before, or a change the model does not see, yields
    its final run at once. The rules solver has one answer.
    """
    key = run_key(w, params, reps, seed)
    if key in session.runs:
        yield session.runs[key]
        return
    final = None
    if params.solver == "highs" and params.time_limit_s > first_answer_s:
        quick = params.with_(time_limit_s=first_answer_s, gap_tolerance=max(params.gap_tolerance, 0.99))
        first = run_whatif(h, forecasts, start, w, quick, reps, seed, session=session)
        s = first.plan.solve
        proven = s is not None and s.status == "optimal" and first.plan.banner is None
        if proven or first.plan.kpis["solution_time_limit_s"] >= params.time_limit_s:
            final = first
        else:
            first.final = False
            yield first
    if final is None:
        final = run_whatif(h, forecasts, start, w, params, reps, seed, session=session)
    session.runs[key] = final
    yield final


def compare_runs(runs: dict[str, WhatIfRun], baseline: str) -> pd.DataFrame:
    """KPIs side by side with the change against the baseline."""
    base = runs[baseline].kpis
    rows = []
    for name, r in runs.items():
        for k, v in r.kpis.items():
            rows.append({"scenario": name, "kpi": k, "value": v, "change": v - base[k]})
    return pd.DataFrame(rows)


def moved_cases(before: pd.DataFrame, after: pd.DataFrame) -> pd.DataFrame:
    """Cases whose status, date, room or start differ between two schedules, with a plain reason."""
    b = before.set_index("case_id")
    a = after.set_index("case_id")
    rows = []
    for cid in b.index.intersection(a.index):
        x, y = b.loc[cid], a.loc[cid]
        if x["status"] != y["status"]:
            rows.append({"case_id": cid, "service_line": y["service_line"], "change": f"{x['status']} -> {y['status']}",
                         "why": y["reason"]})
        elif y["status"] == "scheduled" and (x["room_id"] != y["room_id"] or pd.Timestamp(x["start"]) != pd.Timestamp(y["start"])
                                             or pd.Timestamp(x["date"]) != pd.Timestamp(y["date"])):
            rows.append({"case_id": cid, "service_line": y["service_line"],
                         "change": f"{x['room_id']} {pd.Timestamp(x['start']):%a %H:%M} -> {y['room_id']} {pd.Timestamp(y['start']):%a %H:%M}",
                         "why": y["reason"]})
    return pd.DataFrame(rows, columns=["case_id", "service_line", "change", "why"])
