"""Rollback (to the last approved or the rules-based schedule) and the rollback drill: a broken feed, a stale
model artefact and a mislabelled specialty code each end in a safe, explained state."""
from __future__ import annotations

import pandas as pd
import pytest

from engine.errors import InputError
from engine.governance import (
    GateResult,
    Governance,
    PublicationWithheld,
    WorkflowError,
    booked_forecasts,
    read_log,
    rules_schedule,
    verify_chain,
)
from engine.hospital import load_hospital
from engine.plan import PlanParams, plan
from tests.engine.governance.conftest import BOARD, COORD, LEAD, VIEWER, forecasts_for
from tests.engine.governance.test_gates import GOOD_MODEL, edit_csv
from tests.feasibility import check_schedule

CLEAR = [GateResult("feeds", True, "ok")]


def _publish(gov: Governance, hid: str, result, hospital):
    v = gov.propose(hid, result, COORD, hospital=hospital)
    gov.approve(v.version_id, LEAD)
    return gov.publish(v.version_id, COORD, CLEAR)


def test_rollback_to_last_approved_keeps_history(gov: Governance, hid: str, planned, hospital, forecasts, day1) -> None:
    with pytest.raises(WorkflowError, match="Nothing is published for 2027-01-04"):
        gov.rollback(hid, day1, COORD, reason="test")
    a = _publish(gov, hid, planned, hospital)
    b_result = plan(hospital, forecasts, day1, PlanParams(days=1, solver="highs", w_overtime=0.5, w_idle_prime=3.0))
    b = _publish(gov, hid, b_result, hospital)
    with pytest.raises(WorkflowError, match="a reason is required"):
        gov.rollback(hid, day1, COORD, reason=" ")
    with pytest.raises(PermissionError, match="may not roll back"):
        gov.rollback(hid, day1, VIEWER, reason="x")
    with pytest.raises(PermissionError, match="may not roll back"):
        gov.rollback(hid, day1, BOARD, reason="x")
    r = gov.rollback(hid, day1, COORD, reason="surgeons report Monday's new plan is unworkable")
    assert r.status == "published" and r.source == "rollback" and r.parent_id == a.version_id and r.rollback_of == b.version_id
    assert r.approved_by == "lena"  # it carries the approval of the schedule it restores
    hist = gov.history(hid).set_index("version_id")
    assert hist.loc[a.version_id, "status"] == "superseded"
    assert hist.loc[b.version_id, "status"] == "rolled_back"
    assert hist.loc[b.version_id, "status_note"] == "surgeons report Monday's new plan is unworkable"
    assert hist.loc[b.version_id, "superseded_by"] == r.version_id
    base = gov.current_published(hid, day1)
    assert base.attrs["version_ids"] == [r.version_id]
    pd.testing.assert_frame_equal(base.reset_index(drop=True), gov.version(a.version_id).schedule.reset_index(drop=True))
    # nothing lost: the rolled-back schedule is still there in full
    assert len(gov.version(b.version_id).schedule) == len(b_result.schedule)
    entry = read_log(gov.engine, hid).iloc[-1]
    assert entry["kind"] == "rollback" and entry["payload"]["rolled_back"] == b.version_id
    assert entry["payload"]["target_version_id"] == a.version_id and entry["payload"]["new_version_id"] == r.version_id
    # rolling back the rollback does not return to the same schedule
    with pytest.raises(WorkflowError, match="roll back to the rules-based schedule instead"):
        gov.rollback(hid, day1, LEAD, reason="again")


def test_rollback_to_rules_based(gov: Governance, hid: str, planned, hospital, day1) -> None:
    p = _publish(gov, hid, planned, hospital)
    with pytest.raises(WorkflowError, match="Pass the rules-based schedule"):
        gov.rollback(hid, day1, COORD, to="rules", reason="optimizer schedule suspect")
    wrong_day = rules_schedule(hospital, day1 + pd.Timedelta(days=1), days=1)
    with pytest.raises(WorkflowError, match="outside the horizon 2027-01-04..2027-01-04"):
        gov.rollback(hid, day1, COORD, to="rules", rules=wrong_day, reason="x")
    rules = rules_schedule(hospital, day1, days=1)
    assert rules.kpis["solver"] == "rules" and rules.banner is None
    assert check_schedule(hospital, rules.schedule, horizon_dates=[day1]) == []
    r = gov.rollback(hid, day1, LEAD, to="rules", rules=rules, reason="optimizer schedule suspect")
    assert r.source == "rules" and r.status == "published" and r.rollback_of == p.version_id and r.model_version is None
    assert r.plan["solver"] == "rules" and not r.plan["fallback_used"]
    assert gov.history(hid).set_index("version_id").loc[p.version_id, "status"] == "rolled_back"
    assert gov.current_published(hid, day1).attrs["version_ids"] == [r.version_id]
    assert verify_chain(gov.engine, hid).ok


def test_booked_forecasts_cover_every_booked_case(hospital) -> None:
    f = booked_forecasts(hospital)
    booked = hospital.cases[hospital.cases["status"] == "booked"]
    assert len(f) == len(booked) and f["p50"].notna().all() and (f["p80"] >= f["p50"]).all()
    with pytest.raises(ValueError, match="p80_factor"):
        booked_forecasts(hospital, p80_factor=0.5)


# --------------------------------------------------------------------------- rollback drill


@pytest.fixture
def in_force(gov: Governance, hid: str, planned, hospital):
    """A good schedule is published for day 1: the state the drill must not lose."""
    return _publish(gov, hid, planned, hospital)


def test_drill_broken_feed(gov: Governance, hid: str, in_force, folder_copy, day1) -> None:
    edit_csv(folder_copy, "staffing.csv", lambda df: df[df["date"] <= "2027-01-05"])  # the rostering feed broke
    loaded = load_hospital(folder_copy)
    h = loaded.hospital
    v = gov.propose(hid, plan(h, forecasts_for(h), day1, PlanParams(days=1)), COORD, hospital=h)
    gov.approve(v.version_id, LEAD)
    gates = gov.check_gates(v.version_id, COORD, h, model=GOOD_MODEL, quality=loaded.report)
    with pytest.raises(PublicationWithheld) as exc:
        gov.publish(v.version_id, COORD, gates)
    msg = str(exc.value)
    assert "feeds: The staffing feed reaches only 2 days ahead" in msg and "Inspect next: Check the staffing feed (staffing.csv)" in msg
    assert gov.current_published(hid, day1).attrs["version_ids"] == [in_force.version_id]  # the safe schedule stays
    kinds = list(read_log(gov.engine, hid)["kind"])
    assert kinds[-2:] == ["gate_decision", "publish_withheld"]


def test_drill_stale_model_artefact(gov: Governance, hid: str, in_force, hospital, loaded, forecasts, day1) -> None:
    stale = {**GOOD_MODEL, "train_until": "2026-08-01"}
    v = gov.propose(hid, plan(hospital, forecasts, day1, PlanParams(days=1)), COORD, hospital=hospital, model=stale)
    gov.approve(v.version_id, LEAD)
    gates = gov.check_gates(v.version_id, COORD, hospital, model=stale, quality=loaded.report)
    failed = [g for g in gates if g.withholds]
    assert [g.gate for g in failed] == ["model"]
    assert "156 days before the as-of date" in failed[0].message and "Retrain" in failed[0].inspect_next
    with pytest.raises(PublicationWithheld):
        gov.publish(v.version_id, COORD, gates)
    # the coordinator falls back to the rules-based schedule on booked durations: no model involved
    rules = rules_schedule(hospital, day1, days=1)
    r = gov.rollback(hid, day1, COORD, to="rules", rules=rules, reason="model artefact stale; gates withheld the new plan")
    assert gov.current_published(hid, day1).attrs["version_ids"] == [r.version_id]
    regated = gov.check_gates(r.version_id, COORD, hospital, model=None, quality=loaded.report)
    assert not [g for g in regated if g.withholds], [g.message for g in regated if g.withholds]
    assert verify_chain(gov.engine, hid).ok


def test_drill_mislabelled_specialty_code(gov: Governance, hid: str, in_force, folder_copy, day1) -> None:
    def relabel(df):
        hit = (df["status"] == "booked") & (df["service_line"] == "Orthopedics") & (df["surgery_date"] == "2027-01-04")
        df.loc[hit, "service_line"] = "ORTHO"
        return df

    edit_csv(folder_copy, "cases.csv", relabel)
    loaded = load_hospital(folder_copy)  # the rows are quarantined, the folder still loads
    h = loaded.hospital
    assert loaded.report.n_quarantined > 0
    res = plan(h, forecasts_for(h), day1, PlanParams(days=1))
    assert "ORTHO" not in set(res.schedule["service_line"])  # those cases silently vanished from the plan
    v = gov.propose(hid, res, COORD, hospital=h)
    gov.approve(v.version_id, LEAD)
    gates = gov.check_gates(v.version_id, COORD, h, model=GOOD_MODEL, quality=loaded.report)
    g = {x.gate: x for x in gates}["service_lines"]
    assert not g.passed and "'ORTHO' (" in g.message and "not in this hospital's catalog of service lines" in g.message
    assert "specialty-code mapping" in g.inspect_next and "Orthopedics" in g.inspect_next
    with pytest.raises(PublicationWithheld, match="service_lines"):
        gov.publish(v.version_id, COORD, gates)
    assert gov.current_published(hid, day1).attrs["version_ids"] == [in_force.version_id]


def test_drill_wholesale_relabel_is_rejected_at_import(folder_copy) -> None:
    edit_csv(folder_copy, "cases.csv", lambda df: df.assign(service_line=df["service_line"].replace("Orthopedics", "ORTHO")))
    with pytest.raises(InputError, match=r"cases.csv.*unknown service line 'ORTHO'"):
        load_hospital(folder_copy)
