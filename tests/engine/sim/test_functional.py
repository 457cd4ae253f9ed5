"""Functional tests: extreme and one-knob-at-a-time cases behave as they must."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from engine.errors import InputError
from engine.sim import (SimParams, build_instance, compare_policies, load_scenario, run_sweep, simulate)
from engine.sim.draws import make_draws
from engine.sim.rng import rep_keys

REPS = 300


@pytest.fixture(scope="module")
def normal():
    return load_scenario("normal")


def run(h, sched, fc, sc, addon_fc, reps=REPS, seed=5, **params):
    return simulate(h, sched, fc, sc, reps, seed, addon_fc, SimParams(**params) if params else None)


def test_no_addons_means_no_addon_effects(sim_hospital, forecasts, booked_day, addon_fc, normal) -> None:
    h = sim_hospital[1]
    off = run(h, booked_day, forecasts, normal.with_(addon_multiplier=0.0), addon_fc)
    empty = run(h, booked_day, forecasts, normal, addon_fc.iloc[:0])
    on = run(h, booked_day, forecasts, normal, addon_fc)
    assert off.per_rep["addon_cases"].sum() == 0 and off.per_rep["bumped_cases"].sum() == 0
    assert off.per_rep.equals(empty.per_rep)  # no add-on forecast == zero add-on volume
    assert on.summary["addon_cases"]["mean"] > 0.5
    # Add-ons take room time: more utilization and overtime, fewer electives run (on the same days;
    # on a few days an add-on pushes an elective into a cancellation and the room closes earlier).
    assert on.summary["utilization"]["mean"] > off.summary["utilization"]["mean"]
    assert on.summary["overtime_minutes"]["mean"] > off.summary["overtime_minutes"]["mean"]
    assert (on.per_rep["elective_cases_run"] <= off.per_rep["elective_cases_run"]).mean() > 0.95


def test_unlimited_pacu_means_zero_holds(sim_hospital, forecasts, booked_day, addon_fc, normal) -> None:
    h = sim_hospital[1]
    free = run(h, booked_day, forecasts, normal.with_(pacu_beds_delta=100000), addon_fc)
    tight = run(h, booked_day, forecasts, load_scenario("bed_constraint"), addon_fc)
    assert free.per_rep["pacu_hold_minutes"].max() == 0 and free.per_rep["cancellations_beds"].max() == 0
    assert tight.summary["pacu_hold_minutes"]["mean"] > 10
    assert tight.summary["overtime_minutes"]["mean"] >= free.summary["overtime_minutes"]["mean"]


def test_inflated_durations_mean_more_overtime(sim_hospital, forecasts, booked_day, addon_fc, normal) -> None:
    h = sim_hospital[1]
    base = run(h, booked_day, forecasts, normal, addon_fc)
    long = run(h, booked_day, forecasts, normal.with_(duration_inflation=0.25), addon_fc)
    for stat in ("mean", "p50", "p95"):
        assert long.summary["overtime_minutes"][stat] > base.summary["overtime_minutes"][stat]
    assert long.summary["cancellations"]["mean"] >= base.summary["cancellations"]["mean"]


def test_cancellation_spike_means_more_cancellations(sim_hospital, forecasts, booked_day, addon_fc, normal) -> None:
    h = sim_hospital[1]
    base = run(h, booked_day, forecasts, normal, addon_fc)
    spike = run(h, booked_day, forecasts, normal.with_(cancel_multiplier=4.0), addon_fc)
    assert spike.summary["patient_cancellations"]["mean"] > 2 * base.summary["patient_cancellations"]["mean"]
    assert spike.summary["total_cancellations"]["mean"] > base.summary["total_cancellations"]["mean"]
    # Monotone CRN: a case cancelled at the base rate is cancelled in the spike too.
    assert (spike.per_rep["patient_cancellations"] >= base.per_rep["patient_cancellations"]).all()
    everyone = run(h, booked_day, forecasts, normal.with_(cancel_multiplier=50.0), addon_fc.iloc[:0], reps=20)
    assert everyone.summary["elective_cases_run"]["mean"] < 0.3 * base.summary["elective_cases_run"]["mean"]


def test_staff_shortage_closes_the_lightest_rooms(sim_hospital, forecasts, booked_day, addon_fc, normal) -> None:
    h = sim_hospital[1]
    inst = build_instance(h, booked_day, forecasts, load_scenario("staff_shortage"), addon_fc)
    day = inst.days[0]
    assert day.staff_cancelled.sum() > 0 and any("closed" in n for n in inst.notes)
    r = run(h, booked_day, forecasts, load_scenario("staff_shortage"), addon_fc, reps=50)
    assert r.summary["staff_cancellations"]["mean"] == day.staff_cancelled.sum()
    none = run(h, booked_day, forecasts, normal.with_(staffed_rooms_delta=-1000), addon_fc, reps=20)
    assert none.per_rep["utilization"].max() == 0 and none.per_rep["elective_cases_run"].max() == 0
    assert none.per_rep["spillover_cases"].sum() == none.per_rep["addon_cases"].sum()


def test_a_shortage_keeps_its_floor_share(sim_hospital, forecasts, booked_day, addon_fc, normal) -> None:
    """A fixed delta larger than the hospital leaves it the floor share, rounded up, of its staffed
    rooms and PACU beds (the shipped stress scenarios keep half): a 3-room hospital is not closed."""
    import math

    h = sim_hospital[1]
    day0 = pd.Timestamp(booked_day["date"].dropna().iloc[0]).normalize()
    row = h.staffing.set_index("date").loc[day0]
    harsh = normal.with_(pacu_beds_delta=-1000, staffed_rooms_delta=-1000)
    kept = harsh.with_(pacu_beds_min_share=0.5, staffed_rooms_min_share=0.5)
    assert build_instance(h, booked_day, forecasts, harsh, addon_fc).days[0].pacu_beds == 1
    assert build_instance(h, booked_day, forecasts, kept, addon_fc).days[0].pacu_beds == max(1, math.ceil(0.5 * row["pacu_beds"]))
    closed = run(h, booked_day, forecasts, harsh, addon_fc, reps=20)
    floor = run(h, booked_day, forecasts, kept, addon_fc, reps=20)
    assert closed.per_rep["elective_cases_run"].max() == 0 and floor.per_rep["elective_cases_run"].min() > 0
    for name in ("bed_constraint", "staff_shortage"):
        sc = load_scenario(name)
        assert sc.value("pacu_beds_min_share") == 0.5 or sc.value("staffed_rooms_min_share") == 0.5


def test_one_huge_case_cannot_run(sim_hospital, forecasts, booked_day, addon_fc, normal) -> None:
    h = sim_hospital[1]
    fc = forecasts.copy()
    first = booked_day[booked_day["status"] == "scheduled"].sort_values("start").iloc[-1]["case_id"]
    fc.loc[fc["case_id"] == first, ["p50", "p80", "p95"]] = [1300.0, 1400.0, 1500.0]
    r = run(h, booked_day, fc, normal.with_(cancel_multiplier=0.0), addon_fc.iloc[:0], reps=30)
    assert (r.per_rep["cancellations"] + r.per_rep["spillover_cases"] >= 1).all()


def test_policies_differ_as_designed(sim_hospital, forecasts, booked_day, addon_fc) -> None:
    h = sim_hospital[1]
    busy = load_scenario("high_addon").with_(addon_multiplier=3.0)
    res = {p: run(h, booked_day, forecasts, busy, addon_fc, reps=200, addon_policy=p) for p in ("reserve", "next_free", "bump")}
    assert res["bump"].summary["bumped_cases"]["mean"] > 0
    assert res["reserve"].summary["bumped_cases"]["mean"] == res["next_free"].summary["bumped_cases"]["mean"] == 0
    # Bumping electives protects the end of the day.
    assert res["bump"].summary["overtime_minutes"]["mean"] < res["next_free"].summary["overtime_minutes"]["mean"]
    inst = build_instance(h, booked_day, forecasts, busy, addon_fc, SimParams(addon_policy="reserve"))
    assert inst.days[0].is_reserve.any()  # the small hospital leaves staffed rooms free for add-ons


def test_same_seed_same_days_other_seed_other_days(sim_hospital, forecasts, booked_day, addon_fc, normal) -> None:
    h = sim_hospital[1]
    a = run(h, booked_day, forecasts, normal, addon_fc, reps=100, seed=3)
    b = run(h, booked_day, forecasts, normal, addon_fc, reps=100, seed=3)
    c = run(h, booked_day, forecasts, normal, addon_fc, reps=100, seed=4)
    assert a.per_rep.equals(b.per_rep) and not a.per_rep.equals(c.per_rep)
    chunked = run(h, booked_day, forecasts, normal, addon_fc, reps=100, seed=3, chunk_reps=7)
    assert chunked.per_rep.equals(a.per_rep)
    first = run(h, booked_day, forecasts, normal, addon_fc, reps=40, seed=3)
    assert first.per_rep.equals(a.per_rep.iloc[:40])  # replication i is the same in any run length


def test_crn_identical_schedules_identical_metrics(sim_hospital, forecasts, booked_day, addon_fc, normal) -> None:
    h = sim_hospital[1]
    shuffled = booked_day.sample(frac=1.0, random_state=1).reset_index(drop=True)
    cmp_ = compare_policies(h, {"a": booked_day, "b": shuffled}, forecasts, normal, 200, 8, addon_fc, baseline="b")
    assert cmp_.results["a"].per_rep.equals(cmp_.results["b"].per_rep)
    means = cmp_.paired[cmp_.paired["statistic"] == "mean"]
    assert (means["diff"] == 0).all()


def test_crn_different_schedules_are_paired(sim_hospital, forecasts, booked_day, rules_day, addon_fc, normal) -> None:
    h = sim_hospital[1]
    # Case-level: a case keeps its random numbers wherever a schedule puts it.
    ia = build_instance(h, booked_day, forecasts, normal, addon_fc)
    ib = build_instance(h, rules_day, forecasts, normal, addon_fc)
    keys = rep_keys(8, 0, 50)
    da, db = make_draws(ia, ia.days[0], keys), make_draws(ib, ib.days[0], keys)
    common = sorted(set(ia.days[0].case_ids) & set(ib.days[0].case_ids))
    assert len(common) >= 5
    pa = [ia.days[0].case_ids.index(c) for c in common]
    pb = [ib.days[0].case_ids.index(c) for c in common]
    assert np.array_equal(da.dur[:, pa], db.dur[:, pb]) and np.array_equal(da.cancel[:, pa], db.cancel[:, pb])
    assert np.array_equal(da.arr, db.arr)  # the same add-ons arrive
    # Metric-level: paired differences are far less noisy than unpaired ones.
    cmp_ = compare_policies(h, {"rules": rules_day, "booked": booked_day}, forecasts, normal, 400, 8, addon_fc)
    x = cmp_.results["booked"].per_rep["overtime_minutes"]
    y = cmp_.results["rules"].per_rep["overtime_minutes"]
    assert np.corrcoef(x, y)[0, 1] > 0.3
    assert (x - y).var() < 0.8 * (x.var() + y.var())
    row = cmp_.paired[(cmp_.paired["metric"] == "overtime_minutes") & (cmp_.paired["statistic"] == "mean")].iloc[0]
    assert row["ci_lo"] <= row["diff"] <= row["ci_hi"] and row["policy"] == "booked" and row["baseline"] == "rules"


def test_sweep_on_dask_equals_in_process(sim_hospital, forecasts, booked_day, rules_day, addon_fc) -> None:
    from distributed import LocalCluster

    h = sim_hospital[1]
    kw = dict(scenarios=["normal", "bed_constraint"], reps=60, seed=2, knobs=[{}, {"duration_inflation": 0.1}],
              addon_forecast=addon_fc, params=SimParams(chunk_reps=25))
    local = run_sweep(h, {"booked": booked_day, "rules": rules_day}, forecasts, **kw)
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=":0") as cluster:
        remote = run_sweep(h, {"booked": booked_day, "rules": rules_day}, forecasts, scheduler_address=cluster.scheduler_address, **kw)
    assert len(local.table) == 2 * 2 * 2 * len(local.table["metric"].unique())
    pd.testing.assert_frame_equal(local.table, remote.table)
    for key, r in local.results.items():
        assert r.per_rep.equals(remote.results[key].per_rep)


def test_bad_runs_raise(sim_hospital, forecasts, booked_day, addon_fc, normal) -> None:
    h = sim_hospital[1]
    with pytest.raises(ValueError, match="reps"):
        simulate(h, booked_day, forecasts, normal, 0, 1, addon_fc)
    with pytest.raises(ValueError, match="seed"):
        simulate(h, booked_day, forecasts, normal, 5, -1, addon_fc)
    with pytest.raises(InputError, match="no forecast"):
        simulate(h, booked_day, forecasts.iloc[:2], normal, 5, 1, addon_fc)
    bad = booked_day.copy()
    bad.loc[0, "case_id"] = "NOPE"
    with pytest.raises(InputError, match="NOPE"):
        simulate(h, bad, forecasts, normal, 5, 1, addon_fc)
    with pytest.raises(InputError, match="Dask scheduler"):
        simulate(h, booked_day, forecasts, normal, 5, 1, addon_fc, SimParams(dask_timeout_s=1.0),
                 scheduler_address="tcp://127.0.0.1:1")
