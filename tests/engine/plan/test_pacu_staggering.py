"""Issue 16 (3): PACU-aware sequencing. On a small hospital where the greedy order sends every
room's first patient to recovery at once (the beds then fill together), CP-SAT staggers the
arrivals: a lower planned PACU peak, the same cases scheduled, every hard rule kept."""
from __future__ import annotations

import pandas as pd
import pytest

from engine.hospital import load_hospital
from engine.plan import PlanParams, plan
from engine.plan.cpsat import cpsat_available, pacu_peak
from tests.feasibility import check_schedule
from tests.minihospital import STAFFING, write_mini_hospital

DAY = pd.Timestamp("2027-01-04")


@pytest.fixture(scope="module")
def mini(tmp_path_factory):
    folder = write_mini_hospital(tmp_path_factory.mktemp("pacu") / "mini",
                                 staffing_csv=STAFFING.replace("2027-01-04,3,3,4", "2027-01-04,3,3,2"))
    h = load_hospital(folder).hospital
    booked = h.cases[h.cases["status"] == "booked"]
    # Equal one-hour cases: every room's first case ends at 08:30 in the greedy order.
    fc = pd.DataFrame({"case_id": booked["case_id"].to_numpy(), "p50": 60.0, "p80": 75.0, "p95": 90.0, "cancel_prob": 0.0})
    return h, fc


@pytest.mark.skipif(not cpsat_available(), reason="ortools is not installed")
def test_cpsat_staggers_pacu_arrivals_below_the_greedy_peak(mini):
    h, fc = mini
    greedy = plan(h, fc, DAY, PlanParams(time_limit_s=10, sequencer="greedy", hold_addon_rooms=False))
    staggered = plan(h, fc, DAY, PlanParams(time_limit_s=10, sequencer="cpsat", hold_addon_rooms=False))
    g_peak = pacu_peak(greedy.sequence, h.settings.pacu_minutes)[DAY]
    s_peak = pacu_peak(staggered.sequence, h.settings.pacu_minutes)[DAY]
    assert g_peak == 2, "the greedy order fills both beds at once on this day"
    assert s_peak < g_peak
    assert staggered.kpis["n_scheduled"] == greedy.kpis["n_scheduled"] == 4
    for r in (greedy, staggered):
        assert not check_schedule(h, r.schedule, horizon_dates=[DAY])
        assert r.banner is None
    # The exported pacu_in times are at least a PACU stay apart (one bed at a time).
    pin = pd.to_datetime(staggered.schedule.loc[staggered.schedule["status"] == "scheduled", "pacu_in"]).sort_values()
    assert (pin.diff().dropna() >= pd.Timedelta(minutes=h.settings.pacu_minutes)).all()
