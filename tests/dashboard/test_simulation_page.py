from __future__ import annotations

from tests.dashboard.conftest import app
from tests.dashboard.test_schedule_page import chart_spec, check_paired_intervals_and_axes, verdict_first


def _open():
    at = app()
    at.run()
    at.switch_page("../pages/simulation.py").run()
    assert not at.exception, at.exception
    return at


def test_simulation_opens_with_the_verdict_then_distributions_tails_and_comparison(shared_trained):
    """The page runs its defaults on opening (no click): the verdict first, optimized against rules
    with paired intervals, then every policy's distributions, tails and paired differences, one
    axis per unit (no chart mixes minutes and utilization points)."""
    at = _open()
    verdict_first(at)
    check_paired_intervals_and_axes(at, "sim_decision_chart")
    tails = next(df.value for df in at.dataframe if "worst5_mean" in df.value.columns and "policy" in df.value.columns)
    assert set(tails["policy"]) == {"optimized", "rules", "as_booked"}
    assert (tails["p5"] <= tails["p95"] + 1e-9).all()
    paired = next(df.value for df in at.dataframe if "ci_lo" in df.value.columns)
    assert (paired["ci_lo"] <= paired["ci_hi"] + 1e-9).all()
    assert set(paired["unit"]) >= {"minutes", "points"}
    spec = chart_spec(at, "sim_paired")
    axis_of = {}
    for tr in spec["data"]:
        for y in tr["y"]:
            axis_of.setdefault(y, set()).add(tr.get("xaxis", "x"))
    util = set().union(*(a for y, a in axis_of.items() if y.startswith("prime-time utilization")))
    minutes = set().union(*(a for y, a in axis_of.items() if y.startswith("staff overtime")))
    assert util and minutes and not util & minutes
    assert len(at.get("plotly_chart")) >= 4  # decision intervals, violin, ECDF, paired intervals


def test_the_verdict_needs_both_optimized_and_rules(shared_trained):
    at = _open()
    at.multiselect(key="sim_policies").set_value(["rules", "as_booked"])
    at.get("form_submit_button")[0].click().run()
    assert not at.exception
    assert any("Choose both the optimized and the rules policy" in i.value for i in at.info)
    assert not any("Against your block rules" in str(n.value) for n in [*at.success, *at.warning, *at.info])


def test_inflating_durations_raises_simulated_overtime(shared_trained):
    at = _open()
    at.number_input(key="sim_reps").set_value(100)
    at.multiselect(key="sim_policies").set_value(["rules"])
    at.get("form_submit_button")[0].click().run()
    base = next(df.value for df in at.dataframe if "worst5_mean" in df.value.columns)
    ot0 = float(base.set_index("metric").loc["overtime_minutes", "mean"])
    at.slider(key="sim_knob_duration_inflation").set_value((0.4, 0.4))
    at.get("form_submit_button")[0].click().run()
    after = next(df.value for df in at.dataframe if "worst5_mean" in df.value.columns)
    assert float(after.set_index("metric").loc["overtime_minutes", "mean"]) > ot0


def test_no_policy_chosen_is_a_clear_error(shared_trained):
    at = _open()
    at.multiselect(key="sim_policies").set_value([])
    at.get("form_submit_button")[0].click().run()
    assert any("at least one policy" in e.value for e in at.error)
