"""The outcome gate (G-OUTCOMES): thresholds on what happened, kept by `monitor`; tripped, it withholds the
next publish with a plain reason; within the limits it does not."""
from __future__ import annotations

import pytest

from engine.governance import GateParams, GateResult, Governance, PublicationWithheld, evaluate_gates, read_log
from engine.governance.gates import gate_outcomes
from engine.pilot.monitor import latest_outcomes, monitor
from tests.engine.governance.conftest import COORD, LEAD

OK = {"days": ["2026-12-14", "2026-12-15"], "n_days": 2, "overtime_minutes_per_room_day": 20.0,
      "start_delay_mean_minutes": 10.0, "coverage_p80": 0.8, "pacu_hold_minutes_per_case": 2.0, "override_rate": 0.0}


def test_nothing_monitored_passes_and_says_so() -> None:
    g = gate_outcomes(None, GateParams())
    assert g.passed and "python -m engine monitor" in g.message


def test_each_threshold_names_what_broke() -> None:
    p = GateParams()
    assert gate_outcomes(OK, p).passed
    g = gate_outcomes({**OK, "overtime_minutes_per_room_day": 75.0}, p)
    assert not g.passed and "overtime of 75 min per room-day, above the 60 min limit" in g.message
    assert "2026-12-14 to 2026-12-15" in g.message and "Planned against actual" in g.inspect_next
    g = gate_outcomes({**OK, "coverage_p80": 0.42, "start_delay_mean_minutes": 50.0}, p)
    assert "only 42% of actual durations within the plans' P80, below the 60% floor" in g.message
    assert "50 min after their planned start" in g.message
    assert "PACU holds of 30 min" in gate_outcomes({**OK, "pacu_hold_minutes_per_case": 30.0}, p).message
    assert gate_outcomes({**OK, "coverage_p80": None}, p).passed  # no product forecast judged: not a breach
    with pytest.raises(ValueError, match="min_coverage_p80"):
        GateParams(min_coverage_p80=1.5)
    with pytest.raises(ValueError, match="outcome_window_days"):
        GateParams(outcome_window_days=0)


def test_thresholds_come_from_the_catalog() -> None:
    from engine.governance import load_catalog

    catalog = load_catalog()
    base = GateParams.from_catalog(catalog)
    assert base.max_overtime_minutes_per_room_day == catalog.param("G-OUTCOMES", "max_overtime_minutes_per_room_day",
                                                                   GateParams().max_overtime_minutes_per_room_day)
    import dataclasses

    rules = dict(catalog.rules)
    rules["G-OUTCOMES"] = dataclasses.replace(rules["G-OVERRIDE"], id="G-OUTCOMES", mode="monitored",
                                              params={"window_days": 3, "min_coverage_p80": 0.7})
    p = GateParams.from_catalog(dataclasses.replace(catalog, rules=rules))
    assert p.outcome_window_days == 3 and p.min_coverage_p80 == 0.7 and "outcomes" not in p.enforced


def _publish_past_days(gov: Governance, hid: str, hospital, days) -> None:
    """Publish a rules plan for each past day (as planned the evening before), as if the product had run then."""
    from engine.pilot.shadow import planning_hospital
    from engine.plan import PlanParams, plan
    from tests.engine.governance.conftest import forecasts_for

    for d in days:
        hp = planning_hospital(hospital, d)
        v = gov.propose(hid, plan(hp, forecasts_for(hp), d, PlanParams(days=1, solver="rules")), COORD, hospital=hp)
        gov.approve(v.version_id, LEAD)
        gov.publish(v.version_id, COORD, [GateResult("feeds", True, "ok")], hospital=hp)


def test_tripped_outcome_gate_withholds_the_next_publish(gov: Governance, hid: str, hospital, planned, loaded) -> None:
    days = sorted(d for d in hospital.cases.loc[hospital.cases["status"] == "completed", "surgery_date"].unique()
                  if d.weekday() < 5)[-3:]
    monitor(gov.engine, hid, hospital, days[:1], actor=("carol", "coordinator"))
    assert latest_outcomes(gov.engine, hid) is None  # a day on the hospital's own schedule does not judge the product
    _publish_past_days(gov, hid, hospital, days[1:])
    monitor(gov.engine, hid, hospital, days, actor=("carol", "coordinator"))
    outcomes = latest_outcomes(gov.engine, hid)
    assert outcomes["n_days"] == 2 and outcomes["days"] == [f"{d:%Y-%m-%d}" for d in days[1:]]
    v = gov.propose(hid, planned, COORD, hospital=hospital)
    gov.approve(v.version_id, LEAD)
    strict = GateParams(max_overtime_minutes_per_room_day=0.0, max_start_delay_minutes=0.0, min_coverage_p80=1.0)
    res = evaluate_gates(hospital, plan_json=planned.to_json(), quality=loaded.report, override_rate=0.0,
                         schedule=planned.schedule, params=strict, outcomes=outcomes)
    g = {r.gate: r for r in res}["outcomes"]
    assert not g.passed and g.withholds and g.rule_id == "G-OUTCOMES" and "breaks the outcome limits" in g.message
    with pytest.raises(PublicationWithheld, match="outcomes"):
        gov.publish(v.version_id, COORD, res, hospital=hospital)
    e = read_log(gov.engine, hid).iloc[-1]
    assert e["kind"] == "publish_withheld" and "outcomes" in e["payload"]["failed"]
    # the dashboard's and the API's path: check_gates reads the kept days itself, publish uses its recorded decision
    res = gov.check_gates(v.version_id, COORD, loaded, params=strict)
    assert not {r.gate: r for r in res}["outcomes"].passed
    with pytest.raises(PublicationWithheld, match="outcomes"):
        gov.publish(v.version_id, COORD, hospital=hospital)
    # the same days under limits they meet: the outcome gate does not withhold, the version publishes
    lax = GateParams(max_overtime_minutes_per_room_day=10_000, max_start_delay_minutes=10_000, min_coverage_p80=0.0,
                     max_pacu_hold_minutes_per_case=10_000)
    res = evaluate_gates(hospital, plan_json=planned.to_json(), quality=loaded.report, override_rate=0.0,
                         schedule=planned.schedule, params=lax, outcomes=outcomes)
    assert {r.gate: r for r in res}["outcomes"].passed
    other = [r for r in res if r.withholds]
    assert other == [], [r.message for r in other]
    assert gov.publish(v.version_id, COORD, res, hospital=hospital).status == "published"
