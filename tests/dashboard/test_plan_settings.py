"""The dashboard's plan settings have one home (state.default_plan_params): PlanParams' defaults with the
deployment's OR_PLAN_PARAMS, which every page's plans (and the what-ifs' and the fairness cost's) start from.
No Streamlit run and no solver."""
from __future__ import annotations

import pytest

from dashboard import state
from dashboard import whatif_state as ws
from engine.plan import PlanParams


def test_without_the_variable_the_dashboard_plans_with_plan_params_defaults(monkeypatch):
    monkeypatch.delenv(state.PLAN_PARAMS_ENV, raising=False)
    assert state.plan_overrides() == {}
    assert state.default_plan_params() == PlanParams()
    assert state.default_plan_params(days=3) == PlanParams(days=3)
    assert ws.plan_params("rules") == PlanParams(solver="rules", time_limit_s=ws.WHATIF_TIME_LIMIT_S)


def test_the_variable_changes_every_dashboard_plan_and_a_page_change_wins(monkeypatch):
    monkeypatch.setenv(state.PLAN_PARAMS_ENV, " sequence_time_limit_s=0.5, time_limit_s=12 ,sequencer=greedy,"
                                              "w_service_level=none,hold_addon_rooms=false,days=2")
    assert state.plan_overrides() == {"sequence_time_limit_s": 0.5, "time_limit_s": 12.0, "sequencer": "greedy",
                                      "w_service_level": None, "hold_addon_rooms": False, "days": 2}
    p = state.default_plan_params(days=1)
    assert (p.sequence_time_limit_s, p.time_limit_s, p.sequencer, p.hold_addon_rooms, p.days) == (0.5, 12.0, "greedy", False, 1)
    assert state.default_plan_time_limit_s() == 12.0
    w = ws.plan_params()
    assert (w.sequence_time_limit_s, w.time_limit_s, w.solver) == (0.5, ws.WHATIF_TIME_LIMIT_S, PlanParams().solver)
    assert state._optimizer_params(p.with_(solver="rules")).sequence_time_limit_s == 0.5


@pytest.mark.parametrize("text,named", [("sequence_limit=1", "sequence_limit=1"), ("time_limit_s", "time_limit_s"),
                                        ("time_limit_s=fast", "time_limit_s='fast'"), ("days=1.5", "days='1.5'"),
                                        ("allow_open_time=maybe", "allow_open_time='maybe'")])
def test_a_bad_pair_names_the_variable_and_the_pair(monkeypatch, text, named):
    monkeypatch.setenv(state.PLAN_PARAMS_ENV, text)
    with pytest.raises(ValueError) as err:
        state.default_plan_params()
    assert state.PLAN_PARAMS_ENV in str(err.value) and named in str(err.value)


def test_a_value_plan_params_refuses_names_its_field(monkeypatch):
    monkeypatch.setenv(state.PLAN_PARAMS_ENV, "sequence_time_limit_s=0")
    with pytest.raises(ValueError, match="sequence_time_limit_s must be > 0"):
        state.default_plan_params()
