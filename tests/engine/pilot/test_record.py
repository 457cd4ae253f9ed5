"""Every recommendation audited: `plan` (and `replay`) append an entry with data hash, model version,
parameters and actor to the keyed chain; with no key, `plan` stops before writing anything."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine.cli import main
from engine.forecast import Registry
from engine.governance import read_log, verify_chain
from engine.governance.canonical import input_data_hash
from engine.pilot.record import UNAUTHENTICATED, cli_actor


@pytest.fixture(scope="module")
def registry(pilot_hospital, pilot_forecaster, tmp_path_factory) -> Path:
    models = tmp_path_factory.mktemp("models")
    Registry(models).save("pilot", pilot_forecaster, {"data_hash": "test"}, {})
    return models


def _plan(folder: Path, models: Path, url: str, out: Path, day: str, *extra: str) -> int:
    return main(["plan", "--data", str(folder), "--date", day, "--solver", "rules", "--models", str(models),
                 "--db", url, "--out", str(out), "--json", str(out.with_suffix(".json")), *extra])


def test_two_plans_leave_two_audited_recommendations(pilot_folder, pilot_hospital, registry, tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'store.sqlite'}"
    day = f"{pilot_hospital.as_of():%Y-%m-%d}"
    assert _plan(pilot_folder, registry, url, tmp_path / "a.csv", day) == 0
    assert _plan(pilot_folder, registry, url, tmp_path / "b.csv", day, "--days", "2") == 0
    log = read_log(url, "pilot")
    assert list(log["kind"]) == ["recommendation", "recommendation"]
    p0, p1 = log["payload"].iloc[0], log["payload"].iloc[1]
    assert p0["input_data_hash"] == input_data_hash(pilot_hospital)
    assert p0["model_version"] == json.loads((tmp_path / "a.json").read_text())["model_version"]
    assert p0["params"]["solver"] == "rules" and p0["params"]["days"] == 1 and p1["params"]["days"] == 2
    assert p0["command"] == "plan" and p0["n_scheduled"] == json.loads((tmp_path / "a.json").read_text())["n_scheduled"]
    assert p0["schedule_sha256"] != p1["schedule_sha256"]
    assert log["actor"].iloc[0] == cli_actor()[0] and log["role"].iloc[0] == UNAUTHENTICATED
    assert json.loads((tmp_path / "b.json").read_text())["audit_seq"] == 2
    assert verify_chain(url, "pilot").ok


def test_plan_without_a_key_stops_before_writing(pilot_folder, pilot_hospital, registry, tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.delenv("OR_AUDIT_KEY", raising=False)
    monkeypatch.delenv("OR_AUDIT_KEY_FILE", raising=False)
    url = f"sqlite:///{tmp_path / 'store.sqlite'}"
    assert _plan(pilot_folder, registry, url, tmp_path / "a.csv", f"{pilot_hospital.as_of():%Y-%m-%d}") == 2
    assert not (tmp_path / "a.csv").exists()
    err = capsys.readouterr().err
    assert "OR_AUDIT_KEY" in err and "OR_AUDIT_KEY_FILE" in err
