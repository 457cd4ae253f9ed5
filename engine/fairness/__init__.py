"""Fairness of schedules across service lines, surgeons and sites (fairlearn MetricFrame)."""
from engine.fairness.metrics import GROUPS, case_table, fairness_report, schedule_fairness

__all__ = ["GROUPS", "case_table", "fairness_report", "schedule_fairness"]
