"""Planned against actual: the day's gaps measured against the plan in force (the hospital's booked schedule,
or the published version), kept once per day, audited; the command's exit codes."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from engine.cli import main
from engine.governance import GateResult, Governance, User, read_log
from engine.pilot.monitor import booked_plan, pacu_holds, monitor, monitor_day
from engine.pilot.replay import observed_day
from engine.pilot.shadow import FORECAST_COLUMNS, planning_hospital
from engine.pilot.store import monitor_days

ACTOR = ("tester", "coordinator")


def test_pacu_holds_first_come_first_served() -> None:
    np.testing.assert_allclose(pacu_holds(np.array([0.0, 0.0, 0.0]), 10.0, 1), [0, 10, 20])
    np.testing.assert_allclose(pacu_holds(np.array([30.0, 0.0, 5.0]), 10.0, 2), [0, 0, 0])
    np.testing.assert_allclose(pacu_holds(np.array([0.0, 1.0, 2.0]), 10.0, 2), [0, 0, 8])


def test_day_against_the_booked_schedule(pilot_hospital, past_days) -> None:
    h, d = pilot_hospital, past_days[0]
    plan = booked_plan(h, d)
    m = monitor_day(h, d, plan, source="booked schedule")
    c = h.cases.set_index("case_id")
    ran = [i for i in plan.loc[plan["status"] == "scheduled", "case_id"]
           if c.loc[i, "status"] == "completed" and pd.notna(c.loc[i, "wheels_in"])]
    dev = [((c.loc[i, "wheels_in"] - pd.Timestamp(plan.set_index("case_id").loc[i, "start"])).total_seconds() / 60) for i in ran]
    assert m["n_ran_as_planned"] == len(ran) > 0
    assert m["start_deviation"]["mean_minutes"] == pytest.approx(float(np.mean(dev)))
    assert m["overtime"]["observed_minutes"] == pytest.approx(observed_day(h, d)["overtime_minutes"])
    assert m["n_ran_as_planned"] + m["n_planned_cancelled"] <= m["n_planned"]
    assert m["forecast"]["source"] == "booked minutes" and 0 <= m["forecast"]["coverage_p80"] <= 1
    assert m["override_rate"] is None and m["pacu_hold"]["minutes"] >= 0
    assert set(m["fairness"]) >= {"max_prime_time_gap", "overtime_burden_difference", "cancellation_rate_difference"}
    from engine.errors import InputError

    with pytest.raises(InputError, match="no actuals yet"):
        monitor_day(h, h.as_of(), plan, source="booked schedule")


def test_published_version_is_the_plan_and_days_are_kept_once(pilot_hospital, past_days, pilot_forecaster, tmp_path) -> None:
    from engine.plan import PlanParams, plan

    url = f"sqlite:///{tmp_path / 'store.sqlite'}"
    gov = Governance(url)
    h, d = pilot_hospital, past_days[1]
    hp = planning_hospital(h, d)
    booked = hp.cases[(hp.cases["status"] == "booked") & (hp.cases["surgery_date"] == d)]
    fc = pilot_forecaster.predict(booked, hp.cases[hp.cases["surgery_date"] < d], as_of=d)[FORECAST_COLUMNS]
    res = plan(hp, fc, d, PlanParams(days=1, solver="rules"))
    coord, lead = User("carol", "coordinator"), User("lena", "leadership")
    v = gov.propose("pilot", res, coord, hospital=hp)
    gov.approve(v.version_id, lead)
    gov.publish(v.version_id, coord, [GateResult("feeds", True, "ok")], hospital=hp)
    out = monitor(url, "pilot", h, [d, past_days[2]], actor=ACTOR)
    first, second = out["days"]
    assert first["plan_source"] == f"published version {v.version_id}" and first["version_id"] == v.version_id
    assert first["override_rate"] == 0.0 and first["forecast"]["source"] == "the published plan"
    assert second["plan_source"].startswith("booked schedule")
    # the gate judges the published day only: the booked-schedule day is the hospital's own baseline
    assert out["outcomes"]["n_days"] == 1 and out["outcomes"]["days"] == [f"{d:%Y-%m-%d}"] and out["gate"]["gate"] == "outcomes"
    monitor(url, "pilot", h, [d], actor=ACTOR)  # the day again: replaced, not doubled
    kept = monitor_days(url, "pilot")
    assert [r["day"] for r in kept] == [d.date(), past_days[2].date()]
    assert list(read_log(url, "pilot")["kind"]).count("monitor") == 3
    assert kept[0]["audit_seq"] == read_log(url, "pilot")["seq"].iloc[-1]


@pytest.mark.slow
def test_monitor_command(pilot_folder, past_days, tmp_path, capsys) -> None:
    url = f"sqlite:///{tmp_path / 'store.sqlite'}"
    out = tmp_path / "m.json"
    d = f"{past_days[0]:%Y-%m-%d}"
    assert main(["monitor", "--data", str(pilot_folder), "--from", d, "--days", "2", "--db", url, "--json", str(out)]) == 0
    j = json.loads(out.read_text())
    assert len(j["days"]) == 2 and j["days"][0]["day"] == d and j["outcomes"] is None  # nothing published: not judged
    assert j["gate"]["passed"] and j["next_publish"] == "allowed by the outcome gate"
    assert "outcome gate (G-OUTCOMES)" in capsys.readouterr().out
    assert main(["monitor", "--data", str(pilot_folder), "--date", d, "--from", d, "--db", url]) == 2
    assert "--date" in capsys.readouterr().err
    assert main(["monitor", "--data", str(pilot_folder), "--date", "2099-01-05", "--db", url]) == 2
    assert "--date" in capsys.readouterr().err
    assert main(["monitor", "--data", str(pilot_folder), "--date", d, "--late-start-minutes", "-1", "--db", url]) == 2
    assert "--late-start-minutes" in capsys.readouterr().err
