"""Pilot & rollout page: the replay runs from the form, is shown side by side with paired intervals, and is audited
with the signed-in user."""
from __future__ import annotations

import pandas as pd

from engine.governance import read_log
from tests.dashboard.conftest import app, sign_in_as


def _texts(elements):
    return [e.value for e in elements]


def test_replay_section_runs_and_audits(small_env, small_folder):
    import os

    at = app()
    at.run()
    sign_in_as(at, "coordinator")
    at.switch_page("../pages/rollout.py").run()
    assert not at.exception, at.exception
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
