"""A small generated hospital shared by the allocator tests, with hand-made forecasts.

The forecasts are P50 = 1.15 x booked minutes, P80 = 1.4 x, P95 = 1.7 x: the allocator's
behaviour is what is tested here, not the ML (a fast forecaster is trained only for the CLI).
"""
from __future__ import annotations

import dataclasses

import pandas as pd
import pytest

from engine.forecast import ForecastParams, Registry, train_and_register
from engine.generator import GeneratorParams, write_hospital
from engine.hospital import Hospital, load_hospital
from engine.plan import PlanParams, PlanResult, plan
from tests.feasibility import check_schedule

MONDAY = pd.Timestamp("2027-01-04")  # the generator's as-of date: the first day of the horizon
FAST = ForecastParams(iterations=60, cancel_iterations=50, calibration_days=60, min_train_cases=100)


def horizon(days: int, start: pd.Timestamp = MONDAY) -> list[pd.Timestamp]:
    return [start + pd.Timedelta(days=i) for i in range(days)]


def make_forecasts(cases: pd.DataFrame, scale: float = 1.0) -> pd.DataFrame:
    booked = cases[cases["status"] == "booked"]
    bm = booked["booked_minutes"].astype(float)
    return pd.DataFrame({"case_id": booked["case_id"].to_numpy(), "p50": (1.15 * scale * bm).to_numpy(),
                         "p80": (1.4 * scale * bm).to_numpy(), "p95": (1.7 * scale * bm).to_numpy(), "cancel_prob": 0.05})


def assert_no_violations(h: Hospital, schedule: pd.DataFrame, dates: list, **kw) -> None:
    """The independent checker finds nothing (all of H1..H10) in the exported schedule."""
    violations = check_schedule(h, schedule, horizon_dates=dates, **kw)
    assert not violations, "\n".join(str(v) for v in violations[:20])


def with_(h: Hospital, **frames) -> Hospital:
    """A copy of the hospital with some frames replaced (the checker and the planner see the same)."""
    return dataclasses.replace(h, **frames)


@pytest.fixture(scope="session")
def hospital_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("plan") / "h8"
    write_hospital(folder, GeneratorParams(seed=3, rooms=8, history_days=300, horizon_days=7))
    return folder


@pytest.fixture(scope="session")
def h(hospital_folder) -> Hospital:
    return load_hospital(hospital_folder).hospital


@pytest.fixture(scope="session")
def fc(h) -> pd.DataFrame:
    return make_forecasts(h.cases)


@pytest.fixture(scope="session")
def day_plans(h, fc) -> dict[str, PlanResult]:
    """One-day plans of the first horizon day, one per solver (shared by several tests)."""
    return {s: plan(h, fc, MONDAY, PlanParams(solver=s, time_limit_s=20)) for s in ("highs", "glpk", "rules")}


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory, h, hospital_folder):
    """A model registry holding a quickly trained forecaster for the CLI's ``plan``."""
    root = tmp_path_factory.mktemp("models")
    train_and_register(h, hospital_folder.name, FAST, Registry(root))
    return root
