"""What-if: the plan and the simulated KPIs move the way a planner expects."""
from __future__ import annotations

import pandas as pd
import pytest

from engine.generator import GeneratorParams, write_hospital
from engine.hospital import load_hospital
from engine.overview import history_kpis, week_risks
from engine.plan import PlanParams
from engine.whatif import WhatIf, WhatIfSession, apply_whatif, compare_runs, moved_cases, run_whatif, whatif_answers


@pytest.fixture(scope="module")
def setting(tmp_path_factory):
    folder = tmp_path_factory.mktemp("wi") / "h"
    write_hospital(folder, GeneratorParams(seed=4, rooms=8, history_days=200, horizon_days=7))
    h = load_hospital(folder).hospital
    booked = h.cases[h.cases["status"] == "booked"]
    bm = pd.to_numeric(booked["booked_minutes"])
    f = pd.DataFrame({"case_id": booked["case_id"], "p50": bm * 1.15, "p80": bm * 1.4, "p95": bm * 1.8, "cancel_prob": 0.05})
    day = booked["surgery_date"].min()
    return h, f, day


def test_whatif_validation_names_the_field():
    with pytest.raises(ValueError, match="addon_multiplier"):
        WhatIf(addon_multiplier=3.0)
    with pytest.raises(ValueError, match="duration_inflation"):
        WhatIf(duration_inflation=2.0)
    with pytest.raises(ValueError, match="staffed_rooms_by_day"):
        WhatIf(staffed_rooms_by_day=(("2027-01-04", -1),))


def test_apply_changes_staffing_and_forecasts(setting):
    h, f, day = setting
    h2, f2 = apply_whatif(h, f, WhatIf(staffed_rooms_delta=-2, pacu_beds_delta=3, duration_inflation=0.1, cancel_multiplier=2,
                                       staffed_rooms_by_day=((str(day.date()), 1),)))
    s0, s1 = h.staffing.set_index("date"), h2.staffing.set_index("date")
    other = s0.index[s0.index != day][0]
    assert s1.loc[other, "staffed_rooms"] == max(s0.loc[other, "staffed_rooms"] - 2, 0)
    assert s1.loc[day, "staffed_rooms"] == 1
    assert (s1["pacu_beds"] == s0["pacu_beds"] + 3).all()
    assert f2["p50"].iloc[0] == pytest.approx(f["p50"].iloc[0] * 1.1)
    assert f2["cancel_prob"].iloc[0] == pytest.approx(0.1)
    assert h.staffing is not h2.staffing  # the baseline is untouched


def test_fewer_rooms_means_more_deferrals_or_overtime_and_more_addons_more_overtime(setting):
    h, f, day = setting
    p = PlanParams(solver="rules")
    base = run_whatif(h, f, day, WhatIf(), p, reps=100)
    fewer = run_whatif(h, f, day, WhatIf("fewer", staffed_rooms_delta=-3), p, reps=100)
    assert (fewer.kpis["deferred_cases"] > base.kpis["deferred_cases"]
            or fewer.kpis["p95_overtime_minutes"] > base.kpis["p95_overtime_minutes"])
    more = run_whatif(h, f, day, WhatIf("addons", addon_multiplier=2.0), p, reps=100)
    assert (more.kpis["mean_overtime_minutes"] > base.kpis["mean_overtime_minutes"]
            or more.kpis["bumped_cases"] > base.kpis["bumped_cases"])
    table = compare_runs({"baseline": base, "fewer": fewer}, "baseline")
    assert (table[table["scenario"] == "baseline"]["change"] == 0).all()
    moved = moved_cases(base.plan.schedule, fewer.plan.schedule)
    assert len(moved) > 0 and moved["why"].str.len().gt(0).all()


def test_history_kpis_and_week_risks(setting):
    h, f, day = setting
    k = history_kpis(h)
    assert {"prime_time_utilization", "overtime_minutes", "cancellation_rate", "addon_cases", "on_time_first_case"} <= set(k.columns)
    assert k["prime_time_utilization"].dropna().between(0, 1.5).all()
    by_site = history_kpis(h, by="site")
    share = by_site.groupby("period")["prime_time_share"].sum()
    assert ((share - 1).abs() < 1e-9).all()
    h2, _ = apply_whatif(h, f, WhatIf(staffed_rooms_delta=-4))
    risks = week_risks(h2, f, day, days=3)
    assert any("staffed rooms for" in r["risk"] for r in risks)
    assert all(isinstance(r["risk"], str) and r["severity"] in (1, 2, 3) for r in risks)


def test_whatif_answers_first_then_final_and_reuse(setting):
    """A HiGHS what-if yields a first answer and then the refined one (or one final answer when
    the first is already proven); the session then serves the setting again at once, and a
    slider the model does not see (PACU beds) reuses the plan without solving again."""
    h, f, day = setting
    # Without the fairness policy: with it, a time-limited first answer that misses the policy is
    # re-solved under the policy's term, which a beds-only what-if cannot reuse (noted in docs).
    # w_pacu_hold=0: with the PACU load term priced, PACU beds are in the model and a beds what-if re-solves.
    params = PlanParams(time_limit_s=20, fairness_policy=False, w_pacu_hold=0)
    base = run_whatif(h, f, day, WhatIf(), params, reps=50)
    session = WhatIfSession.after(base)
    assert session.warm_start is not None and len(session.memo) == 1
    w = WhatIf("fewer", staffed_rooms_delta=-2)
    runs = list(whatif_answers(h, f, day, w, params, session, reps=50, first_answer_s=0.05))
    assert runs[-1].final and all(not r.final for r in runs[:-1]) and 1 <= len(runs) <= 2
    s = runs[-1].plan.solve
    assert s is not None and s.has_solution and runs[-1].plan.banner is None  # the optimizer's schedule, not a fallback
    if len(runs) == 2:
        assert runs[0].plan.solve.mip_gap > params.mip_gap  # refined only when the first was not proven
    again = list(whatif_answers(h, f, day, w, params, session, reps=50))
    assert len(again) == 1 and again[0] is runs[-1]
    beds = list(whatif_answers(h, f, day, WhatIf("beds", pacu_beds_delta=-3), params, session, reps=50))
    assert len(beds) == 1 and beds[0].final and beds[0].plan.kpis["reused_solution"]
    # The optimizer's answer is the baseline's; the sequencer then fits it to fewer PACU beds.
    assert beds[0].plan.solve.objective == base.plan.solve.objective
    assert beds[0].plan.kpis["pacu_peak"] <= base.plan.kpis["pacu_peak"]


def test_rules_whatif_has_one_answer(setting):
    h, f, day = setting
    session = WhatIfSession()
    runs = list(whatif_answers(h, f, day, WhatIf(staffed_rooms_delta=-1), PlanParams(solver="rules"), session, reps=50))
    assert len(runs) == 1 and runs[0].final and runs[0].plan.solve is None


def test_more_addons_hold_at_least_as_many_rooms(setting):
    """The optimizer holds open rooms for the add-on forecast's reserve, scaled by the add-on slider."""
    h, f, day = setting
    params = PlanParams(time_limit_s=20, w_addon_reserve=20.0)
    base = run_whatif(h, f, day, WhatIf(), params, reps=50)
    more = run_whatif(h, f, day, WhatIf("addons", addon_multiplier=2.0), params, reps=50)
    r0, r1 = base.plan.instance.addon_reserve, more.plan.instance.addon_reserve
    assert r0 is not None and (r1 == 2 * r0).all() and r0.iloc[0] > 0
    assert len(more.plan.held) >= len(base.plan.held)
    assert more.kpis["scheduled_cases"] <= base.kpis["scheduled_cases"]


def test_a_whatif_that_changes_nothing_is_the_baseline(setting):
    """With nothing changed, the page must show no change: the session answers with the baseline
    itself (whatever name the what-if carries), not a second solve that may differ."""
    h, f, day = setting
    params = PlanParams(time_limit_s=5, gap_tolerance=0.0)  # any gap falls back: a re-solve could differ
    base = run_whatif(h, f, day, WhatIf(), params, reps=20, seed=3)
    session = WhatIfSession.after(base, reps=20, seed=3)
    runs = list(whatif_answers(h, f, day, WhatIf("current"), params, session, reps=20, seed=3))
    assert len(runs) == 1 and runs[0] is base
    assert moved_cases(base.plan.schedule, runs[0].plan.schedule).empty
    # Other settings (or another seed) are still planned afresh.
    other = list(whatif_answers(h, f, day, WhatIf("current"), params, session, reps=20, seed=4))
    assert other[-1] is not base
