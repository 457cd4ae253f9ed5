"""Retrospective replay: leak-free forecasts, the contract's JSON, paired differences that are the days'
own differences, the real schedule as `actual`, and the command's audit entry and exit codes."""
from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from engine.cli import main
from engine.governance import read_log
from engine.pilot.replay import REPORT_METRICS, ReplayParams, replay, replay_dates, train_before

FAST = ReplayParams(days=3, reps=5, iterations=30, time_limit_s=5)


@pytest.fixture(scope="module")
def report(pilot_hospital, past_days, pilot_forecaster):
    return replay(pilot_hospital, past_days[0], FAST, forecaster=pilot_forecaster)


def test_forecasts_see_nothing_after_the_first_day(pilot_hospital, past_days) -> None:
    """Changing every case from the first replayed day on leaves the trained model's forecasts unchanged."""
    h = pilot_hospital
    first = past_days[0]
    later = h.cases["surgery_date"] >= first
    cases2 = h.cases.copy()
    cases2.loc[later, "wheels_out"] = cases2.loc[later, "wheels_out"] + pd.Timedelta(minutes=90)
    import dataclasses

    h2 = dataclasses.replace(h, cases=cases2)
    fc1, meta = train_before(h, first, 30)
    fc2, _ = train_before(h2, first, 30)
    day = h.cases[h.cases["surgery_date"] == first]
    hist = h.cases[h.cases["surgery_date"] < first]
    a = fc1.predict(day, hist, as_of=first)
    b = fc2.predict(day, hist, as_of=first)
    assert meta["trained_until"] == f"{first:%Y-%m-%d}" and len(a)
    np.testing.assert_allclose(a["p50"].to_numpy(), b["p50"].to_numpy())


def test_report_shape_and_paired_differences(report, past_days) -> None:
    j = report.to_json()
    assert set(j["policies"]) == {"optimized", "rules", "actual"}
    for pol in j["policies"].values():
        for m in ("overtime_minutes", "pacu_hold_minutes", "cases_done", "utilization"):
            assert set(pol[m]) == {"mean", "total"}
    assert j["dates"] == [f"{d:%Y-%m-%d}" for d in past_days[:3]]
    per = report.per_day
    for m in REPORT_METRICS:
        a = per[per["policy"] == "optimized"].set_index("date")[m]
        b = per[per["policy"] == "rules"].set_index("date")[m]
        pr = j["paired"][m]
        assert pr["diff_mean"] == pytest.approx(float((a - b).mean()))
        assert pr["ci_lo"] <= pr["diff_mean"] <= pr["ci_hi"] and pr["n_days"] == 3
        tot = j["policies"]["rules"][m]["total"]
        assert tot == pytest.approx(float(b.sum()))
    assert j["verdict"].startswith("Over 3 replayed days")
    act = per[per["policy"] == "actual"].set_index("date")["overtime_minutes"]
    opt = per[per["policy"] == "optimized"].set_index("date")["overtime_minutes"]
    pv = j["paired_vs_actual"]["optimized"]["overtime_minutes"]
    assert pv["baseline"] == "actual" and pv["diff_mean"] == pytest.approx(float((opt - act).mean()))
    assert pv["ci_lo"] <= pv["diff_mean"] <= pv["ci_hi"] and set(j["paired_vs_actual"]) == {"optimized", "rules"}


def test_actual_is_the_hospital_schedule_run_on_what_happened(report, pilot_hospital, past_days) -> None:
    """The simulated `actual` runs the recorded schedule on the recorded durations: its cases done stay close
    to the records' count (draws only move turnovers and PACU stays)."""
    j = report.to_json()
    sim = j["policies"]["actual"]["cases_done"]["total"]
    rec = j["observed"]["cases_done"]["total"]
    assert rec > 0 and abs(sim - rec) <= 0.15 * rec


def test_bad_replay_params_and_dates(pilot_hospital) -> None:
    with pytest.raises(ValueError, match="reps"):
        ReplayParams(reps=0)
    from engine.errors import InputError

    with pytest.raises(InputError, match="not in the past"):
        replay_dates(pilot_hospital, pilot_hospital.as_of(), 1)
    with pytest.raises(InputError, match="weekdays with elective history"):
        replay_dates(pilot_hospital, pilot_hospital.as_of() - pd.Timedelta(days=3), 10)


@pytest.mark.slow
def test_replay_command_writes_json_and_audits(pilot_folder, past_days, tmp_path, capsys) -> None:
    url = f"sqlite:///{tmp_path / 'store.sqlite'}"
    out = tmp_path / "r.json"
    assert main(["replay", "--data", str(pilot_folder), "--from", f"{past_days[0]:%Y-%m-%d}", "--days", "2", "--reps", "3",
                 "--iterations", "20", "--time-limit", "5", "--db", url, "--json", str(out)]) == 0
    j = json.loads(out.read_text())
    assert j["n_days"] == 2 and "optimized" in j["policies"] and "overtime_minutes" in j["paired"]
    log = read_log(url, "pilot")
    assert list(log["kind"]) == ["replay"] and log["payload"].iloc[0]["params"]["reps"] == 3
    assert log["payload"].iloc[0]["input_data_hash"] and j["audit_seq"] == 1
    assert main(["replay", "--data", str(pilot_folder), "--from", "2030-01-01", "--days", "2", "--db", url]) == 2
    assert main(["replay", "--data", str(pilot_folder), "--from", f"{past_days[0]:%Y-%m-%d}", "--reps", "0", "--db", url]) == 2
    assert "--reps" in capsys.readouterr().err


def test_a_day_without_a_paired_interval_is_not_printed_as_nan(report) -> None:
    """One replayed day gives no paired interval (NaN bounds); the verdict says so instead of '+nan to +nan'."""
    import copy

    one = copy.copy(report)
    one.paired = report.paired.assign(ci_lo=float("nan"), ci_hi=float("nan"))
    text = one.verdict()
    assert "nan" not in text.lower() and "one day gives no interval" in text
