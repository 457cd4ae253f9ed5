"""The sequencer turns an assignment into times that keep the hard rules, whatever the
assignment asked for (tests/feasibility.py checks the result independently)."""
from __future__ import annotations

import pandas as pd

from engine.hospital import load_hospital
from engine.plan import PlanParams, build_instance, plan, sequence, to_schedule
from engine.plan.report import placement_reasons
from tests.feasibility import check_schedule
from tests.minihospital import write_mini_hospital

D1 = pd.Timestamp("2027-01-04")


def _two_case_slot(tmp_path, spread62: float | None):
    """Orthopedics' OR2 block on 01-04 runs 07:30-17:00 (the room's close) with C0062 (560 min) and
    C0063 (20 min, P80 - P50 = 5) in it. ``spread62``: C0062's P80 - P50 (None: so long that it
    only ends by close + cap at P80 when it runs first)."""
    h = load_hospital(write_mini_hospital(tmp_path / "mini")).hospital
    booked = h.cases.loc[h.cases["status"] == "booked", "case_id"].tolist()
    fc = pd.DataFrame({"case_id": booked, "p50": [{"C0062": 560.0, "C0063": 20.0}.get(c, 60.0) for c in booked]})
    inst = build_instance(h, fc.assign(p80=fc["p50"] + 15, p95=fc["p50"] + 30, cancel_prob=0.0), D1,
                          PlanParams(allow_date_change=False))
    sid = next(s for s in inst.slots.index if inst.slots.at[s, "room_id"] == "OR2" and inst.slots.at[s, "date"] == D1)
    sl = inst.slots.loc[sid]
    assert sl["p50_limit"] > sl["end_min"] + 20 + 30  # the cap alone would let C0063 start after the block
    if spread62 is None:
        spread62 = sl["p80_limit"] - sl["start_min"] - 560
    fc = fc.assign(p80=fc["p50"] + fc["case_id"].map({"C0063": 5.0, "C0062": spread62}).fillna(15.0),
                   p95=lambda f: f["p80"] + 15, cancel_prob=0.0)
    return h, fc, build_instance(h, fc, D1, PlanParams(allow_date_change=False)), sid


def _seq_two(inst, sid):
    ids = ["C0062", "C0063"]
    others = [c for c in inst.cases.index if c not in ids]
    assignment = pd.DataFrame({"case_id": ids + others, "slot_id": [sid, sid] + [None] * len(others),
                               "reason": [None, None] + ["not part of this test"] * len(others)})
    return sequence(inst, assignment).set_index("case_id")


def test_the_closing_case_is_one_that_starts_before_the_block_ends(tmp_path):
    """C0063 has the smaller P80 - P50, but run last it would start at 17:20, after the block: the
    sequencer runs it first and closes the slot with C0062, which starts at 07:50 and still ends by
    close + cap at its P80 (instance.closing_case). Both are scheduled."""
    h, _, inst, sid = _two_case_slot(tmp_path, spread62=15.0)
    seq = _seq_two(inst, sid)
    assert (seq.loc[["C0062", "C0063"], "status"] == "scheduled").all()
    assert seq.at["C0063", "start_min"] == 7 * 60 + 30 and seq.at["C0062", "start_min"] == 7 * 60 + 30 + 20 + 30
    schedule = to_schedule(inst, seq.reset_index(), placement_reasons(inst, seq.reset_index()))
    assert check_schedule(h, schedule, horizon_dates=[D1]) == []


def test_no_case_is_planned_to_start_after_its_block_ends(tmp_path):
    """When C0062 only ends by close + cap at P80 if it runs first, C0063 would have to start at
    17:20, after the block (and the close); the overtime cap would let it finish, but starting
    after the block is not allowed: it is deferred with the reason."""
    h, _, inst, sid = _two_case_slot(tmp_path, spread62=None)
    seq = _seq_two(inst, sid)
    assert seq.at["C0062", "status"] == "scheduled" and seq.at["C0062", "end50_min"] == 7 * 60 + 30 + 560
    assert seq.at["C0063", "status"] == "deferred"
    assert "ends at 17:00 before it could start" in seq.at["C0063", "defer_reason"]
    schedule = to_schedule(inst, seq.reset_index(), placement_reasons(inst, seq.reset_index()))
    assert check_schedule(h, schedule, horizon_dates=[D1]) == []


def test_the_model_never_plans_a_case_to_start_after_its_block(tmp_path):
    """The same two cases given to the optimizer: its slot sizing (P50 capacity up to close + cap,
    closing case at P80) alone would put both in OR2, and the sequencer would then defer C0063.
    model.closing_case_fits keeps them apart, so no case is lost between model and times."""
    h, fc, inst, sid = _two_case_slot(tmp_path, spread62=None)
    # The service-level term off: this is about slot sizing, and C0062 alone breaks the level.
    res = plan(h, fc, D1, PlanParams(allow_date_change=False, time_limit_s=20, w_service_level=0.0))
    assert res.solve is not None and res.banner is None
    a = res.optimizer_assignment.set_index("case_id")["slot_id"]
    assert not (a.get("C0062") == sid and a.get("C0063") == sid)
    sched = res.schedule.set_index("case_id")
    assert sched.at["C0062", "status"] == "scheduled"
    assert not res.schedule["reason"].fillna("").str.contains("before it could start").any()
    assert check_schedule(h, res.schedule, horizon_dates=[D1]) == []


def test_placement_reasons_speak_of_the_rooms_finish_not_only_the_cases(tmp_path):
    """C0063 runs first and ends at 07:55 at P80, but the room's last case (C0062) runs to 17:55 at
    P80: C0063's reason must not say the room finishes by close with time to spare."""
    _, _, inst, sid = _two_case_slot(tmp_path, spread62=15.0)
    seq = _seq_two(inst, sid)
    why = placement_reasons(inst, seq.reset_index())
    assert "ends by 07:55 at P80" in why["C0063"]
    assert "the room may run 55 min past close at P80" in why["C0063"]
    assert "to spare" not in why["C0063"]
    assert "ends by" not in why["C0062"] and "the room may run 55 min past close at P80" in why["C0062"]
