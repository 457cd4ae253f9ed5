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
from engine.governance import User
from tests.engine.governance.conftest import BOARD, COORD, LEAD, VIEWER, forecasts_for
from tests.engine.governance.test_gates import GOOD_MODEL, edit_csv
from tests.feasibility import check_schedule

CLEAR = [GateResult("feeds", True, "ok")]


def _publish(gov: Governance, hid: str, result, hospital):
    v = gov.propose(hid, result, COORD, hospital=hospital)
    gov.approve(v.version_id, LEAD)
    return gov.publish(v.version_id, COORD, CLEAR, hospital=hospital)


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
    # the target's hard rules were checked when it was published (audited): no hospital needed to restore it
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
        gov.rollback(hid, day1, LEAD, reason="again", hospital=hospital)


def test_rollback_to_rules_based_goes_through_approval(gov: Governance, hid: str, planned, hospital, loaded, day1) -> None:
    """Issue 14: a rules rollback published a reshuffled day at once, with nobody approving it. It is now a
    proposed version; the version in force stays until leadership approves and the rules schedule is published."""
    p = _publish(gov, hid, planned, hospital)
    with pytest.raises(WorkflowError, match="Pass the rules-based schedule"):
        gov.rollback(hid, day1, COORD, to="rules", reason="optimizer schedule suspect")
    wrong_day = rules_schedule(hospital, day1 + pd.Timedelta(days=1), days=1)
    with pytest.raises(WorkflowError, match="outside the horizon 2027-01-04..2027-01-04"):
        gov.rollback(hid, day1, COORD, to="rules", rules=wrong_day, reason="x")
    rules = rules_schedule(hospital, day1, days=1)
    assert rules.kpis["solver"] == "rules" and rules.banner is None
    assert check_schedule(hospital, rules.schedule, horizon_dates=[day1]) == []
    r = gov.rollback(hid, day1, COORD, to="rules", rules=rules, reason="optimizer schedule suspect")
    assert r.status == "proposed" and r.source == "rules" and r.rollback_of == p.version_id and r.model_version is None
    assert r.plan["solver"] == "rules" and not r.plan["fallback_used"]
    # nothing changed for the day yet: the optimizer schedule is still the one in force
    assert gov.current_published(hid, day1).attrs["version_ids"] == [p.version_id]
    assert gov.version(p.version_id).status == "published"
    assert read_log(gov.engine, hid).iloc[-1]["kind"] == "rollback_proposed"
    with pytest.raises(WorkflowError, match="only an approved schedule can be published"):
        gov.publish(r.version_id, COORD, CLEAR, hospital=hospital)
    with pytest.raises(PermissionError, match="another person must approve"):
        gov.approve(r.version_id, User("carol", "leadership"))  # four eyes hold for a rollback too
    gov.approve(r.version_id, LEAD)
    gates = gov.check_gates(r.version_id, COORD, hospital, model=None, quality=loaded.report)
    assert {g.gate: g for g in gates}["hard_rules"].passed
    pub = gov.publish(r.version_id, COORD)
    assert pub.status == "published" and pub.approved_by == "lena"
    assert gov.history(hid).set_index("version_id").loc[p.version_id, "status"] == "rolled_back"
    assert gov.current_published(hid, day1).attrs["version_ids"] == [r.version_id]
    assert read_log(gov.engine, hid).iloc[-1]["payload"]["rolled_back"] == p.version_id
    assert verify_chain(gov.engine, hid).ok


def test_emergency_rollback_to_rules_publishes_at_once_and_is_audited_as_one(gov: Governance, hid: str, planned,
                                                                            hospital, day1) -> None:
    p = _publish(gov, hid, planned, hospital)
    rules = rules_schedule(hospital, day1, days=1)
    with pytest.raises(WorkflowError, match="needs a note"):
        gov.rollback(hid, day1, COORD, to="rules", rules=rules, reason=" ", emergency=True, hospital=hospital)
    with pytest.raises(WorkflowError, match="pass the hospital"):
        gov.rollback(hid, day1, COORD, to="rules", rules=rules, reason="solver host down", emergency=True)
    with pytest.raises(PermissionError, match="may not roll back"):
        gov.rollback(hid, day1, VIEWER, to="rules", rules=rules, reason="x", emergency=True, hospital=hospital)
    r = gov.rollback(hid, day1, LEAD, to="rules", rules=rules, reason="solver host down, theatres open in 20 min",
                     emergency=True, hospital=hospital)
    assert r.status == "published" and r.source == "rules" and r.rollback_of == p.version_id and r.approved_by is None
    assert r.note.startswith("EMERGENCY rollback of version")
    assert gov.history(hid).set_index("version_id").loc[p.version_id, "status"] == "rolled_back"
    entry = read_log(gov.engine, hid).iloc[-1]
    assert entry["kind"] == "emergency_rollback" and entry["payload"]["emergency"] is True
    assert entry["payload"]["approval"] == "none: emergency exception"
    assert entry["payload"]["hard_rules"].startswith("No hard rule is broken")
    assert verify_chain(gov.engine, hid).ok


def test_emergency_rollback_still_refuses_a_schedule_that_breaks_a_hard_rule(gov: Governance, hid: str, planned,
                                                                            hospital, day1) -> None:
    p = _publish(gov, hid, planned, hospital)
    rules = rules_schedule(hospital, day1, days=1).schedule.copy()
    s = rules[rules["status"] == "scheduled"]
    a, b = s.iloc[0], s[s["room_id"] != s.iloc[0]["room_id"]].iloc[0]
    i = rules.index[rules["case_id"] == b["case_id"]][0]
    rules.loc[i, ["room_id", "start", "end_p50", "end_p80", "pacu_in", "pacu_out"]] = [
        a["room_id"], a["start"], a["end_p50"], a["end_p80"], a["pacu_in"], a["pacu_out"]]  # double booked
    with pytest.raises(PublicationWithheld, match="hard_rules: The schedule breaks") as exc:
        gov.rollback(hid, day1, LEAD, to="rules", rules=rules, reason="x", emergency=True, hospital=hospital)
    assert "H4" in exc.value.gates[0].details["rules_broken"]
    assert gov.current_published(hid, day1).attrs["version_ids"] == [p.version_id]
    assert read_log(gov.engine, hid).iloc[-1]["kind"] == "rollback_withheld"


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
    r = gov.rollback(hid, day1, COORD, to="rules", rules=rules, reason="model artefact stale; gates withheld the new plan",
                     emergency=True, hospital=hospital)
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


def test_rollback_never_restores_an_approved_schedule_that_breaks_a_hard_rule(gov: Governance, hid: str, planned,
                                                                               hospital, forecasts, day1) -> None:
    from engine.governance import Override

    a = _publish(gov, hid, planned, hospital)
    s = planned.schedule[planned.schedule["status"] == "scheduled"].sort_values(["room_id", "start"])
    host = s.iloc[0]
    mover = s[s["room_id"] != host["room_id"]].iloc[0]
    bad = gov.override(a.version_id, Override(mover["case_id"], "move", "surgeon_request", room_id=host["room_id"],
                                              start=f"{pd.Timestamp(host['start']):%H:%M}"),
                       COORD, hospital=hospital, allow_violations=True)
    gov.approve(bad.version_id, LEAD)  # approved, never published: the last approved schedule before the next one
    c = _publish(gov, hid, plan(hospital, forecasts, day1, PlanParams(days=1, solver="rules")), hospital)
    with pytest.raises(PublicationWithheld, match="never checked"):
        gov.rollback(hid, day1, COORD, reason="back")
    with pytest.raises(PublicationWithheld, match="H4"):
        gov.rollback(hid, day1, COORD, reason="back", hospital=hospital)
    assert gov.current_published(hid, day1).attrs["version_ids"] == [c.version_id]
    assert read_log(gov.engine, hid).iloc[-1]["kind"] == "rollback_withheld"
