"""The Schedule page's engine calls (pages/schedule.py) that are not cached plans: the solvers offered,
the alternatives' table, re-plan events, day views and the schedule export, so the page imports no
engine module for work. The plans, decisions, frontier and re-plans are in dashboard/state.py."""
from __future__ import annotations

import pandas as pd

from engine.plan.params import SOLVERS  # noqa: F401  (re-exported: the solvers the page offers)
from engine.plan.replan import EVENT_KINDS  # noqa: F401  (re-exported: the day-of events)


def alternatives_table(alternatives: dict) -> pd.DataFrame:
    """The ranked alternatives' KPIs side by side (engine.plan.compare)."""
    from engine.plan import compare

    return compare(alternatives)


def event(kind: str, **fields):
    """A day-of re-plan event (engine.plan.replan.Event; ValueError names a bad field)."""
    from engine.plan.replan import Event

    return Event(kind, **fields)


def pacu_occupancy(schedule: pd.DataFrame, day) -> pd.DataFrame:
    """Patients in recovery over ``day`` if every case runs to its P50 (engine.plan.views)."""
    from engine.plan.views import pacu_occupancy as occupancy

    return occupancy(schedule, day)


def day_list(schedule: pd.DataFrame, names: pd.DataFrame, by: str) -> pd.DataFrame:
    """The day list per room or surgeon, procedure names from ``names`` (engine.plan.views)."""
    from engine.plan.views import day_list as listing

    return listing(schedule, names, by)


def day_list_html(schedule: pd.DataFrame, names: pd.DataFrame, hospital_name: str, by: str) -> str:
    """The printable day list (HTML) per room or surgeon (engine.plan.views)."""
    from engine.plan.views import day_list_html as listing

    return listing(schedule, names, hospital_name, by)


def schedule_csv(schedule: pd.DataFrame) -> bytes:
    """schedule.csv as the contract writes it (engine.io.format_for_contract with the schedule's kinds)."""
    from engine.io import format_for_contract
    from engine.plan.schedule_io import SCHEDULE_KINDS

    return format_for_contract(schedule, SCHEDULE_KINDS).to_csv(index=False).encode()


def service_levels(h, summary: dict | None) -> pd.DataFrame:
    """The service levels in force and the plan weights that follow from them (engine.sim.verdict)."""
    from engine.sim.verdict import service_level_table

    return service_level_table(h.settings.service_levels, h.settings.service_levels_stated, summary)
