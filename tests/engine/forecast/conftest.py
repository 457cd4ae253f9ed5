"""A small generated hospital and a quickly trained forecaster, shared by the forecast tests."""
from __future__ import annotations

import pandas as pd
import pytest

from engine.forecast import ForecastParams, Forecaster
from engine.generator import GeneratorParams, write_hospital
from engine.hospital import load_hospital

# Few CatBoost iterations: tests check behaviour; accuracy at full size is in bench/.
FAST = ForecastParams(iterations=80, cancel_iterations=60, calibration_days=60, min_train_cases=100)


@pytest.fixture(scope="session")
def small_hospital(tmp_path_factory):
    folder = tmp_path_factory.mktemp("fc") / "small"
    write_hospital(folder, GeneratorParams(seed=3, rooms=6, history_days=360, horizon_days=7))
    return folder, load_hospital(folder).hospital


@pytest.fixture(scope="session")
def fitted(small_hospital):
    _, h = small_hospital
    as_of = h.as_of()
    fc = Forecaster(FAST).fit(h.cases, train_until=as_of - pd.Timedelta(days=60), rooms=h.rooms)
    return h, fc
