"""The leadership frontier (issue 16, 5): cases scheduled against P95 overtime, the rules schedule a
point on it, every point simulated on the same random days as the verdict."""
from __future__ import annotations

import pandas as pd

from engine.hospital import load_hospital
from engine.overview import CURRENT, RULES, frontier
from engine.plan import PlanParams, plan
from engine.sim import decision_comparison
from tests.minihospital import write_mini_hospital

DAY = pd.Timestamp("2027-01-04")


def test_frontier_holds_the_rules_point_and_the_verdicts_numbers(tmp_path) -> None:
    h = load_hospital(write_mini_hospital(tmp_path / "mini")).hospital
    b = h.cases[h.cases["status"] == "booked"]
    fc = pd.DataFrame({"case_id": b["case_id"].to_numpy(), "p50": 240.0, "p80": 310.0, "p95": 380.0, "cancel_prob": 0.05})
    base = PlanParams(days=2, time_limit_s=10)
    cur, rules = plan(h, fc, DAY, base), plan(h, fc, DAY, base.with_(solver="rules"))
    f = frontier(h, fc, DAY, base, factors=(0.25, 16.0), reps=40, seed=3, plans={CURRENT: cur, RULES: rules})
    assert list(f["point"]) == [RULES, CURRENT, "risk x0.25", "risk x16"]
    pts = f.set_index("point")
    assert pts.at[RULES, "solver"] == "rules" and pts.at[CURRENT, "current_policy"] and f["current_policy"].sum() == 1
    # The points are the plans given: their planned counts.
    assert pts.at[RULES, "cases_scheduled"] == int((rules.schedule["status"] == "scheduled").sum())
    assert pts.at[CURRENT, "cases_scheduled"] == cur.kpis["n_scheduled"]
    assert (f["cases_scheduled"] + f["deferred_cases"] == len(b)).all()
    assert (f["p95_overtime_lo"] <= f["p95_overtime_minutes"] + 1e-9).all()
    assert (f["p95_overtime_minutes"] <= f["p95_overtime_hi"] + 1e-9).all()
    assert pts.at[RULES, "p95_vs_rules_lo"] == pts.at[RULES, "p95_vs_rules_hi"] == 0.0
    # Same seed, same random days: the rules and current points carry the verdict's own numbers.
    dc = decision_comparison(h, cur.schedule, rules.schedule, fc, "normal", reps=40, seed=3).table.set_index("measure")
    assert pts.at[RULES, "p95_overtime_minutes"] == dc.at["P95 overtime", "rules"]
    assert pts.at[CURRENT, "p95_overtime_minutes"] == dc.at["P95 overtime", "optimized"]
