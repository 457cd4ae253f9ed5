"""The Fairness review page's engine calls (pages/fairness.py): the history as a schedule, the per-group
table and its flags, the policy check, the patient-group audit (role-checked in the engine), the
guardrails and the review pack, so the page imports no engine module. The cached plans, trends and the
cost of the fairness term are in dashboard/state.py."""
from __future__ import annotations

import pandas as pd

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
