"""Governance page: the publish workflow with roles enforced, overrides, audit verify, rollback."""
from __future__ import annotations


from tests.dashboard.conftest import app, sign_in_as


def _texts(elements):
    return [e.value for e in elements]


def test_propose_approve_gate_publish_verify_rollback(trained):
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
    published = "Publication: done." in _texts(at.success)
    withheld = any("Publication withheld" in t for t in _texts(at.error))
    assert published or withheld  # a gate may withhold on the small demo; either way it is explained
    history = next(df.value for df in at.dataframe if "Version" in df.value.columns and "Status" in df.value.columns)
    assert history["Status"].iloc[0] in {"published", "approved"}
    at.button(key="gov_verify").click().run()
    assert any("intact" in t for t in _texts(at.success)) and "Verification: done." not in _texts(at.success)
    at.text_input(key="gov_rollback_reason").input("drill: rules fallback")
    at.selectbox(key="gov_rollback_to").set_value("rules")
    at.button(key="gov_rollback").click().run()
    if published:
        # A rollback to the rules is a new proposed version: it goes through approval (issue 14, defect 4).
        assert any(t.startswith("Rollback done: version") and "is proposed and needs approval" in t for t in _texts(at.success))
        history = next(df.value for df in at.dataframe if "Version" in df.value.columns and "Status" in df.value.columns)
        assert history["Status"].iloc[0] == "published" or "proposed" in set(history["Status"])
        assert len(history) >= 2 and "rolled_back" not in set(history["Status"])
    else:
        assert any("Rollback refused" in t or "Not allowed" in t for t in _texts(at.error))


def test_override_needs_text_for_other_and_creates_a_new_version(trained):
    at = app()
    at.run()
    sign_in_as(at, "coordinator")
    at.switch_page("../pages/governance.py").run()
    at.button(key="gov_propose").click().run()
    at.selectbox(key="ov_action").set_value("defer")
    at.selectbox(key="ov_code").set_value("other")
    at.get("form_submit_button")[-1].click().run()
    assert any("refused" in t for t in _texts(at.error))
    at.text_input(key="ov_text").input("patient asked to move the date")
    at.get("form_submit_button")[-1].click().run()
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
