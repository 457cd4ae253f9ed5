"""Canary rollout: the difference-in-differences estimate recovers a known effect and gives an interval
containing 0 when there is none; start and the one-click stop are recorded and audited; the day's plan
under a canary keeps every control case where the rules put it."""
from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from engine.errors import InputError
from engine.governance import User, read_log, verify_chain
from engine.governance.errors import WorkflowError
from engine.pilot.canary import (
    CanaryScope,
    DidParams,
    active_canary,
    canaries,
    canary_plan,
    canary_report,
    daily_outcomes,
    did,
    start_canary,
    stop_canary,
)

LEAD = User("lee", "leadership")


@pytest.fixture(scope="module")
def _pg_schema(pg_url):
    from tests.conftest import pg_private_schema

    with pg_private_schema("canary_test") as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path) -> str:
    """The store on SQLite and on the real local PostgreSQL (skipped, with the reason, when none answers)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.sqlite'}"
    return request.getfixturevalue("_pg_schema")
COORD = User("cora", "coordinator")
VIEWER = User("val", "viewer")


def _synthetic(effect: float, seed: int, n_pre: int = 40, n_post: int = 30) -> tuple[pd.DataFrame, pd.Timestamp]:
    """Daily outcomes of two groups with a shared day shock, a level gap, and ``effect`` on the canary after go-live."""
    rng = np.random.default_rng(seed)
    days = pd.bdate_range("2026-01-05", periods=n_pre + n_post)
    go = days[n_pre]
    shock = rng.normal(0, 30, len(days))  # what both groups share that day (large: the DiD removes it)
    rows = []
    for i, d in enumerate(days):
        post = d >= go
        for g, level in (("canary", 40.0), ("control", 90.0)):
            noise = rng.normal(0, 8, 3)
            eff = effect if (g == "canary" and post) else 0.0
            rows.append({"date": d, "group": g, "overtime_minutes": level + shock[i] + eff + noise[0],
                         "pacu_hold_minutes": 20 + shock[i] / 3 + noise[1], "cases_done": 12 + noise[2]})
    return pd.DataFrame(rows), go


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_did_recovers_a_known_effect_within_its_interval(seed) -> None:
    out, go = _synthetic(-25.0, seed)
    e = did(out, go, DidParams(pre_weeks=8))["estimates"]["overtime_minutes"]
    assert e["ci_lo"] <= -25.0 <= e["ci_hi"]
    assert e["ci_hi"] < 0 and e["favours"] == "canary"
    assert abs(e["did"] + 25.0) < 8


@pytest.mark.parametrize("seed", [4, 5, 6])
def test_did_with_no_effect_gives_an_interval_containing_zero(seed) -> None:
    out, go = _synthetic(0.0, seed)
    est = did(out, go)["estimates"]
    for m in ("overtime_minutes", "pacu_hold_minutes", "cases_done"):
        assert est[m]["ci_lo"] <= 0 <= est[m]["ci_hi"], (m, est[m])
        assert est[m]["favours"].startswith("neither")


def test_did_needs_days_on_both_sides_of_go_live() -> None:
    out, go = _synthetic(0.0, 1, n_pre=1, n_post=5)
    with pytest.raises(ValueError, match="go_live"):
        did(out, go)


def _room_scope(h) -> CanaryScope:
    return CanaryScope("rooms", tuple(sorted(h.rooms["room_id"])[:2]))


def test_daily_outcomes_split_every_completed_case_between_the_groups(pilot_hospital) -> None:
    h = pilot_hospital
    start, end = h.as_of() - pd.Timedelta(days=28), h.as_of() - pd.Timedelta(days=1)
    out = daily_outcomes(h, _room_scope(h), start, end)
    c = h.cases
    done = c[(c["status"] == "completed") & c["surgery_date"].between(start, end) & (c["surgery_date"].dt.day_of_week < 5)]
    assert out["cases_done"].sum() == len(done)
    assert set(out["group"]) == {"canary", "control"} and (out[["overtime_minutes", "pacu_hold_minutes"]] >= 0).all().all()
    in_rooms = done["room_id"].isin(_room_scope(h).values)
    assert out.loc[out["group"] == "canary", "cases_done"].sum() == in_rooms.sum()


def test_did_on_the_hospital_records_recovers_one_case_less_a_day(pilot_hospital) -> None:
    """Take one completed case a day out of the canary rooms after go-live: the cases-done estimate is about -1."""
    h = pilot_hospital
    scope = _room_scope(h)
    go = pd.bdate_range(end=h.as_of() - pd.Timedelta(days=1), periods=20)[0]
    c = h.cases.copy()
    post = ((c["status"] == "completed") & (c["surgery_date"] >= go) & c["room_id"].isin(scope.values)
            & (c["surgery_date"].dt.day_of_week < 5))
    drop = c[post].groupby("surgery_date").head(1).index
    c.loc[drop, "status"] = "cancelled"
    changed = dataclasses.replace(h, cases=c)
    got = did(daily_outcomes(changed, scope), go, DidParams(pre_weeks=8))
    base = did(daily_outcomes(h, scope), go, DidParams(pre_weeks=8))
    e, b = got["estimates"]["cases_done"], base["estimates"]["cases_done"]
    assert len(drop) == got["n_post_days"]  # the canary rooms ran cases every day after go-live
    assert e["did"] == pytest.approx(b["did"] - 1.0)  # exactly one case a day less, nothing else moved
    assert e["ci_lo"] <= -1.0 <= e["ci_hi"]  # the generator treats both groups alike: the true effect is -1
    assert b["ci_lo"] <= 0 <= b["ci_hi"]  # and the untouched records show none


def test_start_status_stop_are_recorded_and_audited(pilot_hospital, db_url) -> None:
    url = db_url
    h = pilot_hospital
    scope = _room_scope(h)
    go = h.as_of() - pd.Timedelta(days=28)
    with pytest.raises(PermissionError):
        start_canary(url, "pilot", h, scope, go, VIEWER)
    with pytest.raises(InputError, match="unknown rooms 'NOPE'"):
        start_canary(url, "pilot", h, CanaryScope("rooms", ("NOPE",)), go, COORD)
    with pytest.raises(InputError, match="no control group"):
        start_canary(url, "pilot", h, CanaryScope("rooms", tuple(h.rooms["room_id"])), go, COORD)
    c = start_canary(url, "pilot", h, scope, go, COORD, note="two rooms first")
    assert c.active and active_canary(url, "pilot") == c
    with pytest.raises(WorkflowError, match="already active"):
        start_canary(url, "pilot", h, scope, go, COORD)
    with pytest.raises(ValueError, match="reason"):
        stop_canary(url, "pilot", LEAD, "  ")
    with pytest.raises(PermissionError):
        stop_canary(url, "pilot", VIEWER, "no")
    stopped = stop_canary(url, "pilot", LEAD, "drill: overtime up in OR1")
    assert stopped.state == "stopped" and stopped.stopped_by == "lee" and active_canary(url, "pilot") is None
    with pytest.raises(WorkflowError, match="no canary is active"):
        stop_canary(url, "pilot", LEAD, "again")
    log = read_log(url, "pilot")
    assert list(log["kind"]) == ["canary_start", "canary_stop"]
    assert list(log["entry_id"]) == [stopped.start_entry_id, stopped.stop_entry_id]
    assert log["payload"].iloc[1]["reason"] == "drill: overtime up in OR1" and log["actor"].iloc[1] == "lee"
    assert log["payload"].iloc[0]["scope"] == list(scope.values)
    assert verify_chain(url, "pilot").ok
    assert [x.canary_id for x in canaries(url, "pilot")] == [c.canary_id]
    # after the stop the day's plan is the rules schedule
    assert canary_plan(h, _forecasts(h), _first_day(h), active_canary(url, "pilot")).source == "rules"


def test_report_reads_the_records_around_go_live(pilot_hospital, tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'store.sqlite'}"
    h = pilot_hospital
    c = start_canary(url, "pilot", h, CanaryScope("service_lines", (sorted(h.surgeons["service_line"].unique())[0],)),
                     h.as_of() - pd.Timedelta(days=21), COORD)
    rep = canary_report(h, c, DidParams(pre_weeks=6))
    assert rep["n_pre_days"] >= 20 and rep["n_post_days"] >= 10
    assert set(rep["estimates"]) == {"overtime_minutes", "pacu_hold_minutes", "cases_done"}
    for e in rep["estimates"].values():
        assert e["ci_lo"] <= e["did"] <= e["ci_hi"]
    assert rep["canary"]["scope_kind"] == "service_lines" and len(rep["pre_weekly_gap"]) >= 5


def _forecasts(h):
    from engine.governance import booked_forecasts

    return booked_forecasts(h)


def _first_day(h):
    booked = h.cases[h.cases["status"] == "booked"]
    return pd.Timestamp(booked["surgery_date"].min())


def test_canary_plan_keeps_control_cases_where_the_rules_put_them(pilot_hospital, tmp_path) -> None:
    from engine.governance import rules_schedule
    from engine.plan import PlanParams

    h = pilot_hospital
    url = f"sqlite:///{tmp_path / 'store.sqlite'}"
    day = _first_day(h)
    c = start_canary(url, "pilot", h, _room_scope(h), day, COORD)
    fc = _forecasts(h)
    got = canary_plan(h, fc, day, c, PlanParams(days=1, time_limit_s=20, sequence_time_limit_s=1))
    rules = rules_schedule(h, day, 1, forecasts=fc).schedule
    assert got.source == "canary" and got.n_canary_cases > 0
    control = rules[(rules["status"] == "scheduled") & ~rules["room_id"].isin(c.scope.values)]
    placed = got.schedule.set_index("case_id").loc[control["case_id"]]
    assert (placed["room_id"].to_numpy() == control["room_id"].to_numpy()).all()
    assert (pd.to_datetime(placed["start"]).to_numpy() == pd.to_datetime(control["start"]).to_numpy()).all()
    assert canary_plan(h, fc, day, None).source == "rules"


def test_cli_start_status_report_stop(pilot_folder, pilot_hospital, tmp_path, monkeypatch, capsys) -> None:
    import json

    from engine.cli import main

    monkeypatch.setenv("OR_API_TOKENS", "tok-cora-1:cora:coordinator,tok-val-2:val:viewer")
    url = f"sqlite:///{tmp_path / 'store.sqlite'}"
    h = pilot_hospital
    rooms = ",".join(_room_scope(h).values)
    go = f"{h.as_of() - pd.Timedelta(days=21):%Y-%m-%d}"
    base = ["--data", str(pilot_folder), "--db", url]
    monkeypatch.delenv("OR_TOKEN", raising=False)
    assert main(["canary", "start", *base, "--rooms", rooms, "--go-live", go]) == 2
    assert "OR_TOKEN" in capsys.readouterr().err
    monkeypatch.setenv("OR_TOKEN", "tok-cora-1")
    assert main(["canary", "start", *base, "--rooms", rooms, "--sites", "Main", "--go-live", go]) == 2
    assert "exactly one of --rooms" in capsys.readouterr().err
    assert main(["canary", "start", *base, "--rooms", "XX", "--go-live", go]) == 2
    assert "--rooms" in capsys.readouterr().err
    assert main(["canary", "start", *base, "--rooms", rooms, "--go-live", go, "--json", str(tmp_path / "s.json")]) == 0
    assert json.loads((tmp_path / "s.json").read_text())["state"] == "active"
    assert main(["canary", "start", *base, "--rooms", rooms, "--go-live", go]) == 2
    assert "already active" in capsys.readouterr().err
    assert main(["canary", "report", *base, "--pre-weeks", "6", "--json", str(tmp_path / "r.json")]) == 0
    rep = json.loads((tmp_path / "r.json").read_text())
    assert rep["estimates"]["overtime_minutes"]["ci_lo"] <= rep["estimates"]["overtime_minutes"]["ci_hi"]
    assert main(["canary", "stop", *base]) == 2
    assert "--reason" in capsys.readouterr().err
    monkeypatch.setenv("OR_TOKEN", "tok-val-2")
    assert main(["canary", "stop", *base, "--reason", "x"]) == 2
    assert "not allowed" in capsys.readouterr().err
    monkeypatch.setenv("OR_TOKEN", "tok-cora-1")
    assert main(["canary", "stop", *base, "--reason", "overtime up"]) == 0
    assert main(["canary", "status", *base, "--json", str(tmp_path / "st.json")]) == 0
    st = json.loads((tmp_path / "st.json").read_text())
    assert st["active"] is None and st["canaries"][0]["stop_reason"] == "overtime up"
    assert list(read_log(url, "pilot")["kind"]) == ["canary_start", "canary_stop"]
