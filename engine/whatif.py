"""What-if planning: change staffing, PACU beds, add-on volume, durations or cancellations,
re-plan with the optimizer, re-simulate, and compare with the baseline.

Pure engine code: the What-if page calls :func:`run_whatif` and :func:`compare_runs`.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from engine.hospital import Hospital
from engine.plan import PlanParams, PlanResult, plan
from engine.sim import SimParams, load_scenario, simulate


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
    whatif: WhatIf
    plan: PlanResult
    per_rep: pd.DataFrame
    kpis: dict[str, float]
    seconds: dict[str, float] = field(default_factory=dict)


def run_whatif(h: Hospital, forecasts: pd.DataFrame, start, w: WhatIf, params: PlanParams | None = None,
               reps: int = 200, seed: int = 0, scenario: str = "normal", published: pd.DataFrame | None = None) -> WhatIfRun:
    """Re-plan under the what-if and simulate it; KPIs from the plan and the simulation."""
    params = params or PlanParams()
    t0 = time.perf_counter()
    h2, f2 = apply_whatif(h, forecasts, w)
    result = plan(h2, f2, start, params, published=published)
    t1 = time.perf_counter()
    sc = load_scenario(scenario).with_(addon_multiplier=w.addon_multiplier)
    sim = simulate(h2, result.schedule, f2, sc, reps, seed, params=SimParams())
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
