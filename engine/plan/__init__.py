"""Allocation: instance, assignment MIP (HiGHS/GLPK), rules-based fallback, sequencing, reasons."""
from engine.plan.extract import extract_assignment
from engine.plan.instance import PlanInstance, build_instance
from engine.plan.model import build_model
from engine.plan.params import ALTERNATIVES, PlanParams
from engine.plan.planner import PlanResult, alternatives, compare, plan
from engine.plan.rules import rules_assignment
from engine.plan.sequence import sequence, to_schedule
from engine.plan.solve import SolveResult, solve

__all__ = [
    "ALTERNATIVES", "PlanInstance", "PlanParams", "PlanResult", "SolveResult", "alternatives", "build_instance",
    "build_model", "compare", "extract_assignment", "plan", "rules_assignment", "sequence", "solve", "to_schedule",
]
