"""Issue 14, item 1: a version is published only if it passes the hard rules.

Each test here failed on the code before the fix: a double-booking override was accepted, passed
every gate and was published; "25:99" became 02:39 the next day; the solver gate said "finished
(optimal)" for a hand-edited version.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from engine.governance import GateResult, Governance, Override, OverrideError, PublicationWithheld, read_log
from engine.governance.errors import HardRuleViolation
from tests.engine.governance.conftest import COORD, LEAD
from tests.engine.governance.test_gates import GOOD_MODEL
from tests.feasibility import check_schedule

REPO = Path(__file__).resolve().parents[3]


def _scheduled(s: pd.DataFrame) -> pd.DataFrame:
    return s[s["status"] == "scheduled"].sort_values(["room_id", "start"])


def _double_booking(schedule: pd.DataFrame) -> Override:
    """Move a case into another room at the very start of that room's first case."""
    s = _scheduled(schedule)
    host = s.iloc[0]
    mover = s[s["room_id"] != host["room_id"]].iloc[0]
    return Override(mover["case_id"], "move", "surgeon_request", room_id=host["room_id"], start=f"{pd.Timestamp(host['start']):%H:%M}")


def test_the_checker_imports_nothing_from_engine_plan() -> None:
    code = "import sys, engine.checker; bad = [m for m in sys.modules if m.startswith('engine.plan')]; print(bad); sys.exit(1 if bad else 0)"
    res = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stdout + res.stderr


def test_double_booking_override_is_refused_naming_the_rule(gov: Governance, hid: str, planned, hospital) -> None:
    v = gov.propose(hid, planned, COORD, hospital=hospital)
    ov = _double_booking(planned.schedule)
    n_versions = len(gov.history(hid))
    with pytest.raises(HardRuleViolation, match=r"Override refused: it breaks hard rule\(s\) .*H4") as exc:
        gov.override(v.version_id, ov, COORD, hospital=hospital)
    assert "H4" in exc.value.rules and ov.case_id in str(exc.value)
    assert len(gov.history(hid)) == n_versions  # nothing saved


def test_infeasible_override_kept_as_unpublishable_version(gov: Governance, hid: str, planned, hospital, loaded) -> None:
    v = gov.propose(hid, planned, COORD, hospital=hospital)
    nv = gov.override(v.version_id, _double_booking(planned.schedule), COORD, hospital=hospital, allow_violations=True)
    assert nv.status == "proposed" and any(x["rule"] == "H4" for x in nv.plan["hard_rule_violations"])
    entry = read_log(gov.engine, hid).iloc[-1]
    assert entry["kind"] == "override" and entry["payload"]["publishable"] is False
    gov.approve(nv.version_id, LEAD)
    gates = {g.gate: g for g in gov.check_gates(nv.version_id, COORD, hospital, model=GOOD_MODEL, quality=loaded.report)}
    hard = gates["hard_rules"]
    assert not hard.passed and hard.blocking and "H4" in hard.details["rules_broken"] and "H4 turnover" in hard.message
    with pytest.raises(PublicationWithheld, match="hard_rules: The schedule breaks"):
        gov.publish(nv.version_id, COORD)
    # a caller's own gate list cannot vouch for the hard rules: neither a forged pass ...
    forged = [GateResult("hard_rules", True, "fine"), GateResult("feeds", True, "ok")]
    with pytest.raises(PublicationWithheld, match="H4"):
        gov.publish(nv.version_id, COORD, forged)
    # ... nor a fresh check with the hospital
    with pytest.raises(PublicationWithheld, match="H4"):
        gov.publish(nv.version_id, COORD, forged, hospital=hospital)
    assert gov.version(nv.version_id).status == "approved"
    assert read_log(gov.engine, hid).iloc[-1]["kind"] == "publish_withheld"


def test_unchecked_version_is_not_published_on_a_gate_list_alone(gov: Governance, hid: str, planned, hospital) -> None:
    v = gov.propose(hid, planned, COORD, hospital=hospital)
    gov.approve(v.version_id, LEAD)
    with pytest.raises(PublicationWithheld, match="hard rules were never checked for version"):
        gov.publish(v.version_id, COORD, [GateResult("feeds", True, "ok")])
    assert gov.publish(v.version_id, COORD, [GateResult("feeds", True, "ok")], hospital=hospital).status == "published"


@pytest.mark.parametrize("start", ["25:99", "24:00", "7:60", "noon", "07:30+01:00"])
def test_impossible_start_is_refused_naming_the_field(start: str) -> None:
    with pytest.raises(OverrideError, match=r"^start of the override of case C1: "):
        Override("C1", "move", "surgeon_request", room_id="MAIN-OR01", start=start)


def test_unknown_room_is_refused_naming_the_field(gov: Governance, hid: str, planned, hospital) -> None:
    v = gov.propose(hid, planned, COORD, hospital=hospital)
    cid = _scheduled(planned.schedule).iloc[0]["case_id"]
    with pytest.raises(OverrideError, match=r"room_id of the override of case .*'OR-99' is not in rooms.csv"):
        gov.override(v.version_id, Override(cid, "move", "equipment", room_id="OR-99"), COORD, hospital=hospital)


def test_capability_hours_and_surgeon_conflicts_are_refused(gov: Governance, hid: str, planned, hospital) -> None:
    v = gov.propose(hid, planned, COORD, hospital=hospital)
    s = _scheduled(planned.schedule)
    cases = hospital.cases.set_index("case_id")
    # room capability: a robot case into a fluoro-only room, at its own time
    robot = s[s["case_id"].map(lambda c: "robot" in str(cases.at[c, "required_equipment"]))]
    assert len(robot), "the test hospital has a robot case on day 1"
    r = robot.iloc[0]
    with pytest.raises(HardRuleViolation) as exc:
        gov.override(v.version_id, Override(r["case_id"], "move", "equipment", room_id="MAIN-OR03"), COORD, hospital=hospital)
    assert "H2" in exc.value.rules
    # a start before the room opens
    with pytest.raises(HardRuleViolation) as exc:
        gov.override(v.version_id, Override(s.iloc[0]["case_id"], "move", "equipment", start="05:00"), COORD, hospital=hospital)
    assert "H3" in exc.value.rules
    # a surgeon in two rooms at once
    by_surgeon = s[s["surgeon_id"] != "unknown"].groupby("surgeon_id")
    surgeon, g = next((k, g) for k, g in by_surgeon if len(g) >= 2)
    a, b = g.iloc[0], g.iloc[1]
    other_room = next(x for x in sorted(hospital.rooms["room_id"]) if x not in (a["room_id"], b["room_id"]))
    with pytest.raises(HardRuleViolation) as exc:
        gov.override(v.version_id, Override(b["case_id"], "move", "surgeon_request", room_id=other_room,
                                            start=f"{pd.Timestamp(a['start']):%H:%M}"), COORD, hospital=hospital)
    assert "H5" in exc.value.rules and surgeon in str(exc.value)


def test_a_feasible_override_is_accepted_and_published(gov: Governance, hid: str, planned, hospital, loaded) -> None:
    v = gov.propose(hid, planned, COORD, hospital=hospital)
    s = _scheduled(planned.schedule)
    keeper = s.iloc[0]
    nv = gov.override(v.version_id, Override(keeper["case_id"], "lock", "equipment"), COORD, hospital=hospital)
    assert nv.plan["hard_rules_checked_at_entry"] and "hard_rule_violations" not in nv.plan
    gov.approve(nv.version_id, LEAD)
    gates = {g.gate: g for g in gov.check_gates(nv.version_id, COORD, hospital, model=GOOD_MODEL, quality=loaded.report)}
    assert gates["hard_rules"].passed, gates["hard_rules"].message
    solver = gates["solver"]
    # "optimal" is never claimed for a hand-edited version
    assert solver.passed and "edited by hand (1 override(s) on top of version" in solver.message
    assert "finished" not in solver.message and "(optimal" not in solver.message
    assert "no optimality is claimed" in solver.message
    pub = gov.publish(nv.version_id, COORD)
    assert pub.status == "published"
    # every published version passes the independent checker
    hist = gov.history(hid)
    for vid in hist.loc[hist["status"] == "published", "version_id"]:
        ver = gov.version(int(vid))
        assert check_schedule(hospital, ver.schedule, horizon_dates=ver.horizon, locked=ver.locks) == []
