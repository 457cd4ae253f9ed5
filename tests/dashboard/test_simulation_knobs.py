"""Simulation knobs start from the chosen scenario's values and the run uses them (issue 14, defect 6)."""
from __future__ import annotations

import pytest

from engine.sim import load_scenario
from tests.dashboard.conftest import app

pytestmark = pytest.mark.slow


def test_choosing_a_scenario_sets_its_knobs_and_the_run_uses_them(trained, monkeypatch):
    import engine.sim

    used = []
    orig = engine.sim.compare_policies

    def spy(h, schedules, fc, scenario, *a, **kw):
        used.append(scenario)
        return orig(h, schedules, fc, scenario, *a, **kw)

    monkeypatch.setattr(engine.sim, "compare_policies", spy)
    at = app()
    at.run()
    at.switch_page("../pages/simulation.py").run()
    assert not at.exception, at.exception
    normal = load_scenario("normal")
    assert at.slider(key="sim_knob_late_start_prob").value == normal.bounds("late_start_prob")
    at.selectbox(key="sim_scenario").set_value("staff_shortage").run()
    sc = load_scenario("staff_shortage")
    for knob in ("late_start_prob", "duration_inflation", "cancel_multiplier", "room_downtime_prob"):
        assert tuple(at.slider(key=f"sim_knob_{knob}").value) == pytest.approx(sc.bounds(knob)), knob
    assert at.slider(key="sim_knob_late_start_prob").value[0] == pytest.approx(0.5)
    assert tuple(at.slider(key="sim_knob_duration_inflation").value) == pytest.approx((0.0, 0.05))
    at.number_input(key="sim_reps").set_value(50)
    at.multiselect(key="sim_policies").set_value(["rules"])
    at.get("form_submit_button")[0].click().run()
    assert not at.exception, at.exception
    ran = used[-1]
    assert ran.name == "staff_shortage"
    assert ran.knobs["late_start_prob"] == pytest.approx(0.5)
    assert ran.knobs["duration_inflation"] == pytest.approx((0.0, 0.05))
    assert ran.knobs["staffed_rooms_delta"] == -2  # knobs the page does not show still come from the file
