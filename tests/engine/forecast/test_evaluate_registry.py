from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from engine.forecast import Registry, evaluate, train_and_register
from tests.engine.forecast.conftest import FAST

REPO = Path(__file__).resolve().parents[3]
CONTRACT_KEYS = {"n_train", "n_test", "mae_p50", "mae_baseline_booked", "mae_baseline_history", "coverage_p80",
                 "coverage_p95", "pinball_p80", "cancel_auc", "train_seconds"}


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "engine", *args], cwd=REPO, capture_output=True, text=True, timeout=600)


def test_evaluate_report_has_contract_keys_and_beats_booked(small_hospital):
    _, h = small_hospital
    test_from = h.as_of() - pd.Timedelta(days=60)
    rep = evaluate(h.cases, test_from, FAST, rooms=h.rooms)
    out = rep.to_json()
    assert CONTRACT_KEYS <= set(out)
    assert out["n_test"] > 100 and out["n_train"] > out["n_test"]
    assert out["mae_p50"] < out["mae_baseline_booked"]
    assert set(rep.by_service_line["service_line"]) == set(rep.predictions["service_line"])
    # Pinball loss at 0.8 agrees with its definition on the per-case predictions.
    d = rep.predictions
    diff = d["actual"] - d["p80"]
    assert out["pinball_p80"] == pytest.approx(np.mean(np.maximum(0.8 * diff, -0.2 * diff)))


def test_evaluate_cli_on_case_table_without_booked_or_surgeon_with_corrupt_rows(small_hospital, tmp_path):
    folder, h = small_hospital
    raw = pd.read_csv(folder / "cases.csv", dtype=str, keep_default_na=False)
    raw = raw.drop(columns=["booked_minutes", "surgeon_id"])
    raw["hospital_extra"] = "x"
    bad = raw.index[raw["status"] == "completed"][:3]
    raw.loc[bad, "wheels_out"] = "not-a-time"
    path = tmp_path / "real_cases.csv"
    raw.to_csv(path, index=False)
    test_from = str((h.as_of() - pd.Timedelta(days=60)).date())
    res = _run("evaluate", "--data", str(path), "--test-from", test_from, "--iterations", "60", "--json", str(tmp_path / "e.json"))
    assert res.returncode == 0, res.stderr
    out = json.loads((tmp_path / "e.json").read_text())
    assert out["mae_baseline_booked"] is None
    assert out["n_quarantined"] == 3
    assert out["mae_p50"] is not None and 0 < out["coverage_p80"] < 1


def test_evaluate_cli_bad_input_exits_2(small_hospital, tmp_path):
    folder, h = small_hospital
    res = _run("evaluate", "--data", str(folder), "--test-from", "not-a-date")
    assert res.returncode == 2 and "--test-from" in res.stderr
    res = _run("evaluate", "--data", str(folder), "--test-from", "2000-01-01")
    assert res.returncode == 2 and "too little data" in res.stderr and "at least" in res.stderr
    assert not (tmp_path / "x.json").exists()


def test_train_and_register_round_trip(small_hospital, tmp_path):
    _, h = small_hospital
    reg = Registry(tmp_path / "models")
    steps = []
    mv = train_and_register(h, "small", FAST, reg, test_days=60, progress=lambda f, t: steps.append(f))
    assert reg.current_version("small") == mv.version
    assert steps[-1] == 1.0 and steps == sorted(steps)
    for key in ("train_from", "train_until", "data_hash", "params", "metrics", "drift_state", "fit_seconds"):
        assert key in mv.meta
    assert mv.meta["train_until"] == str((h.as_of() - pd.Timedelta(days=1)).date())
    assert len(mv.artefact("backtest.parquet")) == mv.meta["metrics"]["n_test"]
    again = reg.load("small")
    booked = h.cases[h.cases["status"] == "booked"]
    a = mv.forecaster.predict(booked, h.cases, as_of=h.as_of())
    b = again.forecaster.predict(booked, h.cases, as_of=h.as_of())
    pd.testing.assert_frame_equal(a, b)
    assert list(reg.versions("small")["version"]) == [mv.version]
