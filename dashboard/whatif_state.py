"""The What-if page's engine calls and caches (pages/whatif.py; the Leadership overview's tails read the
baseline run too): the solvers and plan settings of a what-if, the slider settings, the cached runs, the
user's what-if session and its first and refined answers. Every cached run takes the hospital's
``state.Inputs`` whole, so its key names the store, registry, stored version and model version
(tests/dashboard/test_honest_caches.py)."""
from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard import keys, state

WHATIF_TIME_LIMIT_S = 5.0  # a what-if re-plans within this (the Schedule page uses the dashboard's plan default)


def solvers() -> tuple[str, ...]:
    """The solvers the What-if page offers: the engine's, without GLPK (too slow for a slider)."""
    from engine.plan.params import SOLVERS

    return tuple(s for s in SOLVERS if s != "glpk")


def plan_params(solver: str | None = None):
    """The PlanParams of a what-if re-plan with this solver (default: the dashboard's plan default,
    state.default_plan_params), within WHATIF_TIME_LIMIT_S."""
    base = state.default_plan_params()
    return base.with_(solver=solver or base.solver, time_limit_s=WHATIF_TIME_LIMIT_S)


def no_change():
    """The WhatIf that changes nothing (its fields are the sliders' defaults)."""
    from engine.whatif import WhatIf

    return WhatIf()


def setting(rooms, per_day: tuple, teams, beds, addons, inflation, cancel):
    """The WhatIf for the What-if page's sliders."""
    from engine.whatif import WhatIf

    return WhatIf("current", rooms, per_day, teams, beds, addons, inflation, cancel)


def moved_cases(before: pd.DataFrame, after: pd.DataFrame) -> pd.DataFrame:
    from engine.whatif import moved_cases as _moved

    return _moved(before, after)


def compare_runs(runs: dict, baseline_name: str) -> pd.DataFrame:
    from engine.whatif import compare_runs as _compare

    return _compare(runs, baseline_name)


def cached_run(hospital_id: str, version: str, loaded_at_: str, start: str, whatif, params, reps: int, seed: int):
    """A WhatIfRun for these inputs, cached by all of them (the stored hospital version, the model
    version, the store and registry: ``Inputs``; WhatIf and PlanParams are frozen, hence hashable)."""
    return _run(state.inputs(hospital_id, version, loaded_at_), start, whatif, params, int(reps), int(seed))


@st.cache_resource(max_entries=64, show_spinner="Planning and simulating the day as it stands (the baseline)...")
def _run(inp: state.Inputs, start: str, whatif, params, reps: int, seed: int):
    from engine.whatif import run_whatif

    return run_whatif(state.hospital_of(inp), state.forecasts_of(inp), start, whatif, params, reps=reps, seed=seed)


def user_session(hospital_id: str, version: str, loaded_at_: str, start: str, baseline, reps: int, seed: int):
    """This user's WhatIfSession for one day (kept in the session state, one day at a time), seeded
    with the baseline's schedule as the optimizer's first warm start and as the answer to the
    what-if that changes nothing."""
    from engine.whatif import WhatIfSession

    key = (state.inputs(hospital_id, version, loaded_at_), start, baseline.plan.params, reps, seed)
    held = st.session_state.get(keys.WHATIF_SESSION_KEY)
    if held is None or held[0] != key:
        held = (key, WhatIfSession.after(baseline, reps, seed))
        st.session_state[keys.WHATIF_SESSION_KEY] = held
    return held[1]


def answers(hospital_id: str, version: str, loaded_at_: str, start: str, whatif, params, reps: int, seed: int, session):
    """First and refined WhatIfRuns for a slider setting (engine.whatif.whatif_answers) on the hospital
    and model these arguments name (never the one the session state happens to hold)."""
    from engine.whatif import whatif_answers

    inp = state.inputs(hospital_id, version, loaded_at_)
    return whatif_answers(state.hospital_of(inp), state.forecasts_of(inp), start, whatif, params, session,
                          reps=reps, seed=seed)
