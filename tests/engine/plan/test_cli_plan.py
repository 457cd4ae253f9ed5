"""The ``plan`` command (CONTRACTS.md sections 2 and 3): schedule.csv, --json keys, exit codes."""
from __future__ import annotations

import importlib
import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from engine.cli import main
from tests.engine.plan.conftest import MONDAY, assert_no_violations, horizon

SCHEDULE_COLUMNS = ["case_id", "surgeon_id", "service_line", "date", "room_id", "status", "start", "end_p50",
                    "end_p80", "pacu_in", "pacu_out", "reason"]
JSON_KEYS = {"status", "solver", "objective", "mip_gap", "solve_seconds", "n_scheduled", "n_deferred",
             "expected_overtime_minutes", "utilization", "fallback_used"}
REPO = Path(__file__).resolve().parents[3]

solve_mod = importlib.import_module("engine.plan.solve")


def run_plan(folder, models, tmp_path, *extra: str) -> tuple[int, Path, Path]:
    out, js = tmp_path / "schedule.csv", tmp_path / "plan.json"
    code = main(["plan", "--data", str(folder), "--date", f"{MONDAY:%Y-%m-%d}", "--models", str(models),
                 "--out", str(out), "--json", str(js), *extra])
    return code, out, js


@pytest.mark.parametrize("solver, days", [("highs", 1), ("glpk", 1), ("rules", 1), ("highs", 2)])
def test_plan_writes_a_contract_schedule_and_json(hospital_folder, h, models_dir, tmp_path, solver, days) -> None:
    code, out, js = run_plan(hospital_folder, models_dir, tmp_path, "--solver", solver, "--days", str(days),
                             "--time-limit", "10")
    assert code == 0
    header = pd.read_csv(out, nrows=0).columns.tolist()
    assert header[:len(SCHEDULE_COLUMNS)] == SCHEDULE_COLUMNS
    data = json.loads(js.read_text())
    assert JSON_KEYS <= set(data)
    s = pd.read_csv(out, dtype=str)
    assert data["n_scheduled"] == int((s["status"] == "scheduled").sum())
    assert data["n_deferred"] == int((s["status"] == "deferred").sum())
    assert data["solver"] == (solver if not data["fallback_used"] else "rules")
    assert isinstance(data["fallback_used"], bool)
    assert_no_violations(h, out, horizon(days))


@pytest.mark.parametrize("args", [
    ["--date", "2027-13-45"], ["--date", "not-a-date"], ["--date", "04/01/2027"], ["--date", "2027-1-4"],
    ["--date", "2027-01-04", "--days", "0"],
    ["--date", "2027-01-04", "--days", "8"], ["--date", "2027-01-04", "--time-limit", "0"],
])
def test_bad_options_exit_2(hospital_folder, models_dir, tmp_path, args, capsys) -> None:
    out = tmp_path / "s.csv"
    code = main(["plan", "--data", str(hospital_folder), "--models", str(models_dir), "--out", str(out), *args])
    assert code == 2 and not out.exists()
    assert "bad input" in capsys.readouterr().err


def test_unknown_folder_exits_2_in_a_real_process(tmp_path) -> None:
    res = subprocess.run([sys.executable, "-m", "engine", "plan", "--data", str(tmp_path / "nowhere"),
                          "--date", "2027-01-04", "--out", str(tmp_path / "s.csv")],
                         cwd=REPO, capture_output=True, text=True, timeout=120)
    assert res.returncode == 2 and "nowhere" in res.stderr


def test_forced_fallback_is_reported_in_the_json(hospital_folder, h, models_dir, tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.setattr(solve_mod, "glpsol_path", lambda: None)
    code, out, js = run_plan(hospital_folder, models_dir, tmp_path, "--solver", "glpk")
    assert code == 0
    data = json.loads(js.read_text())
    assert data["fallback_used"] is True and data["solver"] == "rules" and data["status"] == "not_available"
    assert "not available" in data["fallback_reason"] and "rules-based" in data["fallback_reason"]
    assert "FALLBACK" in capsys.readouterr().err
    assert_no_violations(h, out, horizon(1))


def test_dates_without_booked_cases_say_so(hospital_folder, models_dir, tmp_path, capsys) -> None:
    """An empty plan is not a quiet week: the command says the dates hold no booked case, and where they are."""
    out, js = tmp_path / "s.csv", tmp_path / "p.json"
    code = main(["plan", "--data", str(hospital_folder), "--models", str(models_dir), "--date", "2030-03-04",
                 "--days", "2", "--out", str(out), "--json", str(js)])
    assert code == 0
    data = json.loads(js.read_text())
    assert data["n_scheduled"] == 0 and data["n_deferred"] == 0
    err = capsys.readouterr().err
    assert "no booked case falls on 2030-03-04 to 2030-03-05" in err
    assert "booked cases fall on 20" in err


def test_too_little_history_plans_on_booked_minutes(tmp_path, capsys) -> None:
    """Twenty days of history cannot train a model; the rules still plan, on the model-free
    forecast, and the output says which forecast it used."""
    from engine.generator import GeneratorParams, write_hospital

    folder = tmp_path / "young"
    write_hospital(folder, GeneratorParams(seed=4, rooms=3, history_days=20, horizon_days=3))
    out, js = tmp_path / "s.csv", tmp_path / "p.json"
    code = main(["plan", "--data", str(folder), "--models", str(tmp_path / "models"), "--date", "2027-01-04",
                 "--solver", "rules", "--out", str(out), "--json", str(js)])
    assert code == 0, capsys.readouterr().err
    data = json.loads(js.read_text())
    assert data["model_version"] is None and data["forecast"].startswith("booked minutes")
    assert data["n_scheduled"] > 0
    err = capsys.readouterr().err
    assert "too little data to forecast" in err and str(folder / "cases.csv") in err
