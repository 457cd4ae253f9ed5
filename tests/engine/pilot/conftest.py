"""A small generated hospital (4 rooms, 150 days of history) and a quickly fitted leak-free forecaster."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from engine.generator import GeneratorParams, write_hospital
from engine.hospital import load_hospital
from engine.pilot.replay import replay_dates, train_before


@pytest.fixture(scope="session")
def pilot_folder(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("pilot") / "pilot"
    write_hospital(folder, GeneratorParams(seed=5, rooms=4, history_days=150, horizon_days=7))
    return folder


@pytest.fixture(scope="session")
def pilot_hospital(pilot_folder):
    return load_hospital(pilot_folder).hospital


@pytest.fixture(scope="session")
def past_days(pilot_hospital) -> list[pd.Timestamp]:
    """Four weekdays ending about two weeks before the hospital's as-of date."""
    return replay_dates(pilot_hospital, pilot_hospital.as_of() - pd.Timedelta(days=21), 4)


@pytest.fixture(scope="session")
def pilot_forecaster(pilot_hospital, past_days):
    fc, _ = train_before(pilot_hospital, past_days[0], iterations=30)
    return fc
