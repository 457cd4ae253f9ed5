"""Pages never show a raw traceback (issue 14, defects 2): a hospital with no booked cases, no model or
no cancellations gets a sentence that says so, on every page."""
from __future__ import annotations

import pandas as pd
import pytest

from engine.forecast import Registry, train_and_register
from engine.generator import GeneratorParams, write_hospital
from engine.hospital import load_hospital
from tests.dashboard.conftest import app, use_hospital
from tests.engine.forecast.conftest import FAST

pytestmark = pytest.mark.slow
PAGES = ["forecasts", "schedule", "simulation", "whatif", "overview", "fairness", "governance"]


def _hospital(root, name: str, drop_status: str | None, train: bool):
    folder = root / name
    write_hospital(folder, GeneratorParams(seed=5, rooms=4, history_days=240, horizon_days=3))
    if drop_status:
        c = pd.read_csv(folder / "cases.csv")
        c[c["status"] != drop_status].to_csv(folder / "cases.csv", index=False)
    if train:
        train_and_register(load_hospital(folder).hospital, folder.name, FAST, Registry(root / "models"), test_days=60)
    return folder


@pytest.fixture(scope="module")
def hospitals(tmp_path_factory):
    root = tmp_path_factory.mktemp("empty")
    return root, {"no booked cases": _hospital(root, "nobooked", "booked", True),
                  "no cancellations": _hospital(root, "nocancel", "cancelled", True),
                  "no model": _hospital(root, "nomodel", None, False)}


def _open_all(hospitals, kind, monkeypatch, tmp_path):
    root, folders = hospitals
    use_hospital(monkeypatch, folders[kind], tmp_path, models=root / "models")
    at = app()
    at.run()
    assert not at.exception, at.exception
    seen = {}
    for page in PAGES:
        at.switch_page(f"../pages/{page}.py").run()
        assert not at.exception, (kind, page, [e.value for e in at.exception])
        seen[page] = [e.value for k in ("info", "warning", "error", "success") for e in at.get(k)]
    return at, seen


def test_no_booked_cases_every_page_says_so(hospitals, monkeypatch, tmp_path):
    at, seen = _open_all(hospitals, "no booked cases", monkeypatch, tmp_path)
    assert any("No booked cases" in t for t in seen["forecasts"])
    assert not any("Against your block rules" in t for t in seen["schedule"])  # no verdict on nothing compared
    for page in ("schedule", "simulation", "whatif"):
        assert any("no booked cases, so there is nothing" in t for t in seen[page]), page
    assert any("no booked cases, so there is no coming plan" in t for t in seen["overview"])
    assert any("nothing to review" in t for t in seen["fairness"])


def test_no_model_every_page_says_so(hospitals, monkeypatch, tmp_path):
    at, seen = _open_all(hospitals, "no model", monkeypatch, tmp_path)
    assert any("No forecasting model" in t for t in seen["forecasts"])
    for page in ("schedule", "simulation", "whatif"):
        assert any("Train one on the Forecasts page" in t for t in seen[page]), page
        # No dead end: without a model the page works on booked minutes and says so.
        assert any("this page uses booked minutes" in t for t in seen[page]), page
    assert any("Train a forecasting model" in t for t in seen["overview"])
    at.switch_page("../pages/schedule.py").run()
    assert not at.exception
    assert any(m.label.startswith("Scheduled") for m in at.metric), [m.label for m in at.metric]


def test_no_cancellations_pages_work_and_simulate(hospitals, monkeypatch, tmp_path):
    at, seen = _open_all(hospitals, "no cancellations", monkeypatch, tmp_path)
    at.switch_page("../pages/simulation.py").run()
    at.number_input(key="sim_reps").set_value(50)
    at.multiselect(key="sim_policies").set_value(["rules"])
    at.get("form_submit_button")[0].click().run()
    assert not at.exception, at.exception
    assert any("worst5_mean" in df.value.columns for df in at.dataframe)
