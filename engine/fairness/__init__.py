"""Fairness of schedules across service lines, surgeons and sites (fairlearn MetricFrame)."""
from engine.fairness.guardrails import Guardrails, load_guardrails
from engine.fairness.metrics import GROUPS, case_table, fairness_report, schedule_fairness
from engine.fairness.review import (
    FairnessParams,
    fairness_term_cost,
    flags,
    history_as_schedule,
    history_demand,
    patient_group_audit,
    review_pack_html,
    trends,
)

__all__ = [
    "GROUPS", "FairnessParams", "Guardrails", "fairness_term_cost", "case_table", "fairness_report", "flags", "history_as_schedule",
    "history_demand", "load_guardrails", "patient_group_audit", "review_pack_html", "schedule_fairness", "trends",
]
