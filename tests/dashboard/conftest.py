"""AppTest fixtures: the dashboard on a temporary store, hospital folder and model registry."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from engine.forecast import Registry, train_and_register
from engine.generator import GeneratorParams, write_hospital
from engine.hospital import load_hospital
from tests.minihospital import write_mini_hospital

APP = str(Path(__file__).resolve().parents[2] / "dashboard" / "app.py")
REPO = Path(__file__).resolve().parents[2]


# The dashboard's plan settings in these tests (OR_PLAN_PARAMS, dashboard/state.py plan_overrides): CP-SAT
# gets 0.5 s per planned day instead of 3 s. It runs to its limit on every day (the sequencing model is
# rarely proven optimal), so the 3 s were most of an AppTest's time (test_imported_hospital: 17 days
# sequenced, 51 of 102 s); the pages' tests check what the pages show, not how well CP-SAT staggers
# PACU arrivals (tests/engine/plan does, with the engine's defaults).
TEST_PLAN_PARAMS = "sequence_time_limit_s=0.5"


def use_hospital(monkeypatch, folder, tmp_path, models=None) -> None:
    """Point the dashboard at ``folder`` with a fresh store, models folder and import folder, and the
    tests' plan settings (TEST_PLAN_PARAMS)."""
    monkeypatch.setenv("OR_PLAN_PARAMS", TEST_PLAN_PARAMS)
    monkeypatch.setenv("HOSPITAL_DIR", str(folder))
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'store.sqlite'}")
    monkeypatch.setenv("MODELS_DIR", str(models or tmp_path / "models"))
    monkeypatch.setenv("IMPORT_DIR", str(tmp_path / "imports"))
    monkeypatch.chdir(REPO)


def sign_in_as(at, role) -> None:
    """Demo sign-in as ``role`` (no users configured), failing on any exception."""
    at.selectbox(key="demo_role").set_value(role).run()
    assert not at.exception, at.exception


@pytest.fixture
def mini_env(tmp_path, monkeypatch):
    use_hospital(monkeypatch, write_mini_hospital(tmp_path / "mini"), tmp_path)
    return tmp_path


@pytest.fixture(scope="session")
def small_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("dash") / "smallhosp"
    write_hospital(folder, GeneratorParams(seed=5, rooms=5, history_days=300, horizon_days=5))
    return folder


@pytest.fixture
def small_env(small_folder, tmp_path, monkeypatch):
    use_hospital(monkeypatch, small_folder, tmp_path)
    return tmp_path


def app() -> AppTest:
    return AppTest.from_file(APP, default_timeout=180)


@pytest.fixture(scope="session")
def small_models(small_folder, tmp_path_factory) -> Path:
    """A registry holding one quickly trained model of the small hospital, trained once per session
    (per worker under xdist); tests get a copy (see ``trained``), so one that retrains changes only its own."""
    from tests.engine.forecast.conftest import FAST

    root = tmp_path_factory.mktemp("dash_models")
    train_and_register(load_hospital(small_folder).hospital, small_folder.name, FAST, Registry(root), test_days=60)
    return root


def copy_models(models: Path, tmp_path: Path) -> Path:
    """A test's own copy of a session's model registry (``tmp_path / "models"``, where use_hospital points)."""
    dst = tmp_path / "models"
    shutil.copytree(models, dst, dirs_exist_ok=True)
    return dst


@pytest.fixture
def trained(small_env, small_models):
    """small_env with the session's quickly trained model registered for the small hospital (a copy)."""
    copy_models(small_models, small_env)
    return small_env



@pytest.fixture(scope="session")
def shared_root(small_folder, small_models, tmp_path_factory) -> Path:
    """One store, model registry (a copy of the session's) and import folder for the tests that only read."""
    root = tmp_path_factory.mktemp("dash_shared")
    copy_models(small_models, root)
    return root


@pytest.fixture
def shared_trained(small_folder, shared_root, monkeypatch) -> Path:
    """``trained``, but for tests that only read (they open pages, move sliders and keep what they save in
    the session state; they never write to the store or the registry): every such test in a process
    uses the same store and registry, so the dashboard's caches (keyed by store, registry, stored
    version and model version: dashboard/state.py ``Inputs``) serve one test's plans, forecasts and
    what-if baselines to the next, as they serve one user's pages to another."""
    use_hospital(monkeypatch, small_folder, shared_root, models=shared_root / "models")
    return shared_root
