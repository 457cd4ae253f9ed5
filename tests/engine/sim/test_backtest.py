"""Backtest: a fixed seed on a small instance reproduces its expected figures exactly; replay."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from engine.sim import SimParams, build_instance, load_scenario, replay_week, simulate
from engine.sim.draws import make_draws
from engine.sim.rng import rep_keys

# Small generated hospital (seed 3, 6 rooms), its first two booked days as booked, the
# generator's truth as forecasts, scenario normal, 300 replications, seed 11.
EXPECTED = {
    "utilization": {"mean": 0.631581, "p5": 0.539044, "p50": 0.636442, "p95": 0.702943, "worst5_mean": 0.509937},
    "overtime_minutes": {"mean": 238.97939, "p5": 41.834302, "p50": 211.726219, "p95": 526.876752, "worst5_mean": 634.261703},
    "cancellations": {"mean": 0.976667, "p5": 0.0, "p50": 1.0, "p95": 3.0, "worst5_mean": 4.333333},
    "spillover_cases": {"mean": 0.983333, "p5": 0.0, "p50": 0.0, "p95": 4.0, "worst5_mean": 5.6},
    "pacu_hold_minutes": {"mean": 3.558795, "p5": 0.0, "p50": 0.0, "p95": 25.291736, "worst5_mean": 42.729954},
    "surgeon_idle_minutes": {"mean": 908.473315, "p5": 603.078896, "p50": 878.655744, "p95": 1269.939461, "worst5_mean": 1359.62398},
    "patient_cancellations": {"mean": 2.92, "p5": 1.0, "p50": 3.0, "p95": 6.0, "worst5_mean": 6.6},
}
SENSIBLE = {  # what a day at a 6-room hospital can look like (per 2 days)
    "utilization": (0.4, 0.95), "overtime_minutes": (0, 2000), "cancellations": (0, 8), "spillover_cases": (0, 10),
    "pacu_hold_minutes": (0, 600), "surgeon_idle_minutes": (0, 4000), "patient_cancellations": (0, 12),
}


@pytest.fixture(scope="module")
def backtest(sim_hospital, forecasts, booked_two_days, addon_fc):
    return simulate(sim_hospital[1], booked_two_days, forecasts, "normal", 300, 11, addon_fc)


def test_backtest_reproduces_expected_figures(backtest) -> None:
    for metric, want in EXPECTED.items():
        got = backtest.summary[metric]
        for stat, v in want.items():
            assert got[stat] == pytest.approx(v, abs=2e-6), (metric, stat)


def test_backtest_figures_are_sensible(backtest, booked_two_days) -> None:
    for metric, (lo, hi) in SENSIBLE.items():
        s = backtest.summary[metric]
        assert lo <= s["p5"] <= s["p50"] <= s["p95"] <= hi, metric
        assert lo <= s["mean"] <= hi
    n = int((booked_two_days["status"] == "scheduled").sum())
    pr = backtest.per_rep
    assert (pr["elective_cases_run"] + pr["cancellations"] + pr["patient_cancellations"] + pr["bumped_cases"]
            + pr["staff_cancellations"] <= n).all()
    assert (pr[["cancellations", "spillover_cases", "pacu_hold_minutes", "overtime_minutes"]] >= 0).all().all()
    assert 0 <= backtest.summary["on_time_rate"]["mean"] <= 1


def test_result_json_has_contract_keys(backtest) -> None:
    j = backtest.to_json()
    for m in ("utilization", "overtime_minutes", "cancellations", "spillover_cases", "pacu_hold_minutes", "surgeon_idle_minutes"):
        assert set(j[m]) == {"mean", "p5", "p50", "p95", "worst5_mean"}
    assert j["by_service_line"] and all("overtime_minutes" in v and "end_delay_minutes" in v for v in j["by_service_line"].values())
    assert j["reps"] == 300 and j["seed"] == 11 and j["dates"] == ["2027-01-04", "2027-01-05"]


@pytest.fixture(scope="module")
def replay(sim_hospital):
    h = sim_hospital[1]
    week = h.as_of() - pd.Timedelta(days=14)
    return replay_week(h, week, None, days=5, reps=20, seed=4, policies=("rules", "as_booked"))


def test_replay_uses_what_happened(sim_hospital, replay) -> None:
    h = sim_hospital[1]
    assert set(replay.schedules) == {"rules", "as_booked"}
    sched = replay.schedules["as_booked"]
    past = h.cases.set_index("case_id").loc[sched["case_id"]]
    assert (past["status"].isin(["completed", "cancelled"])).all() and len(sched) > 50
    assert len(replay.actuals.addons) > 0
    # Durations and patient cancellations are the real ones, identical in every replication.
    inst = build_instance(h, sched, replay.forecasts, load_scenario("normal"),
                          pd.DataFrame(columns=["date", "service_line", "expected_cases"]), SimParams(), replay.actuals)
    day = inst.days[0]
    d = make_draws(inst, day, rep_keys(4, 0, 5))
    for i, cid in enumerate(day.case_ids):
        if cid in replay.actuals.durations:
            assert (d.dur[:, i] == replay.actuals.durations[cid]).all()
        assert (d.cancel[:, i] == (cid in replay.actuals.cancelled)).all()
    assert (d.arr[:, : len(replay.actuals.addons)] == d.arr[0, : len(replay.actuals.addons)]).all()
    pc = replay.comparison.results["as_booked"].per_rep["patient_cancellations"]
    assert pc.nunique() == 1 and pc.iloc[0] == len(set(sched["case_id"]) & replay.actuals.cancelled)


def test_replay_compares_policies_on_the_same_week(replay) -> None:
    res = replay.comparison.results
    for r in res.values():
        assert 0.3 < r.summary["utilization"]["mean"] < 1.0
    p = replay.comparison.paired
    assert set(p["policy"]) == {"as_booked"} and set(p["baseline"]) == {"rules"}
    assert np.isfinite(p.loc[p["statistic"] == "mean", "diff"]).all()
