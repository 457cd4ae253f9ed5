"""Leadership's comparison (issue 16, 5): optimized against rules on the same random days, with
paired intervals and a verdict in one sentence."""
from __future__ import annotations

import pandas as pd

from engine.hospital import load_hospital
from engine.plan import PlanParams, plan
from engine.sim import decision_comparison, verdict_sentence
from tests.minihospital import write_mini_hospital

DAY = pd.Timestamp("2027-01-04")


def test_verdict_names_the_changes_whose_interval_excludes_zero() -> None:
    t = pd.DataFrame([
        {"measure": "P95 overtime", "unit": "minutes", "optimized": 69.0, "rules": 100.0, "diff": -31.0, "ci_lo": -40.0, "ci_hi": -20.0, "ratio": 0.69},
        {"measure": "mean PACU hold", "unit": "minutes", "optimized": 5.0, "rules": 10.0, "diff": -5.0, "ci_lo": -7.0, "ci_hi": -3.0, "ratio": 0.5},
        {"measure": "prime-time utilization", "unit": "points", "optimized": 70.0, "rules": 70.1, "diff": -0.1, "ci_lo": -0.5, "ci_hi": 0.3, "ratio": 1.0},
        {"measure": "cases scheduled", "unit": "cases", "optimized": 13, "rules": 10, "diff": 3, "ci_lo": 3, "ci_hi": 3, "ratio": 1.3},
    ])
    v = verdict_sentence(t)
    assert v == "Against your block rules: 31% less P95 overtime, PACU hold minutes halved, 3 more cases scheduled."


def test_decision_comparison_pairs_the_same_random_days(tmp_path) -> None:
    h = load_hospital(write_mini_hospital(tmp_path / "mini")).hospital
    b = h.cases[h.cases["status"] == "booked"]
    fc = pd.DataFrame({"case_id": b["case_id"].to_numpy(), "p50": 150.0, "p80": 190.0, "p95": 230.0, "cancel_prob": 0.05})
    opt = plan(h, fc, DAY, PlanParams(days=2, time_limit_s=10)).schedule
    rules = plan(h, fc, DAY, PlanParams(days=2, solver="rules")).schedule
    dc = decision_comparison(h, opt, rules, fc, "normal", reps=40, seed=1)
    t = dc.table.set_index("measure")
    assert {"P95 overtime", "mean overtime", "mean PACU hold", "prime-time utilization", "rooms past close",
            "cases scheduled", "deferrals"} <= set(t.index)
    assert set(t["unit"]) <= {"minutes", "cases", "points", "rooms"}
    assert (t["ci_lo"] <= t["diff"] + 1e-9).all() and (t["diff"] <= t["ci_hi"] + 1e-9).all()
    assert dc.verdict.startswith("Against your block rules:") and dc.verdict.endswith(".")
    # The same schedule against itself: no difference, the same random days.
    same = decision_comparison(h, rules, rules, fc, "normal", reps=40, seed=1).table.set_index("measure")
    assert (same["diff"].abs() < 1e-9).all()
