"""Every page works on an imported hospital (issue 17, item 5): the sample export's onboarding variant
(ten weeks, a booked week, PACU times, no blocks or staffing files) imported with the suggested
mapping unedited, blocks and staffing inferred, a model trained; each page opens without a
traceback and the Schedule page plans the booked week's Monday."""
from __future__ import annotations

import pytest

from engine.forecast import Registry, train_and_register
from engine.hospital import load_hospital
from engine.importer import import_hospital
from engine.onboard import suggest_mapping
from tests.dashboard.conftest import REPO, app, use_hospital
from tests.engine.forecast.conftest import FAST

pytestmark = pytest.mark.slow
SAMPLE = REPO / "data" / "samples" / "or_utilization_export_pacu.csv"
PAGES = ["data", "forecasts", "schedule", "simulation", "whatif", "overview", "fairness", "governance"]


@pytest.fixture(scope="module")
def imported(tmp_path_factory):
    root = tmp_path_factory.mktemp("imported")
    (root / "map.yaml").write_text(suggest_mapping(SAMPLE).text)
    result = import_hospital(SAMPLE, root / "map.yaml", root / "sample")
    assert {"blocks.csv", "staffing.csv"} <= set(result.files)
    h = load_hospital(root / "sample").hospital
    train_and_register(h, "sample", FAST, Registry(root / "models"), test_days=14)
    return root


def test_every_page_opens_on_an_imported_hospital(imported, monkeypatch, tmp_path):
    use_hospital(monkeypatch, imported / "sample", tmp_path, models=imported / "models")
    at = app()
    at.run()
    assert not at.exception, at.exception
    assert at.session_state["hospital_id"] == "sample"
    for page in PAGES:
        at.switch_page(f"../pages/{page}.py").run()
        assert not at.exception, (page, [e.value for e in at.exception])
        broken = [e.value for e in at.error if "Traceback" in e.value or "Error:" in e.value]
        assert not broken, (page, broken)
    # The Schedule page plans the booked week's Monday on the inferred blocks and staffing.
    at.switch_page("../pages/schedule.py").run()
    assert not at.exception
    kpis = {m.label: m.value for m in at.metric}
    assert int(kpis["Scheduled"]) > 0, kpis
