"""Cached results are keyed by everything they depend on (dashboard/state.py ``Inputs``, which the page
modules' caches take too: whatif_state, fairness_state, overview_state): two hospitals,
two stored versions of one hospital or one hospital id in two stores never share a cached answer, and no
cached function reads the hospital from the session state.

No Streamlit run and no solver: the store load, the forecasts and the engine calls are replaced by fakes
that say which hospital they were given, so each test checks the cache key alone.
"""
from __future__ import annotations

from types import SimpleNamespace

import pandas as pd
import pytest
import streamlit as st

from dashboard import fairness_state, keys, state
from dashboard import whatif_state as ws


@pytest.fixture
def fake_hospitals(monkeypatch, tmp_path):
    """Hospitals "A" and "B" in the store; loading one gives a hospital named after the hospital id, the
    store and the stored version it came from. The session state holds "A"."""
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'one.sqlite'}")
    monkeypatch.setenv("MODELS_DIR", str(tmp_path / "models"))
    loads = []

    def load(url, hospital_id, loaded_at):
        loads.append((url, hospital_id, loaded_at))
        cases = pd.DataFrame({"case_id": [f"{hospital_id}-1"], "procedure_code": ["P"], "procedure_name": ["Proc"]})
        return SimpleNamespace(hospital=SimpleNamespace(name=f"{hospital_id}|{url}|{loaded_at}", cases=cases,
                                                  as_of=lambda: pd.Timestamp("2027-01-04"),
                                                  settings=SimpleNamespace(timezone="Europe/Oslo")))

    monkeypatch.setattr(state, "_load", load)
    monkeypatch.setattr(state, "forecasts_of", lambda inp: f"forecasts of {inp.hospital_id} {inp.version}")
    monkeypatch.setattr(state, "hospitals", lambda: pd.DataFrame({"hospital_id": ["A", "B"], "loaded_at": ["t1", "t1"]}))
    st.cache_data.clear()
    st.cache_resource.clear()
    st.session_state[keys.HOSPITAL_KEY] = "A"
    yield loads
    st.session_state.pop(keys.HOSPITAL_KEY, None)
    st.session_state.pop(keys.WHATIF_SESSION_KEY, None)
    st.cache_data.clear()
    st.cache_resource.clear()


@pytest.fixture
def fake_whatif(monkeypatch):
    """engine.whatif.run_whatif replaced: the 'run' names the hospital and forecasts it was given."""
    calls = []

    def run_whatif(h, fc, start, w, params, reps=200, seed=0):
        calls.append(h.name)
        return (h.name, fc, start, reps, seed)

    monkeypatch.setattr("engine.whatif.run_whatif", run_whatif)
    return calls


ARGS = ("2027-01-05", "no change", "params", 20, 0)  # start, whatif, params, reps, seed (hashable stand-ins)


def test_two_hospitals_never_share_a_cached_whatif(fake_hospitals, fake_whatif):
    a = ws.cached_run("A", "v1", "t1", *ARGS)
    b = ws.cached_run("B", "v1", "t1", *ARGS)  # the session still holds "A"
    assert a[0].startswith("A|") and a[1] == "forecasts of A v1"
    assert b[0].startswith("B|") and b[1] == "forecasts of B v1"
    assert ws.cached_run("A", "v1", "t1", *ARGS) is a  # same inputs: the cached answer
    assert fake_whatif == [a[0], b[0]]


def test_a_new_stored_version_or_another_store_gets_its_own_whatif(fake_hospitals, fake_whatif, monkeypatch, tmp_path):
    first = ws.cached_run("A", "v1", "t1", *ARGS)
    assert ws.cached_run("A", "v1", "t2", *ARGS)[0].endswith("|t2")  # the hospital re-ingested
    assert ws.cached_run("A", "v2", "t1", *ARGS)[1] == "forecasts of A v2"  # a retrained model
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'two.sqlite'}")
    other_store = ws.cached_run("A", "v1", "t1", *ARGS)
    assert "two.sqlite" in other_store[0] and "one.sqlite" in first[0]
    assert len(fake_whatif) == 4


def test_whatif_answers_and_session_follow_their_arguments_not_the_session_state(fake_hospitals, monkeypatch):
    given = []
    monkeypatch.setattr("engine.whatif.whatif_answers",
                        lambda h, fc, start, w, params, session, reps=200, seed=0: given.append((h.name, fc)) or iter(()))
    list(ws.answers("B", "v1", "t1", "2027-01-05", "w", "p", 20, 0, session=None))
    assert given[0][0].startswith("B|") and given[0][1] == "forecasts of B v1"

    class FakeSession:
        @classmethod
        def after(cls, baseline, reps, seed):
            return cls()

    monkeypatch.setattr("engine.whatif.WhatIfSession", FakeSession)
    baseline = SimpleNamespace(plan=SimpleNamespace(params="p"))
    s_a = ws.user_session("A", "v1", "t1", "2027-01-05", baseline, 20, 0)
    assert ws.user_session("A", "v1", "t1", "2027-01-05", baseline, 20, 0) is s_a
    assert ws.user_session("B", "v1", "t1", "2027-01-05", baseline, 20, 0) is not s_a


@pytest.mark.parametrize("call,target,fake", [
    (lambda hid: fairness_state.trends(hid, "t1", "service_line", 4), "engine.fairness.trends",
     lambda h, weeks, by: h.name),
    (lambda hid: fairness_state.term_cost(hid, "v1", "t1", "2027-01-05", 1, 5.0), "engine.fairness.fairness_term_cost",
     lambda h, fc, start, days, gap, params=None: (h.name, fc)),
    (lambda hid: state.addon_forecast(hid, "t1", 3)[0], "engine.forecast.forecast_addons",
     lambda cases, dates, as_of, timezone: cases["case_id"].iloc[0]),
    (lambda hid: state.case_names(hid, "t1")["case_id"].iloc[0], None, None),
])
def test_other_cached_results_follow_the_hospital_they_name(fake_hospitals, monkeypatch, call, target, fake):
    if target:
        monkeypatch.setattr(target, fake)
    monkeypatch.setattr("engine.forecast.forecast_addon_totals", lambda cases, dates, as_of, timezone: None)
    for hid in ("A", "B"):  # the session state holds "A" throughout
        got = call(hid)
        name = got[0] if isinstance(got, tuple) else got
        assert str(name).startswith(hid), (hid, got)


def test_the_addon_forecast_counts_room_minutes_in_the_hospitals_zone(fake_hospitals, monkeypatch):
    """The Forecasts page's add-on forecast reads room time as the plans' one does (engine.forecast.addon_forecast_for)."""
    zones = []
    monkeypatch.setattr("engine.forecast.forecast_addons", lambda cases, dates, as_of, timezone: zones.append(timezone))
    monkeypatch.setattr("engine.forecast.forecast_addon_totals", lambda cases, dates, as_of, timezone: zones.append(timezone))
    state.addon_forecast("A", "t1", 3)
    assert zones == ["Europe/Oslo", "Europe/Oslo"]
