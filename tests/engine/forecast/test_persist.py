"""Model persistence without pickle (engine/forecast/persist.py): a saved model loads in a fresh
process and forecasts exactly what the trained one does."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from engine.forecast.persist import load_forecaster, save_forecaster
from engine.forecast.registry import Registry

REPO = Path(__file__).resolve().parents[3]
COLUMNS = ["p50", "p80", "p95", "cancel_prob"]

# Loads the registry's current model in a new interpreter and writes its forecasts of the booked cases.
FRESH = """
import sys
from engine.forecast.registry import Registry
from engine.hospital import load_hospital
root, folder, out = sys.argv[1:4]
h = load_hospital(folder).hospital
mv = Registry(root).load("small")
booked = h.cases[h.cases["status"] == "booked"]
mv.forecaster.predict(booked, h.cases, as_of=h.as_of()).to_csv(out, index=False)
"""


def _forecast(fc, h) -> pd.DataFrame:
    booked = h.cases[h.cases["status"] == "booked"]
    return fc.predict(booked, h.cases, as_of=h.as_of())


def test_a_saved_model_forecasts_the_same_in_a_fresh_process(small_hospital, fitted, tmp_path) -> None:
    folder, h = small_hospital
    _, fc = fitted
    mine = _forecast(fc, h)
    version = Registry(tmp_path / "models").save("small", fc, {"data_hash": "abcdef"}, {})
    saved = tmp_path / "models" / "small" / version
    names = {p.name for p in saved.iterdir()}
    assert "model.json" in names and "arrays.npz" in names and not any(n.endswith(".pkl") for n in names)
    assert sum(n.endswith(".cbm") for n in names) == 1 + fc.cancellation_available  # duration (+ cancellation)
    json.loads((saved / "model.json").read_text())  # plain JSON
    out = tmp_path / "fresh.csv"
    subprocess.run([sys.executable, "-c", FRESH, str(tmp_path / "models"), str(folder), str(out)], cwd=REPO, check=True,
                   timeout=300)
    theirs = pd.read_csv(out)
    assert len(theirs) == len(mine) > 0
    assert list(theirs["case_id"].astype(str)) == list(mine["case_id"].astype(str))
    assert set(COLUMNS) <= set(mine.columns)
    for c in COLUMNS:
        np.testing.assert_allclose(theirs[c].to_numpy(float), mine[c].to_numpy(float), rtol=1e-9, atol=1e-9,
                                   err_msg=c)


def test_loaded_state_matches_the_trained_one(fitted, small_hospital, tmp_path) -> None:
    _, fc = fitted
    save_forecaster(fc, tmp_path)
    back = load_forecaster(tmp_path)
    assert type(back) is type(fc) and back.params == fc.params
    d0, d1 = fc.duration_, back.duration_
    np.testing.assert_array_equal(d1.calibration_residuals_, d0.calibration_residuals_)
    np.testing.assert_array_equal(d1.calibration_times_, d0.calibration_times_)
    assert list(d1.calibration_groups_) == list(d0.calibration_groups_) and d1.calibration_start_ == d0.calibration_start_
    assert d1.blend_ == d0.blend_ and d1.offset_source_ == d0.offset_source_ and back.notes == fc.notes
    assert back.train_until_ == fc.train_until_ and back.training_window_ == fc.training_window_


def test_a_value_without_a_file_form_is_refused_naming_where(fitted, tmp_path) -> None:
    _, fc = fitted
    fc.duration_.__dict__["surprise_"] = object()
    try:
        with pytest.raises(TypeError, match=r"forecaster\.duration_\.surprise_"):
            save_forecaster(fc, tmp_path)
    finally:
        del fc.duration_.__dict__["surprise_"]


def test_a_pickled_model_of_the_old_format_asks_for_retraining(fitted, tmp_path) -> None:
    from engine.errors import InputError

    _, fc = fitted
    reg = Registry(tmp_path)
    version = reg.save("small", fc, {"data_hash": "abcdef"}, {})
    meta = tmp_path / "small" / version / "meta.json"
    meta.write_text(json.dumps({**json.loads(meta.read_text()), "format_version": 1}))
    with pytest.raises(InputError, match="format 1.*retrain"):
        reg.load("small")
