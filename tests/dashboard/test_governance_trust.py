"""Governance page on the feasibility gate (issue 14, defects 1 and 4): overrides are validated when
entered, an impossible one cannot be published, gates say what they checked, rollback to the rules goes
through approval and the emergency exception is one audited action."""
from __future__ import annotations

import pandas as pd
import pytest

from engine.forecast import Registry, train_and_register
from engine.generator import GeneratorParams, write_hospital
from engine.hospital import load_hospital
from tests.dashboard.conftest import app, sign_in_as, use_hospital
from tests.engine.forecast.conftest import FAST

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def week_folder(tmp_path_factory):
    """A small hospital whose block and staffing feeds reach 8 days ahead (the feeds gate wants 7), with a model."""
    root = tmp_path_factory.mktemp("govtrust")
    folder = root / "govhosp"
    write_hospital(folder, GeneratorParams(seed=5, rooms=5, history_days=450, horizon_days=8))
    train_and_register(load_hospital(folder).hospital, folder.name, FAST, Registry(root / "models"), test_days=60)
    return root, folder


@pytest.fixture
def trained(week_folder, tmp_path, monkeypatch):
    root, folder = week_folder
    use_hospital(monkeypatch, folder, tmp_path, models=root / "models")
    return tmp_path


def _texts(elements):
    return [e.value for e in elements]


def _history(at):
    h = next(df.value for df in at.dataframe if "Version" in df.value.columns and "Status" in df.value.columns)
    return h.rename(columns={"Version": "version_id", "Status": "status"})


def _version_schedule(at):
    s = next(df.value for df in at.dataframe if "Case" in df.value.columns and "Room" in df.value.columns)
    return s.rename(columns={"Case": "case_id", "Room": "room_id", "Status": "status", "Start": "start"})


def _submit_override(at, case, room, start, keep=False):
    at.selectbox(key="ov_case").set_value(case)
    at.selectbox(key="ov_action").set_value("move")
    at.selectbox(key="ov_room").set_value(room)
    at.text_input(key="ov_start").input(start)
    at.checkbox(key="ov_keep_infeasible").set_value(keep)
    next(b for b in at.get("form_submit_button") if b.label == "Record the override").click().run()
    assert not at.exception, at.exception


def _double_booking(at):
    """(case to move, room, start) that puts a case on top of another one in another room."""
    sched = _version_schedule(at)
    s = sched[sched["status"] == "scheduled"].copy()
    s["start"] = pd.to_datetime(s["start"])
    first = s.sort_values("start").groupby("room_id").head(1)
    assert first["room_id"].nunique() >= 2
    a, b = first.iloc[0], first.iloc[1]
    return a["case_id"], b["room_id"], f"{b['start']:%H:%M}"


def test_impossible_overrides_are_refused_or_kept_unpublishable(trained):
    at = app()
    at.run()
    sign_in_as(at, "coordinator")
    at.switch_page("../pages/governance.py").run()
    at.button(key="gov_propose").click().run()
    n0 = len(_history(at))
    case, room, start = _double_booking(at)
    # "25:99" is not a time: refused, naming the field; nothing saved.
    _submit_override(at, case, room, "25:99")
    assert any("refused" in t and "start" in t for t in _texts(at.error)), _texts(at.error)
    assert len(_history(at)) == n0
    # A double booking is refused with the hard rule it breaks; nothing saved.
    _submit_override(at, case, room, start)
    assert any("refused" in t and "hard rule" in t for t in _texts(at.error)), _texts(at.error)
    assert len(_history(at)) == n0
    # Kept on purpose: a version that cannot be published until fixed.
    _submit_override(at, case, room, start, keep=True)
    assert any("cannot be published until fixed" in t for t in _texts(at.warning)), _texts(at.warning)
    hist = _history(at)
    assert len(hist) == n0 + 1
    bad = int(hist["version_id"].max())
    sign_in_as(at, "leadership")
    at.selectbox(key="gov_version").set_value(bad).run()
    at.button(key="gov_approve").click().run()
    at.button(key="gov_gates").click().run()
    assert any("hard_rules" in t for t in _texts(at.error))
    assert any("Checked:" in t for t in _texts(at.success) + _texts(at.error) + _texts(at.warning))
    at.button(key="gov_publish").click().run()
    assert any("Publication withheld" in t for t in _texts(at.error))
    assert _history(at).set_index("version_id").at[bad, "status"] != "published"


def test_rollback_to_rules_needs_approval_and_emergency_is_immediate(trained):
    at = app()
    at.run()
    sign_in_as(at, "coordinator")
    at.switch_page("../pages/governance.py").run()
    at.button(key="gov_propose").click().run()
    vid = int(_history(at)["version_id"].max())
    sign_in_as(at, "leadership")
    at.selectbox(key="gov_version").set_value(vid).run()
    at.button(key="gov_approve").click().run()
    at.button(key="gov_gates").click().run()
    at.button(key="gov_publish").click().run()
    assert "Publication: done." in _texts(at.success), "withheld: " + " / ".join(_texts(at.warning) + _texts(at.error))
    sign_in_as(at, "coordinator")
    at.text_input(key="gov_rollback_reason").input("solver outage drill")
    at.selectbox(key="gov_rollback_to").set_value("rules").run()
    at.button(key="gov_rollback").click().run()
    assert any("is proposed and needs approval" in t for t in _texts(at.success)), _texts(at.success) + _texts(at.error)
    hist = _history(at)
    assert hist.set_index("version_id").at[vid, "status"] == "published"  # still in force until approved
    # The emergency exception publishes at once and says so.
    at.text_input(key="gov_rollback_reason").input("emergency: the plan in force is unsafe")
    at.selectbox(key="gov_rollback_to").set_value("rules").run()
    at.checkbox(key="gov_rollback_emergency").check().run()
    at.button(key="gov_rollback").click().run()
    assert [t for t in _texts(at.success) if "(emergency, audited)" in t], _texts(at.success) + _texts(at.error)
    hist = _history(at).set_index("version_id")
    assert hist.at[vid, "status"] == "rolled_back"
    assert hist.loc[hist.index.max(), "status"] == "published"
