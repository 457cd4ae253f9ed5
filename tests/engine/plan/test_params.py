"""Unit: PlanParams and Event refuse bad values with a ValueError naming the field."""
from __future__ import annotations

import pytest

from engine.plan import PlanParams
from engine.plan.params import ALTERNATIVES
from engine.plan.replan import Event


@pytest.mark.parametrize("field, value", [
    ("days", 0), ("days", 8), ("solver", "cplex"), ("time_limit_s", 0), ("time_limit_s", -1.0),
    ("mip_gap", -0.1), ("mip_gap", 1.0), ("gap_tolerance", 1.5), ("overtime_cap_minutes", -5),
    ("overtime_spread", 1.2), ("w_overtime", -1.0), ("w_idle_prime", -0.1), ("w_defer_case", -1),
    ("w_defer_urgent_case", -1), ("w_preference_case", -1), ("w_stability_date_case", -1),
    ("w_stability_room_case", -1), ("w_fairness", -1), ("fairness_max_gap_points", 101),
])
def test_bad_field_raises_naming_it(field: str, value) -> None:
    with pytest.raises(ValueError, match=field):
        PlanParams(**{field: value})


def test_defaults_and_alternatives_are_valid() -> None:
    p = PlanParams()
    assert p.solver == "highs" and p.days == 1 and p.time_limit_s > 0
    for name, changes in ALTERNATIVES.items():
        assert p.with_(label=name, **changes).label == name
    assert PlanParams(days=7, solver="rules", overtime_cap_minutes=0).to_dict()["days"] == 7


@pytest.mark.parametrize("kwargs, field", [
    ({"kind": "meteor"}, "kind"),
    ({"kind": "running_long"}, "case_id"),
    ({"kind": "cancellation"}, "case_id"),
    ({"kind": "room_down"}, "room_id"),
    ({"kind": "add_on", "add_on": {"case_id": "A1", "service_line": "ENT", "p50": 60}}, "add_on.p80"),
    ({"kind": "add_on", "add_on": {"service_line": "ENT", "p50": 60, "p80": 80}}, "add_on.case_id"),
    ({"kind": "running_long", "case_id": "C1", "extra_minutes": -5}, "extra_minutes"),
])
def test_bad_event_raises_naming_the_field(kwargs: dict, field: str) -> None:
    with pytest.raises(ValueError, match=field.replace(".", r"\.")):
        Event(**kwargs)


def test_good_events_describe_themselves() -> None:
    events = [Event("running_long", case_id="C1", extra_minutes=45), Event("room_down", room_id="OR1"),
              Event("cancellation", case_id="C2"),
              Event("add_on", add_on={"case_id": "A1", "service_line": "ENT", "p50": 60, "p80": 80})]
    texts = [e.describe() for e in events]
    assert "45 min" in texts[0] and "OR1" in texts[1] and "C2" in texts[2] and "A1" in texts[3]
