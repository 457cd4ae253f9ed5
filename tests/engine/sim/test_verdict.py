"""Leadership's comparison (issue 16, 5): optimized against rules on the same random days, with
paired intervals and a verdict in one sentence that follows the numbers."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from engine.hospital import load_hospital
from engine.plan import PlanParams, plan
from engine.settings import ServiceLevels
from engine.sim import decision_comparison, verdict_sentence
from engine.sim.verdict import judge, outcome, paired_units, service_level_table
from tests.minihospital import write_mini_hospital

DAY = pd.Timestamp("2027-01-04")


def _row(measure, unit, optimized, rules, lo, hi):
    return {"measure": measure, "unit": unit, "optimized": optimized, "rules": rules, "diff": optimized - rules,
            "ci_lo": lo, "ci_hi": hi, "ratio": optimized / rules if rules else None,
            "judgement": judge(measure, lo, hi)}


def _table(p95=(69.0, 100.0, -40.0, -20.0), pacu=(5.0, 10.0, -7.0, -3.0), util=(70.0, 70.1, -0.5, 0.3), cases=(13, 10)):
    d = cases[0] - cases[1]
    return pd.DataFrame([_row("P95 overtime", "minutes", *p95), _row("mean PACU hold", "minutes", *pacu),
                         _row("prime-time utilization", "points", *util),
                         _row("cases scheduled", "cases", cases[0], cases[1], d, d)])


def test_verdict_names_what_is_better_and_what_is_within_chance() -> None:
    t = _table()
    assert verdict_sentence(t) == ("Against your block rules: 31% less P95 overtime, PACU hold minutes halved, "
                                   "3 more cases scheduled; no clear difference in utilization.")
    assert outcome(t) == "better"


def test_a_worse_optimizer_gets_a_worse_sentence() -> None:
    t = _table(p95=(112.0, 100.0, 4.0, 20.0), pacu=(10.0, 10.0, -1.0, 1.0), util=(68.0, 70.0, -3.0, -1.0), cases=(8, 10))
    v = verdict_sentence(t)
    assert v == ("Against your block rules the optimized schedule is worse: 12% more P95 overtime, "
                 "utilization -2.0 points, 2 fewer cases scheduled; no clear difference in PACU hold minutes.")
    assert outcome(t) == "worse"


def test_mixed_results_say_but() -> None:
    t = _table(pacu=(20.0, 10.0, 5.0, 15.0))
    v = verdict_sentence(t)
    assert v.startswith("Against your block rules: 31% less P95 overtime, 3 more cases scheduled, but PACU hold minutes doubled")
    assert outcome(t) == "worse"


def test_intervals_spanning_zero_give_no_clear_difference() -> None:
    t = _table(p95=(95.0, 100.0, -20.0, 10.0), pacu=(9.0, 10.0, -3.0, 1.0), util=(70.0, 70.0, -0.2, 0.2), cases=(10, 10))
    assert verdict_sentence(t) == ("Against your block rules: no clear difference in P95 overtime, PACU hold minutes "
                                   "and utilization, and the same number of cases scheduled.")
    assert outcome(t) == "no clear difference"


def test_judge_reads_the_direction_of_each_measure() -> None:
    assert judge("P95 overtime", -5, -1) == "better" and judge("P95 overtime", 1, 5) == "worse"
    assert judge("prime-time utilization", 1, 5) == "better" and judge("deferrals", 1, 1) == "worse"
    assert judge("cases scheduled", 0, 0) == "same" and judge("mean PACU hold", -1, 1) == "no clear difference"


@pytest.fixture(scope="module")
def mini(tmp_path_factory):
    h = load_hospital(write_mini_hospital(tmp_path_factory.mktemp("v") / "mini")).hospital
    b = h.cases[h.cases["status"] == "booked"]
    fc = pd.DataFrame({"case_id": b["case_id"].to_numpy(), "p50": 240.0, "p80": 310.0, "p95": 380.0, "cancel_prob": 0.05})
    rules = plan(h, fc, DAY, PlanParams(days=2, solver="rules")).schedule
    return h, fc, rules


def _defer(schedule: pd.DataFrame, n: int) -> pd.DataFrame:
    """The schedule with its first ``n`` scheduled cases deferred: a schedule known to be worse on cases."""
    s = schedule.copy()
    ids = s.loc[s["status"] == "scheduled", "case_id"].head(n)
    hit = s["case_id"].isin(ids)
    s.loc[hit, "status"] = "deferred"
    s.loc[hit, "room_id"] = np.nan
    for col in ("start", "end_p50", "end_p80", "pacu_in", "pacu_out"):
        s.loc[hit, col] = pd.NaT
    return s


def test_decision_comparison_pairs_the_same_random_days(mini) -> None:
    h, fc, rules = mini
    worse = _defer(rules, 2)
    dc = decision_comparison(h, worse, rules, fc, "normal", reps=60, seed=1)
    t = dc.table.set_index("measure")
    assert {"P95 overtime", "mean overtime", "mean PACU hold", "prime-time utilization", "rooms past close",
            "cases scheduled", "deferrals"} <= set(t.index)
    assert set(t["unit"]) <= {"minutes", "cases", "points", "rooms"}
    assert (t["ci_lo"] <= t["diff"] + 1e-9).all() and (t["diff"] <= t["ci_hi"] + 1e-9).all()
    # The mean overtime interval is the t interval of the per-day differences: paired, not two samples.
    a = dc.comparison.results["optimized"].per_rep["overtime_minutes"].to_numpy(float)
    b = dc.comparison.results["rules"].per_rep["overtime_minutes"].to_numpy(float)
    d = a - b
    half = stats.t.ppf(0.975, len(d) - 1) * d.std(ddof=1) / math.sqrt(len(d))
    assert t.at["mean overtime", "ci_lo"] == pytest.approx(d.mean() - half)
    assert t.at["mean overtime", "ci_hi"] == pytest.approx(d.mean() + half)
    # Deferring two cases is fewer cases and less utilization: the sentence says worse.
    assert t.at["cases scheduled", "diff"] == -2 and t.at["deferrals", "judgement"] == "worse"
    assert t.at["prime-time utilization", "judgement"] == "worse"
    assert "worse" in dc.verdict and "2 fewer cases scheduled" in dc.verdict and dc.outcome == "worse"
    # The same schedule against itself: no difference, the same random days.
    same = decision_comparison(h, rules, rules, fc, "normal", reps=60, seed=1)
    assert (same.table["diff"].abs() < 1e-9).all()
    assert same.verdict.startswith("Against your block rules: no clear difference") and same.outcome == "no clear difference"


def test_paired_units_puts_utilization_in_points(mini) -> None:
    h, fc, rules = mini
    dc = decision_comparison(h, _defer(rules, 1), rules, fc, "normal", reps=30, seed=2)
    u = paired_units(dc.comparison.paired, ("utilization", "overtime_minutes", "cancellations"))
    raw = dc.comparison.paired.set_index(["metric", "statistic"])
    row = u.set_index(["metric", "statistic"])
    assert row.at[("utilization", "mean"), "unit"] == "points"
    assert row.at[("utilization", "mean"), "diff"] == pytest.approx(100 * raw.at[("utilization", "mean"), "diff"])
    assert row.at[("overtime_minutes", "mean"), "unit"] == "minutes" and row.at[("cancellations", "mean"), "unit"] == "cases"


def test_service_level_table_says_where_each_value_comes_from() -> None:
    summary = {"w_service_level_per_minute": 41.7, "w_defer_case": 1000.0, "w_pacu_peak_bed": 150.0, "keep_rules_count": True}
    t = service_level_table(ServiceLevels(finish_by_close_plus_minutes=45, finish_probability=0.9), True, summary)
    v = dict(zip(t["item"], t["value"]))
    assert v["a room finishes by close +"] == "45 min" and v["with probability at least"] == "90%"
    assert v["cost of a minute past the level"] == "41.7" and v["PACU hold budget a day"] == "none stated (0 min)"
    assert t.loc[0, "source"] == "settings.toml [service_levels]"
    default = service_level_table(ServiceLevels(), False, None)
    assert len(default) == 4 and default["source"].str.startswith("shipped default").all()
    assert dict(zip(default["item"], default["value"]))["PACU beds short the week must withstand"] == "0"
    short = service_level_table(ServiceLevels(pacu_beds_short=2), True, None)
    assert dict(zip(short["item"], short["value"]))["PACU beds short the week must withstand"] == "2"
    # The plan's PACU hold weight is shown when the plan gives it, with its budget.
    budgeted = service_level_table(ServiceLevels(pacu_hold_budget_minutes=60), True,
                                   {**summary, "w_pacu_hold_per_minute": 8.3, "pacu_hold_budget_minutes": 60.0})
    w = dict(zip(budgeted["item"], zip(budgeted["value"], budgeted["source"])))
    assert w["PACU hold budget a day"][0] == "60 min"
    assert w["cost of an expected PACU hold minute of a day"][0] == "8.3" and "budget" in w["cost of an expected PACU hold minute of a day"][1]
    assert "cost of an expected PACU hold minute of a day" not in set(t["item"])
    off = service_level_table(ServiceLevels(), True, {**summary, "w_pacu_hold_per_minute": 0.0})
    assert "not priced" in dict(zip(off["item"], off["source"]))["cost of an expected PACU hold minute of a day"]
