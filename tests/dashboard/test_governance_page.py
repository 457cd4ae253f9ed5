"""Governance page: the publish workflow with roles enforced, overrides, audit verify, rollback."""
from __future__ import annotations


import pandas as pd
import pytest

from tests.dashboard.conftest import app, sign_in_as, use_hospital
from tests.dashboard.test_governance_trust import week_folder  # noqa: F401 (a module fixture: feeds current, a model)


@pytest.fixture
def publishable(week_folder, tmp_path, monkeypatch):  # noqa: F811
    """A hospital whose block and staffing feeds reach far enough ahead and whose model is current, so the
    optimizer's first-day plan passes every gate and the rollback check below always runs."""
    root, folder = week_folder
    use_hospital(monkeypatch, folder, tmp_path, models=root / "models")
    return tmp_path


def _texts(elements):
    return [e.value for e in elements]


def test_propose_approve_gate_publish_verify_rollback(publishable):
    at = app()
    at.run()
    sign_in_as(at, "coordinator")
    at.switch_page("../pages/governance.py").run()
    at.button(key="gov_propose").click().run()
    assert "Proposal: done." in _texts(at.success)
    # A coordinator may not approve (the engine refuses it too): the button is off and says why;
    # publishing waits for approval.
    approve = at.button(key="gov_approve")
    assert approve.disabled and "may not" in approve.help
    assert at.button(key="gov_publish").disabled and "is proposed" in at.button(key="gov_publish").help
    sign_in_as(at, "leadership")
    at.button(key="gov_approve").click().run()
    assert "Approval: done." in _texts(at.success)
    at.button(key="gov_gates").click().run()
    # The gate results are the answer (no extra "done" box), under a heading naming the version.
    assert "Gates: done." not in _texts(at.success)
    assert any("Safety gates, as last run on version" in t for t in _texts(at.markdown))
    assert [t for t in _texts(at.success) + _texts(at.warning) + _texts(at.error) if t.startswith("**")]
    at.button(key="gov_publish").click().run()
    assert "Publication: done." in _texts(at.success), "withheld: " + " / ".join(_texts(at.warning) + _texts(at.error))
    history = next(df.value for df in at.dataframe if "Version" in df.value.columns and "Status" in df.value.columns)
    assert history["Status"].iloc[0] == "published"
    at.button(key="gov_verify").click().run()
    assert any("intact" in t for t in _texts(at.success)) and "Verification: done." not in _texts(at.success)
    at.text_input(key="gov_rollback_reason").input("drill: rules fallback")
    at.selectbox(key="gov_rollback_to").set_value("rules")
    at.button(key="gov_rollback").click().run()
    # A rollback to the rules is a new proposed version: it goes through approval (issue 14, defect 4);
    # the published version stays in force until then.
    assert any(t.startswith("Rollback done: version") and "is proposed and needs approval" in t for t in _texts(at.success)), \
        _texts(at.success) + _texts(at.error)
    history = next(df.value for df in at.dataframe if "Version" in df.value.columns and "Status" in df.value.columns)
    assert sorted(history["Status"]) == ["proposed", "published"]  # two versions; none rolled back yet


def test_override_needs_text_for_other_and_creates_a_new_version(trained):
    at = app()
    at.run()
    sign_in_as(at, "coordinator")
    at.switch_page("../pages/governance.py").run()
    at.button(key="gov_propose").click().run()
    at.selectbox(key="ov_action").set_value("defer")
    at.selectbox(key="ov_code").set_value("other")
    next(b for b in at.get("form_submit_button") if b.label == "Record the override").click().run()
    assert any("refused" in t for t in _texts(at.error))
    at.text_input(key="ov_text").input("patient asked to move the date")
    next(b for b in at.get("form_submit_button") if b.label == "Record the override").click().run()
    # One message per action: the new version and what it needs next.
    done = _texts(at.success)
    assert any(t.startswith("New proposed version") for t in done) and "Override: done." not in done
    overrides = next(df.value for df in at.dataframe if "Code" in df.value.columns)
    assert "other" in set(overrides["Code"])


def test_viewer_cannot_read_audit_or_rates(trained):
    at = app()
    at.run()
    sign_in_as(at, "viewer")
    at.switch_page("../pages/governance.py").run()
    assert any("not available to your role" in t or "read by leadership" in t for t in _texts(at.info))


def _submit(at, label):
    btn = next(b for b in at.get("form_submit_button") if b.label == label)
    btn.click().run()
    assert not at.exception, at.exception


@pytest.mark.slow
def test_rollout_tab_canary_start_report_stop_are_role_checked_and_audited(small_env, small_folder):
    from engine.governance import read_log

    at = app()
    at.run()
    sign_in_as(at, "viewer")
    at.switch_page("../pages/governance.py").run()
    assert any("No canary is active" in t for t in _texts(at.info))
    start = next(b for b in at.get("form_submit_button") if b.label == "Start the canary")
    assert start.disabled  # a viewer may not publish, so may not start a canary
    sign_in_as(at, "coordinator")
    at.selectbox(key="canary_kind").set_value("rooms").run()
    rooms = at.multiselect(key="canary_values").options
    at.multiselect(key="canary_values").set_value(rooms[:2])
    at.date_input(key="canary_go_live").set_value(pd.Timestamp("2026-12-14").date())
    _submit(at, "Start the canary")
    assert any(t.startswith("Canary 1 active from 2026-12-14") for t in _texts(at.success)), _texts(at.success) + _texts(at.error)
    assert any("is **active**" in t for t in _texts(at.success))
    at.button(key="canary_report").click().run()
    est = next(df.value for df in at.dataframe if "Favours" in df.value.columns)
    assert len(est) == 3
    at.button(key="canary_stop").click().run()  # no reason: refused, still active
    assert any("Canary stop refused" in t and "reason" in t for t in _texts(at.error)), _texts(at.error)
    at.text_input(key="canary_stop_reason").input("overtime up in the canary rooms")
    at.button(key="canary_stop").click().run()
    assert any("stopped" in t and "back on the rules schedule" in t for t in _texts(at.success)), _texts(at.success)
    assert any("No canary is active" in t for t in _texts(at.info))
    log = read_log(f"sqlite:///{small_env / 'store.sqlite'}")
    kinds = list(log["kind"])
    assert "canary_start" in kinds and "canary_stop" in kinds
    stop = log[log["kind"] == "canary_stop"].iloc[0]
    assert stop["role"] == "coordinator"
    assert stop["payload"]["reason"] == "overtime up in the canary rooms"


@pytest.mark.slow
def test_rollout_tab_drill_and_incident(small_env, monkeypatch):
    monkeypatch.setenv("DRILLS_DIR", str(small_env / "drills"))
    at = app()
    at.run()
    sign_in_as(at, "governance")
    at.switch_page("../pages/governance.py").run()
    at.selectbox(key="drill_fault").set_value("stale-model")
    at.button(key="drill_run").click().run()
    assert any(t.startswith("Drill stale-model passed") for t in _texts(at.success)), _texts(at.success) + _texts(at.error)
    steps = next(df.value for df in at.dataframe if "Step" in df.value.columns and "Detail" in df.value.columns)
    assert list(steps["Step"]) == ["copy", "baseline", "inject", "detect", "respond", "restore"]
    assert any("Last drill: stale-model" in t for t in _texts(at.markdown))
    at.text_input(key="inc_title").input("model went stale")
    at.selectbox(key="inc_class").set_value("model")
    at.text_input(key="inc_entries").input("999")
    at.text_area(key="inc_description").input("the nightly retrain did not run")
    _submit(at, "Record the incident")
    assert any("Incident refused" in t and "999" in t for t in _texts(at.error)), _texts(at.error)
    at.text_input(key="inc_entries").input("1")
    _submit(at, "Record the incident")
    assert any(t.startswith("Incident 1 recorded (model defect") for t in _texts(at.success)), _texts(at.success) + _texts(at.error)
    table = next(df.value for df in at.dataframe if "Class" in df.value.columns and "Title" in df.value.columns)
    assert list(table["Title"]) == ["model went stale"]
    assert at.get("download_button")


@pytest.mark.slow
def test_rollout_tab_links_the_pilot_page_and_hides_the_board_from_viewers(small_env):
    at = app()
    at.run()
    sign_in_as(at, "viewer")
    at.switch_page("../pages/governance.py").run()
    assert at.get("page_link")
    assert any("read by leadership and the governance board" in t for t in _texts(at.info))
    assert at.button(key="drill_run").disabled


@pytest.mark.slow
def test_propose_under_an_active_canary_plans_the_canary(trained):
    """With a canary active, the proposal is the canary's plan (control cases locked where the rules put them)."""
    from engine.governance import read_log

    at = app()
    at.run()
    sign_in_as(at, "coordinator")
    at.switch_page("../pages/governance.py").run()
    at.selectbox(key="canary_kind").set_value("rooms").run()
    at.multiselect(key="canary_values").set_value(at.multiselect(key="canary_values").options[:2])
    at.date_input(key="canary_go_live").set_value(pd.Timestamp("2026-12-14").date())
    _submit(at, "Start the canary")
    at.button(key="gov_propose").click().run()
    assert "Proposal: done." in _texts(at.success), _texts(at.error)
    log = read_log(f"sqlite:///{trained / 'store.sqlite'}")
    notes = [p.get("note") for k, p in zip(log["kind"], log["payload"]) if k not in ("canary_start", "sign_in")]
    assert any(str(n).startswith("canary 1: optimizer for") for n in notes), notes
