from __future__ import annotations


from tests.dashboard.conftest import app


def _open():
    at = app()
    at.run()
    at.switch_page("../pages/simulation.py").run()
    assert not at.exception, at.exception
    return at


def test_simulation_runs_policies_and_shows_distributions_tails_and_comparison(trained):
    at = _open()
    at.number_input(key="sim_reps").set_value(100)
    at.get("form_submit_button")[0].click().run()
    assert not at.exception
    tails = next(df.value for df in at.dataframe if "worst5_mean" in df.value.columns and "policy" in df.value.columns)
    assert set(tails["policy"]) == {"optimized", "rules", "as_booked"}
    assert (tails["p5"] <= tails["p95"] + 1e-9).all()
    paired = next(df.value for df in at.dataframe if "ci_lo" in df.value.columns)
    assert (paired["ci_lo"] <= paired["ci_hi"] + 1e-9).all()
    assert len(at.get("plotly_chart")) >= 3  # violin, ECDF, paired intervals


def test_inflating_durations_raises_simulated_overtime(trained):
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


def test_no_policy_chosen_is_a_clear_error(trained):
    at = _open()
    at.multiselect(key="sim_policies").set_value([])
    at.get("form_submit_button")[0].click().run()
    assert any("at least one policy" in e.value for e in at.error)
