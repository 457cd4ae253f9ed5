"""Pilot & rollout page: the replay runs from the form, is shown side by side with paired intervals, and is audited
with the signed-in user; shadow runs and monitoring run from their sections, audited."""
from __future__ import annotations

import pandas as pd

from engine.governance import read_log
from tests.dashboard.conftest import app, sign_in_as


def _texts(elements):
    return [e.value for e in elements]


def _rollout_page():
    """The app, signed in as a coordinator, on the Pilot & rollout page (no exception)."""
    at = app()
    at.run()
    sign_in_as(at, "coordinator")
    at.switch_page("../pages/rollout.py").run()
    assert not at.exception, at.exception
    return at


def test_replay_section_runs_and_audits(small_env, small_folder):
    import os

    at = _rollout_page()
    assert "No replay run in this session yet." in _texts(at.info)
    from engine.hospital import load_hospital

    as_of = load_hospital(small_folder).hospital.as_of()
    at.date_input(key="replay_from").set_value((as_of - pd.Timedelta(days=21)).date())
    at.number_input(key="replay_days").set_value(2)
    at.number_input(key="replay_reps").set_value(3)
    at.number_input(key="replay_limit").set_value(5.0)
    at.button[0].click().run()  # the form's submit button
    assert not at.exception, at.exception
    assert any(t.startswith("Over 2 replayed days") for t in _texts(at.success)), _texts(at.error)
    side = next(df.value for df in at.dataframe if "optimized" in df.value.columns)
    assert {"optimized", "rules", "actual", "recorded"} <= set(side.columns)
    log = read_log(os.environ["DATABASE_URL"], small_folder.name)
    rep = log[log["kind"] == "replay"]
    assert len(rep) == 1 and rep["actor"].iloc[0] == "demo-coordinator" and rep["payload"].iloc[0]["n_days"] == 2


def _button(at, label):
    return next(b for b in at.button if b.label == label)


def test_shadow_and_monitoring_sections(small_env, small_folder):
    """A past day planned in shadow (kept, audited, not published), compared with what happened, then monitored."""
    import os

    from engine.hospital import load_hospital
    from engine.pilot.replay import weekdays_from

    at = _rollout_page()
    assert "No shadow runs kept for this hospital yet." in _texts(at.info)
    assert "No day monitored yet." in _texts(at.info)
    as_of = load_hospital(small_folder).hospital.as_of()
    day = weekdays_from(as_of - pd.Timedelta(days=14), 1)[0]
    at.date_input(key="shadow_from").set_value(day.date())
    at.number_input(key="shadow_limit").set_value(5.0)
    at.number_input(key="shadow_iterations").set_value(20)
    _button(at, "Plan in shadow").click().run()
    assert not at.exception, at.exception
    assert "Recorded 1 shadow recommendation(s); nothing was published." in _texts(at.success), _texts(at.error)
    at.number_input(key="shadow_report_days").set_value(1)
    at.number_input(key="shadow_report_reps").set_value(3)
    _button(at, "Compare with what happened").click().run()
    assert not at.exception, at.exception
    assert any(t.startswith("**Over 1 day(s)**") for t in _texts(at.markdown)), _texts(at.error)
    at.date_input(key="monitor_from").set_value(day.date())
    at.number_input(key="monitor_days").set_value(2)
    _button(at, "Monitor these days").click().run()
    assert not at.exception, at.exception
    gate_msgs = [t for t in _texts(at.success) + _texts(at.error) if t.startswith("Outcome gate: ")]
    assert len(gate_msgs) == 1, _texts(at.error)
    table = next(df.value for df in at.dataframe if "within P80" in df.value.columns and "plan" in df.value.columns)
    assert len(table) == 2 and table["day"].iloc[0] == f"{day:%Y-%m-%d}"
    kinds = list(read_log(os.environ["DATABASE_URL"], small_folder.name)["kind"])
    assert kinds.count("shadow_run") == 1 and kinds.count("shadow_report") == 1 and kinds.count("monitor") == 2
