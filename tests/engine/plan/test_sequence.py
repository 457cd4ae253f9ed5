"""The sequencer turns an assignment into times that keep the hard rules, whatever the
assignment asked for (tests/feasibility.py checks the result independently)."""
from __future__ import annotations

import pandas as pd

from engine.hospital import load_hospital
from engine.plan import PlanParams, build_instance, sequence, to_schedule
from engine.plan.planner import placement_reasons
from tests.feasibility import check_schedule
from tests.minihospital import write_mini_hospital

D1 = pd.Timestamp("2027-01-04")


def test_no_case_is_planned_to_start_after_its_block_ends(tmp_path):
    """Orthopedics' OR2 block runs 07:30-17:00 (the room's close). A 560-minute case ends at 16:50;
    the next case would start at 17:20 and, at 20 minutes, still end within the overtime cap, but
    starting after the block (and the close) is not allowed: it is deferred with the reason."""
    h = load_hospital(write_mini_hospital(tmp_path / "mini")).hospital
    ids = ["C0062", "C0063"]  # both Orthopedics, booked on 01-04
    booked = h.cases.loc[h.cases["status"] == "booked", "case_id"].tolist()
    p50 = {"C0062": 560.0, "C0063": 20.0}
    fc = pd.DataFrame({"case_id": booked, "p50": [p50.get(c, 60.0) for c in booked]})
    # C0063 has the smaller P80 - P50, so it closes the slot (runs last).
    fc = fc.assign(p80=fc["p50"] + fc["case_id"].map({"C0063": 5.0}).fillna(15.0), p95=fc["p50"] + 30, cancel_prob=0.0)
    inst = build_instance(h, fc, D1, PlanParams(allow_date_change=False))
    sid = next(s for s in inst.slots.index if inst.slots.at[s, "room_id"] == "OR2" and inst.slots.at[s, "date"] == D1)
    assert inst.slots.at[sid, "p50_limit"] > inst.slots.at[sid, "end_min"] + 20 + 30  # the cap alone would let it in
    others = [c for c in inst.cases.index if c not in ids]
    assignment = pd.DataFrame({"case_id": ids + others, "slot_id": [sid, sid] + [None] * len(others),
                               "reason": [None, None] + ["not part of this test"] * len(others)})
    seq = sequence(inst, assignment).set_index("case_id")
    assert seq.at["C0062", "status"] == "scheduled" and seq.at["C0062", "end50_min"] == 7 * 60 + 30 + 560
    assert seq.at["C0063", "status"] == "deferred"
    assert "ends at 17:00 before it could start" in seq.at["C0063", "defer_reason"]
    schedule = to_schedule(inst, seq.reset_index(), placement_reasons(inst, seq.reset_index()))
    assert check_schedule(h, schedule, horizon_dates=[D1]) == []
