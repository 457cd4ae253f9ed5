"""The Leadership overview's own engine calls (pages/overview.py): KPIs from history and the coming
week's risks, read from the Schedule page's cached plans. The verdict and the frontier are shared with
the Schedule and Simulation pages (dashboard/state.py), the tails with the What-if page (whatif_state.py)."""
from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard import state


def history_kpis(hospital_id: str, loaded_at_: str, by: str | None = None) -> pd.DataFrame:
    return _history_kpis(state.inputs(hospital_id, None, loaded_at_), by)


@st.cache_data(max_entries=8, show_spinner="Computing KPIs from history...")
def _history_kpis(inp: state.Inputs, by: str | None) -> pd.DataFrame:
    from engine.overview import history_kpis as _kpis

    return _kpis(state.hospital_of(inp), by=by)


def week_risks(hospital_id: str, version: str, loaded_at_: str, start: str, days: int = 5) -> list:
    """The coming days' risks, read from the same cached plans the Schedule page shows for each day
    (its default settings), so both pages give one number for deferrals and P80 finishes."""
    return _week_risks(state.inputs(hospital_id, version, loaded_at_), start, days)


@st.cache_resource(max_entries=4, show_spinner="Looking for the coming week's risks...")
def _week_risks(inp: state.Inputs, start: str, days: int) -> list:
    from engine.overview import week_risks as _risks

    first = pd.Timestamp(start).normalize()
    defaults = state.default_plan_params()
    plans = {d: state.plan_of(inp, str(d.date()), defaults) for d in pd.date_range(first, periods=days) if d.weekday() < 5}
    return _risks(state.hospital_of(inp), state.forecasts_of(inp), start, days=days, plans=plans)
