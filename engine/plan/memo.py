"""The plan's memo: the optimizer's answer remembered by everything the assignment model reads
(:func:`model_key`), so a what-if the model does not see is sequenced again without solving again."""
from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

import pandas as pd

from engine.plan.instance import PlanInstance
from engine.plan.params import PlanParams

if TYPE_CHECKING:
    from engine.plan.planner import PlanResult

# Settings that change neither the model nor which answer is better (the time limit is checked
# apart: see _memo_serves).
_NOT_IN_KEY = ("label", "gap_tolerance", "time_limit_s", "sequencer", "sequence_time_limit_s", "w_pacu_peak_bed",
               "w_sequence_delay")


def _memo_serves(entry, params: PlanParams) -> bool:
    """A remembered answer serves a request when it was proven within the gap or had at least
    as much time as the request gives."""
    if entry is None:
        return False
    res, _, _, limit = entry
    return res.status == "optimal" or limit >= params.time_limit_s


def remember(memo: dict, result: PlanResult) -> None:
    """Put an optimizer's answer (before sequencing) into a ``memo`` for plan(); rules and fallback
    plans are not kept."""
    answer = result.optimizer_assignment
    if result.solve is not None and result.solve.has_solution and result.banner is None and answer is not None:
        memo[model_key(result.instance, result.params)] = (result.solve, answer.copy(), result.held,
                                                           result.params.time_limit_s)


def _staffing_in_model(inst: PlanInstance, params: PlanParams) -> list[str]:
    """The staffing columns the assignment model reads: PACU beds only when the PACU load term is
    priced (terms.pacu_hold_weight), so a what-if on beds alone re-sequences the same answer."""
    from engine.plan.terms import pacu_hold_weight

    return ["room_cap", "pacu_beds"] if pacu_hold_weight(inst, params) > 0 else ["room_cap"]


def model_key(inst: PlanInstance, params: PlanParams) -> str:
    """A fingerprint of everything the assignment model reads: the cases' planning minutes and
    flags, the slots, the eligible pairs with their costs, the staffed-room limits, the locks
    and the solver, gap and weights. Equal keys give equal models."""
    h = hashlib.sha256()
    c = inst.cases[["p50_i", "p80_i", "is_urgent", "surgeon_id", "service_line"]]
    for frame in (c, inst.slots.drop(columns=["capabilities"]), inst.eligible, inst.staffing[_staffing_in_model(inst, params)],
                  inst.locks if inst.locks is not None else pd.DataFrame(),
                  inst.addon_reserve.to_frame() if inst.addon_reserve is not None else pd.DataFrame()):
        h.update(pd.util.hash_pandas_object(frame.astype(str), index=True).to_numpy().tobytes())
    h.update(repr(sorted((k, v) for k, v in params.to_dict().items() if k not in _NOT_IN_KEY)).encode())
    h.update(repr((inst.turnover_minutes, inst.overtime_cap_minutes, inst.prime_start, inst.prime_end,
                   inst.finish_plus_minutes, inst.finish_probability, inst.min_scheduled, inst.pacu_minutes,
                   inst.pacu_hold_budget_minutes, inst.pacu_beds_short)).encode())
    return h.hexdigest()
