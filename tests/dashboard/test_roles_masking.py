"""Roles and masking on every page (issue 14, defects 3): what a viewer may not do is disabled with the
reason, and procedure names and patient attributes are masked once, in dashboard/state.py, before any
picker, reason, table or download sees them."""
from __future__ import annotations

import pandas as pd
import pytest
from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage

from tests.dashboard.conftest import app, sign_in_as

pytestmark = pytest.mark.slow


def _booked_names(folder) -> list[str]:
    cases = pd.read_csv(folder / "cases.csv")
    names = cases.loc[cases["status"] == "booked", "procedure_name"].dropna().unique().tolist()
    assert names
    return names


def _texts(at) -> list[str]:
    out = [e.value for kind in ("markdown", "caption", "info", "warning", "error", "success") for e in at.get(kind)]
    for sb in at.selectbox:
        out += [str(o) for o in sb.options]
    return out


def _leaks(texts, names) -> list[str]:
    return [t for t in texts for n in names if n in t]


@pytest.fixture
def downloads(monkeypatch):
    """Every file a page hands to a download button during the test, by file name."""
    got: dict[str, bytes] = {}
    orig = MemoryMediaFileStorage.load_and_get_id

    def spy(self, path_or_data, mimetype, kind, filename=None):
        if filename is not None and isinstance(path_or_data, bytes):
            got[filename] = path_or_data
        return orig(self, path_or_data, mimetype, kind, filename)

    monkeypatch.setattr(MemoryMediaFileStorage, "load_and_get_id", spy)
    return got


def test_viewer_on_forecasts_cannot_retrain_and_sees_no_procedure_names(trained, small_folder):
    names = _booked_names(small_folder)
    at = app()
    at.run()
    sign_in_as(at, "viewer")
    at.switch_page("../pages/forecasts.py").run()
    assert not at.exception, at.exception
    retrain = at.button(key="retrain")
    assert retrain.disabled and "may not" in (retrain.help or "") or "does not grant" in (retrain.help or "")
    # The case picker, the reasons and the table: no procedure name anywhere.
    assert not _leaks(_texts(at), names)
    table = next(df.value for df in at.dataframe if "reasons" in df.value.columns)
    assert set(table["procedure_name"]) == {"•••"}
    assert not table["reasons"].map(lambda t: any(n in str(t) for n in names)).any()
    for cid in table["case_id"].iloc[1:4]:
        at.selectbox(key="forecast_case").set_value(cid).run()
        assert not _leaks(_texts(at), names)


def test_coordinator_still_sees_procedure_names_and_may_retrain(trained, small_folder):
    names = _booked_names(small_folder)
    at = app()
    at.run()
    sign_in_as(at, "coordinator")
    at.switch_page("../pages/forecasts.py").run()
    table = next(df.value for df in at.dataframe if "reasons" in df.value.columns)
    assert set(table["procedure_name"]) & set(names)
    # Retraining follows data/roles.toml: enabled where the coordinator has `retrain`.
    from engine.governance import load_roles

    assert at.button(key="retrain").disabled is (not load_roles().can("coordinator", "retrain"))


def test_viewer_on_schedule_day_list_and_downloads_are_masked_and_replan_is_off(trained, small_folder, downloads):
    names = _booked_names(small_folder)
    at = app()
    at.run()
    sign_in_as(at, "leadership")  # not clinical: masked like a viewer, but a real planning audience
    at.switch_page("../pages/schedule.py").run()
    assert not at.exception, at.exception
    assert not _leaks(_texts(at), names)
    day_list = next(df.value for df in at.dataframe if "Procedure" in df.value.columns)
    assert set(day_list["Procedure"].dropna()) == {"•••"}
    html = {k: v.decode() for k, v in downloads.items() if k.endswith(".html")}
    assert len(html) == 2 and not _leaks(html.values(), names)
    assert "•••" in next(iter(html.values()))
    # Re-planning is the coordinator's (data/roles.toml `replan`): the form says why it is off.
    assert at.get("form_submit_button")[-1].disabled
    assert any("Re-planning is not available" in i.value for i in at.info)


def test_viewer_on_fairness_sees_why_not_and_governance_buttons_say_why(trained):
    at = app()
    at.run()
    sign_in_as(at, "viewer")
    at.switch_page("../pages/fairness.py").run()
    assert not at.exception, at.exception
    assert any("Fairness reports are not available" in i.value for i in at.info)
    assert not at.dataframe and not at.get("download_button")
    at.switch_page("../pages/governance.py").run()
    assert not at.exception, at.exception
    propose = at.button(key="gov_propose")
    assert propose.disabled and "may not" in propose.help


def test_fairness_patient_group_audit_needs_its_own_permission(trained):
    from engine.governance import load_roles

    roles = load_roles()
    at = app()
    at.run()
    sign_in_as(at, "leadership")
    at.switch_page("../pages/fairness.py").run()
    assert not at.exception, at.exception
    audit_shown = any("fair_audit" == getattr(df, "key", None) for df in at.dataframe) or \
        any("Audit only" in m.value for m in at.markdown)
    assert audit_shown is roles.can("leadership", "view_patient_groups")
    if not audit_shown:
        assert any("patient-group audit is not available" in i.value for i in at.info)
