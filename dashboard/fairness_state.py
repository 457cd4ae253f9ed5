"""The Fairness review page's engine calls (pages/fairness.py): the history as a schedule, the per-group
table and its flags, the policy check, the patient-group audit (role-checked in the engine), the
guardrails and the review pack, so the page imports no engine module; and its caches: fairness trends over
history and the cost of the fairness term."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st

from dashboard import state


def fairness_params(**fields):
    """The flag thresholds (engine.fairness.FairnessParams' defaults, with ``fields``)."""
    from engine.fairness import FairnessParams

    return FairnessParams(**fields)


def history_schedule(h, start: pd.Timestamp, end: pd.Timestamp) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(past cases in [start, end) as a schedule, their demand): actual times and minutes, cancellations
    as deferrals (engine.fairness.history_as_schedule, history_demand)."""
    from engine.fairness import history_as_schedule, history_demand

    schedule = history_as_schedule(h, start, end)
    return schedule, history_demand(h, schedule)


def group_table(h, schedule: pd.DataFrame, by: str, forecasts, min_group_cases: int) -> tuple[pd.DataFrame, dict]:
    """(per-group metrics, summary of the disparities) for one grouping (engine.fairness.schedule_fairness)."""
    from engine.fairness import schedule_fairness

    return schedule_fairness(h, schedule, by, forecasts, min_group_cases=min_group_cases)


def flags(table: pd.DataFrame, by: str, params) -> pd.DataFrame:
    """The groups beyond the thresholds, each with a sentence (engine.fairness.flags)."""
    from engine.fairness import flags as flagged

    return flagged(table, by, params)


def policy_check(h, schedule: pd.DataFrame, forecasts=None):
    """The schedule against the hospital's fairness policy (engine.fairness.policy.check_policy)."""
    from engine.fairness.policy import check_policy

    return check_policy(h, schedule, forecasts=forecasts)


def patient_group_audit(h, schedule: pd.DataFrame, forecasts: pd.DataFrame | None = None) -> pd.DataFrame:
    """The patient-group audit as the signed-in user (PermissionError unless the role may
    ``view_patient_groups``: engine.governance.patient_group_audit_for)."""
    from engine.governance import patient_group_audit_for

    return patient_group_audit_for(state.active_user(), h, schedule, forecasts)


def guardrails():
    """The guardrails policy in force (engine.fairness.load_guardrails)."""
    from engine.fairness import load_guardrails

    return load_guardrails()


def review_pack(hospital_name: str, title: str, tables: dict, flag_table: pd.DataFrame, notes: dict) -> str:
    """The board's review pack, self-contained HTML (engine.fairness.review_pack_html)."""
    from engine.fairness import review_pack_html

    return review_pack_html(hospital_name, title, tables, flag_table, notes)


def trends(hospital_id: str, loaded_at_: str, by: str, weeks: int) -> pd.DataFrame:
    """Fairness metrics over the history in ``weeks``-week periods (engine.fairness.trends)."""
    return _trends(state.inputs(hospital_id, None, loaded_at_), by, int(weeks))


@st.cache_data(max_entries=8, show_spinner="Computing fairness trends over history...")
def _trends(inp: state.Inputs, by: str, weeks: int) -> pd.DataFrame:
    from engine.fairness import trends as _of

    return _of(state.hospital_of(inp), weeks=weeks, by=by)


def term_cost(hospital_id: str, version: str, loaded_at_: str, start: str, days: int, gap: float) -> pd.DataFrame:
    """Each day planned without and with a ``gap``-point fairness policy (engine.fairness.fairness_term_cost)."""
    return _term_cost(state.inputs(hospital_id, version, loaded_at_), start, int(days), float(gap))


@st.cache_resource(max_entries=4, show_spinner="Planning with and without the fairness term...")
def _term_cost(inp: state.Inputs, start: str, days: int, gap: float) -> pd.DataFrame:
    from engine.fairness import fairness_term_cost

    # The dashboard's plan settings (those of every page's plans, with the deployment's OR_PLAN_PARAMS).
    return fairness_term_cost(state.hospital_of(inp), state.forecasts_of(inp), start, days, gap,
                              params=state.default_plan_params())


def set_policy(hospital_id: str, h, policy: dict, note: str = "") -> None:
    """The governance action (role-checked and audited in the engine) on the hospital's folder; the
    folder's new mtime makes the next run re-ingest it, so every cached plan follows."""
    from engine.governance.actions import set_fairness_policy as change

    folder = Path(h.source)
    if not (folder / "settings.toml").is_file():
        raise ValueError(f"This hospital's settings are not in a folder this dashboard can change ({h.source or 'no folder'}).")
    change(state.active_user(), folder, hospital_id, policy, note=note, ledger=state.store())
