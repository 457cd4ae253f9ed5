"""Publish workflow on SQLite and PostgreSQL: propose -> approve -> publish, history, baseline, roles."""
from __future__ import annotations

import pandas as pd
import pytest

from engine.governance import (
    ConflictError,
    GateResult,
    Governance,
    PublicationWithheld,
    User,
    WorkflowError,
    input_data_hash,
    load_catalog,
    read_log,
    verify_chain,
)
from tests.engine.governance.conftest import BOARD, COORD, COORD2, LEAD, VIEWER

CLEAR = [GateResult("feeds", True, "ok")]


def _publish(gov: Governance, hid: str, planned, hospital, actor=COORD):
    v = gov.propose(hid, planned, actor, hospital=hospital)
    gov.approve(v.version_id, LEAD)
    return gov.publish(v.version_id, actor, CLEAR, hospital=hospital)


def test_propose_approve_publish(gov: Governance, hid: str, planned, hospital, day1) -> None:
    v = gov.propose(hid, planned, COORD, hospital=hospital, model={"version": "v1", "data_hash": "abc"})
    assert v.status == "proposed" and v.source == "optimizer" and v.created_by == "carol"
    assert v.horizon_start == day1 and v.horizon_end == day1
    assert v.plan["solver"] == "highs" and v.plan["status"] == "optimal" and v.plan["mip_gap"] is not None
    assert v.data_hash == input_data_hash(hospital) and v.model_version == "v1" and v.model_data_hash == "abc"
    assert v.rules_version == load_catalog().rules_version
    # the schedule round-trips in schedule.csv form
    got, want = v.schedule, planned.schedule
    assert list(got.columns[:12]) == list(want.columns)
    pd.testing.assert_series_equal(got["case_id"], want["case_id"], check_names=False)
    assert (got["start"].dropna().reset_index(drop=True) == pd.to_datetime(want["start"]).dropna().reset_index(drop=True)).all()
    assert gov.current_published(hid, day1).empty  # nothing published yet

    with pytest.raises(WorkflowError, match="only an approved schedule can be published"):
        gov.publish(v.version_id, COORD, CLEAR, hospital=hospital)
    a = gov.approve(v.version_id, LEAD, note="looks fine")
    assert a.status == "approved" and a.approved_by == "lena" and a.approved_at is not None
    with pytest.raises(WorkflowError, match="only a proposed schedule can be approved"):
        gov.approve(v.version_id, LEAD)
    p = gov.publish(v.version_id, COORD, CLEAR, hospital=hospital)
    assert p.status == "published" and p.published_by == "carol"

    base = gov.current_published(hid, day1)
    assert base.attrs["version_ids"] == [v.version_id]
    assert sorted(base["case_id"]) == sorted(planned.schedule["case_id"])
    assert set(base.columns) >= {"case_id", "date", "room_id", "status", "start", "end_p50", "end_p80", "pacu_in", "pacu_out", "reason"}

    kinds = list(read_log(gov.engine, hid)["kind"])
    assert kinds == ["recommendation", "approve", "publish"]
    rec = read_log(gov.engine, hid).iloc[0]["payload"]
    assert rec["input_data_hash"] == v.data_hash and rec["model_version"] == "v1" and rec["rules_version"] == v.rules_version
    assert rec["solver"] == "highs" and rec["status"] == "optimal" and "schedule_sha256" in rec
    assert verify_chain(gov.engine, hid).ok


def test_new_publication_supersedes_and_history_is_kept(gov: Governance, hid: str, planned, rules_planned, hospital, day1) -> None:
    first = _publish(gov, hid, planned, hospital)
    second = gov.propose(hid, rules_planned, COORD, hospital=hospital)
    assert second.source == "rules" and second.parent_id == first.version_id  # parent = the baseline
    gov.approve(second.version_id, LEAD)
    gov.publish(second.version_id, COORD, CLEAR, hospital=hospital)
    hist = gov.history(hid).set_index("version_id")
    assert hist.loc[first.version_id, "status"] == "superseded"
    assert hist.loc[first.version_id, "superseded_by"] == second.version_id
    assert hist.loc[second.version_id, "status"] == "published"
    assert gov.current_published(hid, day1).attrs["version_ids"] == [second.version_id]
    # the superseded version is still readable in full
    assert len(gov.version(first.version_id).schedule) == len(planned.schedule)


def test_reject_and_four_eyes(gov: Governance, hid: str, planned, hospital) -> None:
    v = gov.propose(hid, planned, COORD, hospital=hospital)
    with pytest.raises(WorkflowError, match="a note is required"):
        gov.reject(v.version_id, LEAD, "")
    r = gov.reject(v.version_id, LEAD, "too much overtime on Monday")
    assert r.status == "rejected" and r.status_note == "too much overtime on Monday"
    with pytest.raises(WorkflowError):
        gov.approve(v.version_id, LEAD)
    # four eyes: a leadership user who created a version cannot approve it
    mine = gov.propose(hid, planned, COORD2, hospital=hospital)
    assert gov.version(mine.version_id).created_by == "dave"
    with pytest.raises(PermissionError, match="another person must approve"):
        gov.approve(mine.version_id, User("dave", "leadership"))  # same person, now signed in as leadership


def test_roles_are_enforced_in_the_engine(gov: Governance, hid: str, planned, hospital) -> None:
    with pytest.raises(PermissionError, match="may not propose"):
        gov.propose(hid, planned, VIEWER)
    v = gov.propose(hid, planned, COORD, hospital=hospital)
    with pytest.raises(PermissionError, match=r"vic \(viewer\) may not approve a proposed schedule: this needs Perioperative leadership"):
        gov.approve(v.version_id, VIEWER)
    with pytest.raises(PermissionError, match="may not approve"):
        gov.approve(v.version_id, COORD2)  # coordinators do not approve
    with pytest.raises(PermissionError, match="may not approve"):
        gov.approve(v.version_id, BOARD)
    gov.approve(v.version_id, LEAD)
    with pytest.raises(PermissionError, match="may not publish"):
        gov.publish(v.version_id, BOARD, CLEAR, hospital=hospital)
    with pytest.raises(PermissionError, match="Sign in first"):
        gov.publish(v.version_id, "coordinator", CLEAR, hospital=hospital)  # a bare role string is not a signed-in user
    with pytest.raises(PermissionError, match="may not read the audit log"):
        gov.audit_log(hid, COORD)
    assert len(gov.audit_log(hid, BOARD)) == 2


def test_publication_withheld_is_audited(gov: Governance, hid: str, planned, hospital) -> None:
    v = gov.propose(hid, planned, COORD, hospital=hospital)
    gov.approve(v.version_id, LEAD)
    bad = GateResult("feeds", False, "The staffing feed reaches only 2 days ahead.", "Check staffing.csv.")
    with pytest.raises(PublicationWithheld, match="staffing feed") as exc:
        gov.publish(v.version_id, COORD, [bad, GateResult("drift", True, "ok")], hospital=hospital)
    assert [g.gate for g in exc.value.gates] == ["feeds"]
    assert gov.version(v.version_id).status == "approved"  # still waiting, not published
    last = read_log(gov.engine, hid).iloc[-1]
    assert last["kind"] == "publish_withheld" and last["payload"]["failed"] == ["feeds"]
    # a monitored (non-blocking) failure does not withhold
    soft = GateResult("override_rate", False, "(monitored) 30% overridden", "Review.", blocking=False)
    assert gov.publish(v.version_id, COORD, [soft], hospital=hospital).status == "published"
    with pytest.raises(WorkflowError, match="Run the safety gates"):
        gov.publish(v.version_id, COORD, [], hospital=hospital)


def test_override_of_an_approved_version_needs_new_approval(gov: Governance, hid: str, planned, hospital) -> None:
    from engine.governance import Override

    v = gov.propose(hid, planned, COORD, hospital=hospital)
    gov.approve(v.version_id, LEAD)
    case = planned.schedule[planned.schedule["status"] == "scheduled"].iloc[0]["case_id"]
    new = gov.override(v.version_id, Override(case, "lock", "surgeon_request"), COORD2)
    assert new.status == "proposed" and new.parent_id == v.version_id
    with pytest.raises(ConflictError, match="changed"):
        gov.publish(v.version_id, COORD, CLEAR, hospital=hospital)  # the approved one was changed: publish the new one instead
    gov.approve(new.version_id, LEAD)
    assert gov.publish(new.version_id, COORD, CLEAR, hospital=hospital).status == "published"


def test_publish_uses_the_recorded_gate_decision(gov: Governance, hid: str, planned, hospital, loaded) -> None:
    from tests.engine.governance.test_gates import GOOD_MODEL

    v = gov.propose(hid, planned, COORD, hospital=hospital, model=GOOD_MODEL)
    gov.approve(v.version_id, LEAD)
    with pytest.raises(WorkflowError, match="Run the safety gates"):
        gov.publish(v.version_id, COORD)  # no gate decision recorded yet
    stale = {**GOOD_MODEL, "train_until": "2026-06-01"}
    gov.check_gates(v.version_id, COORD, hospital, model=stale, quality=loaded.report)
    with pytest.raises(PublicationWithheld, match="model"):
        gov.publish(v.version_id, COORD)
    gov.check_gates(v.version_id, LEAD, hospital, model=GOOD_MODEL, quality=loaded.report)
    assert [g.gate for g in gov.recorded_gates(v.version_id) if not g.passed] == []
    assert gov.publish(v.version_id, COORD).status == "published"
    pub = read_log(gov.engine, hid).iloc[-1]
    assert pub["kind"] == "publish" and all(g["passed"] for g in pub["payload"]["gates"])


def test_sign_in_is_audited(gov: Governance) -> None:
    gov.record_sign_in(COORD)
    last = read_log(gov.engine, "_system").iloc[-1]
    assert last["kind"] == "sign_in" and last["actor"] == "carol" and last["payload"] == {"method": "password"}
