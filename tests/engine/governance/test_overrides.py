"""Overrides with justification codes, locks honoured by plan(), override rates."""
from __future__ import annotations

import pandas as pd
import pytest

from engine.governance import Governance, Override, OverrideError, override_rates, read_log
from engine.plan import PlanParams, plan
from tests.engine.governance.conftest import BOARD, COORD, COORD2, LEAD, VIEWER
from tests.feasibility import check_schedule


def _scheduled(s: pd.DataFrame) -> pd.DataFrame:
    return s[s["status"] == "scheduled"]


def test_justification_codes(gov: Governance, hid: str, planned, hospital) -> None:
    v = gov.propose(hid, planned, COORD, hospital=hospital)
    cid = _scheduled(planned.schedule).iloc[0]["case_id"]
    with pytest.raises(OverrideError, match="needs a free-text explanation"):
        gov.override(v.version_id, Override(cid, "defer", "other"), COORD)
    with pytest.raises(OverrideError, match="needs a free-text explanation"):
        gov.override(v.version_id, Override(cid, "defer", "other", text="   "), COORD)
    with pytest.raises(OverrideError, match="not in the catalog; use one of surgeon_request, patient_factor"):
        gov.override(v.version_id, Override(cid, "defer", "because"), COORD)
    with pytest.raises(OverrideError, match="action must be one of move, defer, lock"):
        Override(cid, "swap", "other")
    with pytest.raises(OverrideError, match="needs a new date, room or start"):
        Override(cid, "move", "equipment")
    with pytest.raises(OverrideError, match="not in this schedule version"):
        gov.override(v.version_id, Override("NOPE", "lock", "equipment"), COORD)
    with pytest.raises(PermissionError, match="may not override"):
        gov.override(v.version_id, Override(cid, "lock", "equipment"), LEAD)
    # a hard rule is overridden by nobody; an advisory policy only by its override role
    with pytest.raises(PermissionError, match="H2 .* nobody"):
        gov.override(v.version_id, Override(cid, "lock", "equipment", rule_id="H2"), COORD)
    with pytest.raises(PermissionError, match="BLOCK-ONLY .* leadership role only"):
        gov.override(v.version_id, Override(cid, "lock", "equipment", rule_id="BLOCK-ONLY"), COORD)
    ok = gov.override(v.version_id, Override(cid, "defer", "other", text="patient asked to postpone, family event"), COORD)
    assert ok.status == "proposed" and ok.source == "override" and ok.parent_id == v.version_id
    row = ok.schedule.set_index("case_id").loc[cid]
    assert row["status"] == "deferred" and pd.isna(row["start"]) and row["reason"] == "deferred by override (other)"
    assert ok.deferred == [cid]
    o = gov.overrides(hid).iloc[-1]
    assert (o["case_id"], o["action"], o["code"], o["actor"], o["role"]) == (cid, "defer", "other", "carol", "coordinator")
    assert o["justification_text"] == "patient asked to postpone, family event" and o["at"] is not None
    # free text is masked for non-clinical roles, kept for clinical ones
    assert gov.overrides(hid, BOARD).iloc[-1]["justification_text"] == "•••"
    assert gov.overrides(hid, COORD).iloc[-1]["justification_text"].startswith("patient asked")
    entry = read_log(gov.engine, hid).iloc[-1]
    assert entry["kind"] == "override" and entry["actor"] == "carol"
    assert entry["payload"]["overrides"][0]["code"] == "other" and entry["payload"]["new_version_id"] == ok.version_id
    assert gov.audit_log(hid, BOARD).iloc[-1]["payload"]["overrides"][0]["justification_text"] == "•••"


def test_move_and_lock_become_locks_that_plan_honours(gov: Governance, hid: str, planned, hospital, forecasts, day1) -> None:
    v = gov.propose(hid, planned, COORD, hospital=hospital)
    s = _scheduled(planned.schedule)
    last = s.sort_values("start").groupby("room_id").tail(1)
    # the last case of a room moves 20 minutes later; the first case of another room is locked where it is
    mover = last.sort_values("end_p80").iloc[0]
    keeper = s[(s["room_id"] != mover["room_id"])].sort_values("start").iloc[0]
    new_start = pd.Timestamp(mover["start"]) + pd.Timedelta(minutes=20)
    nv = gov.override(v.version_id, [Override(mover["case_id"], "move", "surgeon_request", start=f"{new_start:%H:%M}"),
                                     Override(keeper["case_id"], "lock", "equipment")], COORD)
    moved = nv.schedule.set_index("case_id").loc[mover["case_id"]]
    assert moved["start"] == new_start and moved["room_id"] == mover["room_id"]
    assert moved["end_p50"] - moved["start"] == pd.Timestamp(mover["end_p50"]) - pd.Timestamp(mover["start"])  # duration kept
    assert "moved by override" in moved["reason"]
    locks = gov.locks(nv.version_id)
    assert list(locks.columns) == ["case_id", "date", "room_id", "start"]
    lk = locks.set_index("case_id")
    assert lk.loc[mover["case_id"], "start"] == new_start and lk.loc[keeper["case_id"], "room_id"] == keeper["room_id"]

    # re-planning with the locks keeps both cases exactly where the overrides put them
    res = plan(hospital, forecasts, day1, PlanParams(days=1), locks=locks)
    out = res.schedule.set_index("case_id")
    for cid, r in lk.iterrows():
        assert out.loc[cid, "status"] == "scheduled", out.loc[cid, "reason"]
        assert out.loc[cid, "room_id"] == r["room_id"] and pd.Timestamp(out.loc[cid, "start"]) == r["start"]
    assert check_schedule(hospital, res.schedule, horizon_dates=[day1], locked=locks) == []
    # the rules fallback honours them too
    rres = plan(hospital, forecasts, day1, PlanParams(days=1, solver="rules"), locks=locks)
    rout = rres.schedule.set_index("case_id")
    assert all(rout.loc[cid, "room_id"] == r["room_id"] for cid, r in lk.iterrows())


def test_moving_a_deferred_case_needs_forecasts_and_locks_accumulate(gov: Governance, hid: str, planned, hospital, forecasts) -> None:
    v = gov.propose(hid, planned, COORD, hospital=hospital)
    s = planned.schedule
    cid = _scheduled(s).iloc[-1]["case_id"]
    dv = gov.override(v.version_id, Override(cid, "defer", "patient_factor"), COORD)
    with pytest.raises(OverrideError, match="needs a room"):
        gov.override(dv.version_id, Override(cid, "move", "clinical_priority", start="16:00"), COORD)
    with pytest.raises(OverrideError, match="forecast is needed"):
        gov.override(dv.version_id, Override(cid, "move", "clinical_priority", room_id="MAIN-OR04", start="07:30"), COORD)
    with pytest.raises(OverrideError, match="is deferred: there is no place to lock"):
        gov.override(dv.version_id, Override(cid, "lock", "clinical_priority"), COORD)
    nv = gov.override(dv.version_id, Override(cid, "move", "clinical_priority", room_id="MAIN-OR04", start="07:30"),
                      COORD, forecasts=forecasts, pacu_minutes=75)
    r = nv.schedule.set_index("case_id").loc[cid]
    p50 = forecasts.set_index("case_id").loc[cid, "p50"]
    assert r["status"] == "scheduled" and r["room_id"] == "MAIN-OR04"
    assert (r["end_p50"] - r["start"]) == pd.Timedelta(minutes=int(-(-p50 // 1)))
    assert r["pacu_out"] - r["pacu_in"] == pd.Timedelta(minutes=75)
    assert nv.deferred == []  # placed again: no longer deferred by override
    # a second override on the new version keeps the first one's lock
    other = _scheduled(nv.schedule).iloc[0]["case_id"]
    nv2 = gov.override(nv.version_id, Override(other, "lock", "patient_factor"), COORD2)
    assert set(gov.locks(nv2.version_id)["case_id"]) == {cid, other}
    assert gov.lineage(nv2.version_id) == [nv2.version_id, nv.version_id, dv.version_id, v.version_id]
    rate, ov = gov.version_override_rate(nv2.version_id)
    assert rate == pytest.approx(2 / len(s)) and set(ov["case_id"]) == {cid, other}


def test_override_rates_by_service_line_and_code(gov: Governance, hid: str, planned, hospital) -> None:
    v = gov.propose(hid, planned, COORD, hospital=hospital)
    s = _scheduled(planned.schedule)
    lines = s.groupby("service_line")["case_id"].apply(list)
    line_a = lines.index[0]
    a_cases = lines.iloc[0][:2]
    other_case = s[s["service_line"] != line_a].iloc[0]
    nv = gov.override(v.version_id, [Override(a_cases[0], "lock", "surgeon_request"),
                                     Override(a_cases[-1], "defer", "equipment")], COORD)
    gov.override(nv.version_id, Override(other_case["case_id"], "lock", "surgeon_request"), COORD)
    n_a = int((planned.schedule["service_line"] == line_a).sum())
    by_line = gov.override_rates(hid, "service_line").set_index("service_line")
    assert by_line.loc[line_a, "n_cases"] == n_a
    assert by_line.loc[line_a, "n_cases_overridden"] == len(set(a_cases))
    assert by_line.loc[line_a, "rate"] == pytest.approx(len(set(a_cases)) / n_a, abs=1e-4)
    untouched = set(planned.schedule["service_line"]) - {line_a, other_case["service_line"]}
    assert all(by_line.loc[x, "rate"] == 0 for x in untouched)
    by_code = gov.override_rates(hid, "code").set_index("code")
    n = len(planned.schedule)
    assert by_code.loc["surgeon_request", "n_overrides"] == 2
    assert by_code.loc["surgeon_request", "rate"] == pytest.approx(2 / n, abs=1e-4)
    assert by_code.loc["equipment", "share_of_overrides"] == pytest.approx(1 / 3, abs=1e-4)
    overall = gov.override_rates(hid, None)
    assert overall.iloc[0]["n_cases_overridden"] == len(set(a_cases)) + 1
    with pytest.raises(PermissionError):
        gov.override_rates(hid, "code", actor=VIEWER)
    assert len(gov.override_rates(hid, "code", actor=BOARD)) >= 2


def test_override_rates_pure_function() -> None:
    rec = pd.DataFrame({"case_id": ["a", "b", "c", "d", "a"], "service_line": ["X", "X", "Y", "Y", "X"]})
    ov = pd.DataFrame({"case_id": ["a", "a", "c"], "service_line": ["X", "X", "Y"], "code": ["other", "equipment", "other"]})
    by = override_rates(ov, rec, "service_line").set_index("service_line")
    assert by.loc["X", "rate"] == 0.5 and by.loc["X", "n_overrides"] == 2 and by.loc["Y", "rate"] == 0.5
    bc = override_rates(ov, rec, "code").set_index("code")
    assert bc.loc["other", "rate"] == 0.5 and bc.loc["equipment", "rate"] == 0.25
    assert bc.loc["other", "share_of_overrides"] == pytest.approx(2 / 3, abs=1e-4)
    assert override_rates(ov.iloc[:0], rec.iloc[:0], "code").empty
