"""Shadow mode: a day planned and kept (stored, audited, versioned) but never published; the report against
what happened; scope by service line; a stored recommendation that no longer matches its audit entry; the
command's exit codes."""
from __future__ import annotations

import json

import pandas as pd
import pytest
import sqlalchemy as sa

from engine.cli import main
from engine.errors import InputError
from engine.governance import read_log
from engine.pilot.shadow import FORECAST_COLUMNS, ShadowParams, in_scope, planning_hospital, shadow_report, shadow_run, shadow_runs
from engine.pilot.store import SHADOW_RUNS, pilot_engine

FAST = ShadowParams(time_limit_s=5, reps=4)
ACTOR = ("tester", "coordinator")


def _forecasts(fc, hp, d):
    booked = hp.cases[(hp.cases["status"] == "booked") & (hp.cases["surgery_date"] == d)]
    return fc.predict(booked, hp.cases[hp.cases["surgery_date"] < d], as_of=d)[FORECAST_COLUMNS]


@pytest.fixture(scope="module")
def shadowed(tmp_path_factory, pilot_hospital, past_days, pilot_forecaster):
    """Two shadow runs of the first past day (versions 1 and 2) and one of the second, in a fresh store."""
    url = f"sqlite:///{tmp_path_factory.mktemp('shadow') / 'store.sqlite'}"
    runs = []
    for d in (past_days[0], past_days[0], past_days[1]):
        hp = planning_hospital(pilot_hospital, d)
        runs.append(shadow_run(url, "pilot", hp, _forecasts(pilot_forecaster, hp, d), d, "m-test", FAST, actor=ACTOR))
    return url, runs


def test_run_is_kept_versioned_audited_and_not_published(shadowed, past_days) -> None:
    url, runs = shadowed
    assert [r["shadow_version"] for r in runs] == [1, 2, 1] and all(r["published"] is False for r in runs)
    kept = shadow_runs(url, "pilot")
    assert list(kept["day"]) == [f"{past_days[0]:%Y-%m-%d}"] * 2 + [f"{past_days[1]:%Y-%m-%d}"]
    log = read_log(url, "pilot")
    assert list(log["kind"]) == ["shadow_run"] * 3
    p = log["payload"].iloc[0]
    assert p["model_version"] == "m-test" and p["input_data_hash"] and p["schedule_sha256"] and p["params"]["reps"] == 4
    assert list(kept["audit_seq"]) == list(log["seq"])
    eng, _ = pilot_engine(url)
    with eng.connect() as conn:  # the governance ledger holds no version: nothing can be published
        assert conn.execute(sa.text("select count(*) from gov_schedule_versions")).scalar() == 0


def test_report_compares_recommendation_with_what_happened(shadowed, pilot_hospital, past_days) -> None:
    url, runs = shadowed
    out = shadow_report(url, "pilot", pilot_hospital, past_days[:3], FAST, actor=ACTOR)
    assert [r["day"] for r in out["days"]] == [f"{d:%Y-%m-%d}" for d in past_days[:2]]
    assert out["skipped_days"] == [f"{past_days[2]:%Y-%m-%d}"]
    first = out["days"][0]
    assert first["shadow_version"] == 2  # the day's latest recommendation
    f = first["forecast"]
    assert f["n_cases"] > 0 and f["mae_p50_minutes"] > 0 and 0 <= f["coverage_p80"] <= f["coverage_p95"] <= 1
    for r in out["days"]:
        o = r["overtime"]
        assert min(o["avoided_minutes"], o["caused_minutes"]) == 0
        assert o["caused_minutes"] - o["avoided_minutes"] == pytest.approx(o["shadow_minutes"] - o["actual_schedule_minutes"])
        assert o["recorded_minutes"] is not None  # whole hospital: the records' own overtime is shown too
    t = out["totals"]
    assert t["overtime_net_minutes"] == pytest.approx(t["overtime_caused_minutes"] - t["overtime_avoided_minutes"])
    assert t["would_defer"] == sum(r["would_defer"]["n"] for r in out["days"])
    log = read_log(url, "pilot")
    e = log.iloc[-1]
    assert e["kind"] == "shadow_report" and e["seq"] == out["audit_seq"]
    assert e["payload"]["shadow_audit_seqs"] == [runs[1]["audit_seq"], runs[2]["audit_seq"]]


def test_deferred_cases_are_those_of_the_recommendation(pilot_hospital, past_days, pilot_forecaster, tmp_path) -> None:
    """One room left: the recommendation defers cases, and the report lists exactly those with their fate."""
    import dataclasses

    url = f"sqlite:///{tmp_path / 's.sqlite'}"
    d = past_days[2]
    hp = planning_hospital(pilot_hospital, d)
    one = dataclasses.replace(hp, rooms=hp.rooms.iloc[:1].reset_index(drop=True))
    r = shadow_run(url, "pilot", one, _forecasts(pilot_forecaster, hp, d), d, "m", FAST, actor=ACTOR)
    assert r["n_deferred"] > 0
    out = shadow_report(url, "pilot", pilot_hospital, [d], FAST, actor=ACTOR)
    wd = out["days"][0]["would_defer"]
    assert wd["n"] == r["n_deferred"] == len(wd["case_ids"])
    fate = pilot_hospital.cases.set_index("case_id").loc[wd["case_ids"], "status"]
    assert wd["ran_anyway"] == int((fate == "completed").sum())


def test_scope_by_service_line(pilot_hospital, past_days) -> None:
    d = past_days[0]
    hp = planning_hospital(pilot_hospital, d)
    line = hp.cases.loc[(hp.cases["status"] == "booked") & (hp.cases["surgery_date"] == d), "service_line"].mode()[0]
    scoped = in_scope(hp, ShadowParams(service_lines=(line,)))
    booked = scoped.cases[scoped.cases["status"] == "booked"]
    assert len(booked) and set(booked["service_line"]) == {line}
    assert (scoped.cases["status"] != "booked").sum() == (hp.cases["status"] != "booked").sum()  # history kept
    with pytest.raises(InputError, match="--service-lines"):
        in_scope(hp, ShadowParams(service_lines=("NO-SUCH-LINE",)))


def test_altered_recommendation_is_refused(shadowed, pilot_hospital, past_days) -> None:
    url, _ = shadowed
    eng, _ = pilot_engine(url)
    t = SHADOW_RUNS
    with eng.begin() as conn:
        row = conn.execute(sa.select(t.c.run_id, t.c.schedule_json).where(t.c.day == past_days[1].date())).first()
        sched = json.loads(row.schedule_json)
        sched[0]["room_id"] = "OR-ELSEWHERE"
        conn.execute(t.update().where(t.c.run_id == row.run_id).values(schedule_json=json.dumps(sched)))
    with pytest.raises(InputError, match="does not match its audit entry"):
        shadow_report(url, "pilot", pilot_hospital, [past_days[1]], FAST, actor=ACTOR)


def test_bad_params() -> None:
    with pytest.raises(ValueError, match="solver"):
        ShadowParams(solver="cplex")
    with pytest.raises(ValueError, match="reps"):
        ShadowParams(reps=0)


@pytest.mark.slow
def test_shadow_command(pilot_folder, past_days, tmp_path, capsys) -> None:
    url = f"sqlite:///{tmp_path / 'store.sqlite'}"
    d = f"{past_days[3]:%Y-%m-%d}"
    out = tmp_path / "run.json"
    assert main(["shadow", "run", "--data", str(pilot_folder), "--date", d, "--iterations", "20", "--time-limit", "5",
                 "--db", url, "--json", str(out)]) == 0
    j = json.loads(out.read_text())
    assert j["published"] is False and j["runs"][0]["day"] == d and j["runs"][0]["shadow_version"] == 1
    rep = tmp_path / "rep.json"
    assert main(["shadow", "report", "--data", str(pilot_folder), "--from", d, "--reps", "3", "--db", url,
                 "--json", str(rep)]) == 0
    assert json.loads(rep.read_text())["totals"]["n_days"] == 1
    assert list(read_log(url, "pilot")["kind"]) == ["shadow_run", "shadow_report"]
    capsys.readouterr()
    assert main(["shadow", "run", "--data", str(pilot_folder), "--date", "2026-13-01", "--db", url]) == 2
    assert "--date" in capsys.readouterr().err
    assert main(["shadow", "run", "--data", str(pilot_folder), "--date", d, "--service-lines", "NOPE", "--db", url]) == 2
    assert "--service-lines" in capsys.readouterr().err
    assert main(["shadow", "report", "--data", str(pilot_folder), "--from", "2099-01-05", "--db", url]) == 2
    assert "--from" in capsys.readouterr().err


def test_scope_by_site(pilot_hospital, past_days) -> None:
    """Rooms at the chosen site only, and the booked cases in rooms elsewhere left out; an unknown site names --sites."""
    import dataclasses

    hp = planning_hospital(pilot_hospital, past_days[0])
    rooms = hp.rooms.copy()
    rooms["site"] = ["North" if i == 0 else "South" for i in range(len(rooms))]
    two = dataclasses.replace(hp, rooms=rooms)
    north = in_scope(two, ShadowParams(sites=("North",)))
    assert list(north.rooms["room_id"]) == [rooms["room_id"].iloc[0]]
    booked = north.cases[north.cases["status"] == "booked"]
    assert booked["room_id"].dropna().isin(north.rooms["room_id"]).all()
    assert set(north.blocks["room_id"]) <= set(north.rooms["room_id"])
    with pytest.raises(InputError, match="--sites"):
        in_scope(two, ShadowParams(sites=("West",)))
