"""Scoring a schedule on the assignment MIP's own objective, so that two schedules of one
instance (the optimizer's and the rules') are judged by the same yardstick.

The score of an assignment is the model's objective at that assignment with every other
variable at the least value the constraints allow (``extract.set_start``: overtime, idle prime
time, add-on reserve shortfall, fairness slack). It is the objective the optimizer minimises,
so "the optimizer's schedule scores better than the rules schedule" means exactly that the
MIP prefers it. Schedules are scored *after* sequencing (what is exported, with the cases the
sequencer deferred counted as deferred), not the optimizer's intermediate answer.
"""
from __future__ import annotations

import pandas as pd
import pyomo.environ as pyo

from engine.plan.extract import set_start
from engine.plan.instance import PlanInstance, split_instance
from engine.plan.model import build_model
from engine.plan.params import PlanParams


def _fairness_slack_at_least(m: pyo.ConcreteModel) -> None:
    """fair_slack[g] at the least value fair_prime_share allows for the x set on ``m``."""
    if not hasattr(m, "fair_slack"):
        return
    prime = {g: 0.0 for g in m.G}
    for c, s in m.X:
        if m.x[c, s].value and m.x[c, s].value > 0.5:
            prime[m.line_of[c]] += pyo.value(m.p50[c]) * m.prime_frac[s]
    total = sum(prime.values())
    for g in m.G:
        need = (pyo.value(m.demand_share[g]) - pyo.value(m.max_gap)) * total - prime[g]
        m.fair_slack[g].value = max(0.0, need)


def start_value(m: pyo.ConcreteModel, assignment: pd.DataFrame) -> float:
    """The objective of ``m`` at ``assignment`` (the variables are set to it, as a MIP start)."""
    set_start(m, assignment)
    _fairness_slack_at_least(m)
    return float(pyo.value(m.obj))


def score_assignment(inst: PlanInstance, params: PlanParams, assignment: pd.DataFrame,
                     models: list[pyo.ConcreteModel] | None = None) -> float:
    """The assignment MIP's objective at ``assignment`` (case_id, slot_id; None = deferred).

    The instance is scored part by part (``split_instance``; the parts' objectives add up to the
    whole's). ``models`` may pass the parts' models already built (the variables' values are
    overwritten). Pairs the instance does not have count as deferred.
    """
    parts = split_instance(inst)
    if models is None or len(models) != len(parts):
        models = [build_model(p, params) for p in parts]
    total = 0.0
    for part, m in zip(parts, models):
        a = assignment[assignment["case_id"].isin(part.cases.index)]
        set_start(m, a)
        _fairness_slack_at_least(m)
        total += float(pyo.value(m.obj))
    return total


def sequenced_assignment(seq: pd.DataFrame) -> pd.DataFrame:
    """case_id, slot_id (None when the sequencer deferred it) of sequenced rows."""
    done = seq["status"] == "scheduled"
    return pd.DataFrame({"case_id": seq["case_id"], "slot_id": seq["slot_id"].where(done, None)})
