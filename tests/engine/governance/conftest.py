"""Shared fixtures: a small generated hospital with booked-minute forecasts, a plan, and a governance
ledger on SQLite and on the local PostgreSQL (a private schema, skipped only when no server answers)."""
from __future__ import annotations

import shutil
import uuid
from pathlib import Path

import pandas as pd
import pytest

from engine.generator import GeneratorParams, write_hospital
from engine.governance import Governance, User
from engine.hospital import load_hospital
from engine.plan import PlanParams, plan
from tests.conftest import pg_private_schema

COORD = User("carol", "coordinator")
COORD2 = User("dave", "coordinator")
LEAD = User("lena", "leadership")
BOARD = User("gina", "governance")
VIEWER = User("vic", "viewer")


def forecasts_for(h) -> pd.DataFrame:
    """The brief's test forecasts: P50 = 1.15 x booked minutes, P80 = 1.4 x booked minutes."""
    b = h.cases[h.cases["status"] == "booked"]
    return pd.DataFrame({"case_id": b["case_id"].to_numpy(), "p50": 1.15 * b["booked_minutes"].to_numpy(float),
                         "p80": 1.4 * b["booked_minutes"].to_numpy(float)})


@pytest.fixture(scope="session")
def gov_folder(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("gov") / "small"
    write_hospital(folder, GeneratorParams(seed=3, rooms=6, history_days=120, horizon_days=14))
    return folder


@pytest.fixture(scope="session")
def loaded(gov_folder):
    return load_hospital(gov_folder)


@pytest.fixture(scope="session")
def hospital(loaded):
    return loaded.hospital


@pytest.fixture(scope="session")
def forecasts(hospital) -> pd.DataFrame:
    return forecasts_for(hospital)


@pytest.fixture(scope="session")
def day1(hospital) -> pd.Timestamp:
    return hospital.as_of()


@pytest.fixture(scope="session")
def planned(hospital, forecasts, day1):
    """An optimizer plan for the first day (HiGHS)."""
    return plan(hospital, forecasts, day1, PlanParams(days=1, solver="highs", time_limit_s=20))


@pytest.fixture(scope="session")
def rules_planned(hospital, forecasts, day1):
    return plan(hospital, forecasts, day1, PlanParams(days=1, solver="rules"))


@pytest.fixture
def folder_copy(gov_folder, tmp_path) -> Path:
    """A copy of the hospital folder that a test may damage."""
    dst = tmp_path / "copy"
    shutil.copytree(gov_folder, dst)
    return dst


# --------------------------------------------------------------------------- databases


@pytest.fixture(scope="session")
def gov_pg_url(pg_url: str):
    """A fresh PostgreSQL schema for this session, as a URL whose search_path points at it."""
    with pg_private_schema("gov_test") as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'gov.sqlite'}"
    return request.getfixturevalue("gov_pg_url")


@pytest.fixture
def gov(db_url: str):
    g = Governance(db_url)
    yield g
    g.close()


@pytest.fixture
def hid() -> str:
    """A hospital id no other test uses (the PostgreSQL schema is shared by the session)."""
    return f"h-{uuid.uuid4().hex[:10]}"
