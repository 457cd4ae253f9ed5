"""The fairness policy (settings [fairness]) applied by every plan, checked as the report counts."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from engine.cli import main
from engine.errors import InputError
from engine.contract import SCHEDULE_KINDS
from engine.io import write_csv
from engine.fairness import fairness_report
from engine.fairness.policy import check_policy
from engine.hospital import load_hospital
from engine.plan import PlanParams, plan
from tests.feasibility import assert_feasible
from tests.minihospital import write_mini_hospital

# OR1 is open time all day; OR2 is Urology's block in the afternoon only; OR3 is Orthopedics'.
# Prime time is the morning. Urology's cases are booked in OR2, so the plain plan (which keeps
# cases in their booked rooms) gives Urology no prime time at all.
ROOMS = """room_id,site,capabilities,open_time,close_time
OR1,Main,,07:30,17:00
OR2,Main,,07:30,17:00
OR3,Main,,07:30,17:00
"""
SURGEONS = """surgeon_id,service_line
SA1,Orthopedics
SA2,Orthopedics
SB1,Urology
"""
BLOCKS = """date,room_id,service_line,surgeon_id,start_time,end_time
2027-01-04,OR2,Urology,,12:30,17:00
2027-01-04,OR3,Orthopedics,,07:30,17:00
"""
STAFFING = """date,staffed_rooms,anesthesia_teams,pacu_beds
2027-01-04,3,3,6
"""
SETTINGS = """hospital_name = "Fairness Test Hospital"
turnover_minutes = 30
pacu_minutes = 60
prime_time = "07:30-12:30"
as_of = "2027-01-04"

[fairness]
max_prime_time_gap_points = 5
min_group_cases = 3
"""


def _cases(urology_minutes: int = 60) -> list[str]:
    rows = []
    booked = [("SA1", "Orthopedics", "27130", "OR3", 90)] * 4 + [("SA2", "Orthopedics", "27447", "OR1", 90)] * 3 \
        + [("SB1", "Urology", "55866", "OR2", urology_minutes)] * 3
    for n, (sg, sl, code, room, minutes) in enumerate(booked, start=1):
        rows.append(f"B{n:03d},2027-01-04,booked,{sl},{code},,{sg},{room},{minutes},2026-12-20T10:00,,,,,,elective,,,,,,,,,Main")
    return rows


def _forecasts(h) -> pd.DataFrame:
    b = h.cases[h.cases["status"] == "booked"]
    m = b["booked_minutes"].astype(float).to_numpy()
    return pd.DataFrame({"case_id": b["case_id"].to_numpy(), "p50": m, "p80": m * 1.1, "p95": m * 1.25, "cancel_prob": 0.0})


@pytest.fixture
def fair_hospital(tmp_path: Path) -> Path:
    return write_mini_hospital(tmp_path / "fair", _cases(), rooms_csv=ROOMS, surgeons_csv=SURGEONS, blocks_csv=BLOCKS,
                               staffing_csv=STAFFING, settings_toml=SETTINGS)


PARAMS = PlanParams(time_limit_s=20, hold_addon_rooms=False)


def test_plain_plan_breaks_the_policy_and_the_policy_plan_meets_it(fair_hospital: Path) -> None:
    h = load_hospital(fair_hospital).hospital
    fc = _forecasts(h)
    plain = plan(h, fc, "2027-01-04", PARAMS.with_(fairness_policy=False))
    assert plain.fairness["applied"] is False
    before = check_policy(h, plain.schedule, forecasts=fc)
    assert not before.met and before.worst_group == "Urology" and before.max_prime_time_gap_points > 5
    fair = plan(h, fc, "2027-01-04", PARAMS)
    after = check_policy(h, fair.schedule, forecasts=fc)
    assert after.max_prime_time_gap_points <= 5.0 + 1e-6, after.to_dict()
    assert fair.fairness["met"] and fair.fairness["applied"] and fair.fairness["stated"]
    # The plan's own verdict is the fairness report's count, not the MIP's estimate.
    rep = fairness_report(h, fair.schedule, fc)
    assert abs(100 * rep["max_prime_time_gap"] - fair.fairness["max_prime_time_gap_points"]) < 0.01
    assert fair.schedule["status"].eq("scheduled").sum() >= plain.schedule["status"].eq("scheduled").sum() - 1
    assert_feasible(fair_hospital, fair.schedule)
    assert fair.to_json()["fairness_policy"]["met"] is True


def test_infeasible_policy_is_explained_in_words(tmp_path: Path) -> None:
    # Urology's three cases each run longer than prime time itself and longer than its block:
    # no plan within the hard rules can give it its share; the plan says so instead of failing.
    folder = write_mini_hospital(tmp_path / "long", _cases(urology_minutes=320), rooms_csv=ROOMS, surgeons_csv=SURGEONS,
                                 blocks_csv=BLOCKS.replace("2027-01-04,OR2,Urology,,12:30,17:00\n", "2027-01-04,OR2,Urology,,15:00,17:00\n"),
                                 staffing_csv=STAFFING, settings_toml=SETTINGS)
    h = load_hospital(folder).hospital
    fc = _forecasts(h)
    res = plan(h, fc, "2027-01-04", PARAMS.with_(allow_open_time=False))
    f = res.fairness
    assert not f["met"] and f["worst_group"] == "Urology"
    text = " ".join(f["explanation"])
    assert "Urology" in text and "deferred" in text and "longer" in text and "prime time itself (300 min)" in text
    assert_feasible(folder, res.schedule)


def test_small_lines_are_reported_but_not_judged(fair_hospital: Path) -> None:
    h = load_hospital(fair_hospital).hospital
    fc = _forecasts(h)
    plain = plan(h, fc, "2027-01-04", PARAMS.with_(fairness_policy=False))
    strict = h.settings.fairness.model_copy(update={"min_group_cases": 4})
    chk = check_policy(h, plain.schedule, strict, fc)
    assert chk.judged_groups == ["Orthopedics"] and chk.met  # Urology's 3 cases are below 4


def test_cli_plan_and_fairness_report_the_policy(fair_hospital: Path, tmp_path: Path, capsys) -> None:
    out, js, fj = tmp_path / "s.csv", tmp_path / "p.json", tmp_path / "f.json"
    # No model is registered for this folder; the plan CLI would train one, so plan through the engine.
    h = load_hospital(fair_hospital).hospital
    res = plan(h, _forecasts(h), "2027-01-04", PARAMS)
    write_csv(res.schedule, out, SCHEDULE_KINDS)
    assert main(["fairness", "--data", str(fair_hospital), "--schedule", str(out), "--json", str(fj),
                 "--models", str(tmp_path / "no-models")]) == 0
    rep = json.loads(fj.read_text())
    assert rep["disparities"]["small_groups"] == [] and "not judged" not in capsys.readouterr().out
    assert rep["policy"]["policy"]["max_prime_time_gap_points"] == 5.0 and rep["policy"]["source"] == "settings.toml [fairness]"
    assert rep["demand_basis"].startswith("booked minutes")
    # A line too small to judge (Urology's 3 cases under a minimum of 4) is named in the text, not only the JSON.
    (fair_hospital / "settings.toml").write_text(SETTINGS.replace("min_group_cases = 3", "min_group_cases = 4"))
    assert main(["fairness", "--data", str(fair_hospital), "--schedule", str(out), "--json", str(fj),
                 "--models", str(tmp_path / "no-models")]) == 0
    assert json.loads(fj.read_text())["disparities"]["small_groups"] == ["Urology"]
    assert "not judged (fewer than 4 cases, listed below): Urology" in capsys.readouterr().out
    bad = fair_hospital / "settings.toml"
    bad.write_text(SETTINGS.replace("max_prime_time_gap_points = 5", "max_prime_time_gap_points = -2"))
    assert main(["plan", "--data", str(fair_hospital), "--date", "2027-01-04", "--out", str(tmp_path / "x.csv"),
                 "--json", str(js)]) == 2
    assert not (tmp_path / "x.csv").exists()


def test_changing_the_policy_is_a_governance_action_audited_and_versioned(fair_hospital: Path, tmp_path: Path) -> None:
    from engine.governance import User, read_log
    from engine.governance.actions import set_fairness_policy

    url = f"sqlite:///{tmp_path / 'audit.sqlite'}"
    before = (fair_hospital / "settings.toml").read_text()
    with pytest.raises(PermissionError):
        set_fairness_policy(User("carol", "coordinator"), fair_hospital, "fair", {"max_prime_time_gap_points": 3}, ledger=url)
    board = User("gina", "governance")
    with pytest.raises(InputError) as bad:
        set_fairness_policy(board, fair_hospital, "fair", {"max_prime_time_gap_points": 300}, ledger=url)
    assert "fairness.max_prime_time_gap_points" in str(bad.value)
    assert (fair_hospital / "settings.toml").read_text() == before  # nothing written
    new = set_fairness_policy(board, fair_hospital, "fair", {"max_prime_time_gap_points": 3, "min_group_cases": 2},
                              note="board meeting 2027-01", ledger=url)
    assert new.max_prime_time_gap_points == 3.0
    h = load_hospital(fair_hospital).hospital
    assert h.settings.fairness.max_prime_time_gap_points == 3.0 and h.settings.fairness.min_group_cases == 2
    assert h.settings.prime_time == "07:30-12:30"  # the rest of the settings kept
    kept = list((fair_hospital / "settings_history").glob("settings-*.toml"))
    assert len(kept) == 1 and kept[0].read_text() == before
    log = read_log(url, "fair")
    assert list(log["kind"]) == ["set_fairness_policy"] and log.iloc[0]["actor"] == "gina"
