"""Fairness metrics against hand-computed values on a small fixed schedule."""
from __future__ import annotations

import json

import pandas as pd
import pytest

from engine.fairness import FairnessParams, fairness_report, flags, schedule_fairness
from engine.fairness.review import possessive
from engine.hospital import load_hospital
from tests.minihospital import write_mini_hospital


@pytest.fixture
def mini(tmp_path):
    h = load_hospital(write_mini_hospital(tmp_path / "mini")).hospital
    first = h.cases[h.cases["status"] == "booked"].groupby("service_line")["case_id"].first()
    ids = {"uro": first["Urology"], "ortho": first["Orthopedics"], "gen": first["General Surgery"]}
    return h, ids


def _schedule(ids):
    d = "2027-01-04"
    t = lambda hm: pd.Timestamp(f"{d} {hm}")  # noqa: E731
    return pd.DataFrame([
        # Urology 07:30-09:30 at P50 (120 prime minutes), P80 10:00.
        {"case_id": ids["uro"], "surgeon_id": "S4", "service_line": "Urology", "date": d, "room_id": "OR1", "status": "scheduled",
         "start": t("07:30"), "end_p50": t("09:30"), "end_p80": t("10:00"), "pacu_in": t("09:30"), "pacu_out": t("10:45"), "reason": "x"},
        # Orthopedics 14:30-16:30 at P50: 60 prime minutes, a late slot; P80 17:30 is 30 min past the 17:00 close.
        {"case_id": ids["ortho"], "surgeon_id": "S1", "service_line": "Orthopedics", "date": d, "room_id": "OR2", "status": "scheduled",
         "start": t("14:30"), "end_p50": t("16:30"), "end_p80": t("17:30"), "pacu_in": t("16:30"), "pacu_out": t("17:45"), "reason": "x"},
        # General Surgery deferred, P50 100 min demanded.
        {"case_id": ids["gen"], "surgeon_id": "S3", "service_line": "General Surgery", "date": d, "room_id": None, "status": "deferred",
         "start": pd.NaT, "end_p50": pd.NaT, "end_p80": pd.NaT, "pacu_in": pd.NaT, "pacu_out": pd.NaT, "reason": "no room"},
    ])


def test_metrics_match_hand_computed_values(mini):
    h, ids = mini
    forecasts = pd.DataFrame({"case_id": [ids["uro"], ids["ortho"], ids["gen"]], "p50": [120.0, 120.0, 100.0]})
    table, summary = schedule_fairness(h, _schedule(ids), "service_line", forecasts)
    t = table.set_index("service_line")
    assert t.loc["Urology", "demand_share"] == pytest.approx(120 / 340)
    assert t.loc["General Surgery", "demand_share"] == pytest.approx(100 / 340)
    assert t.loc["Urology", "prime_time_share"] == pytest.approx(120 / 180)
    assert t.loc["Orthopedics", "prime_time_share"] == pytest.approx(60 / 180)
    assert t.loc["General Surgery", "prime_time_share"] == 0.0
    assert t.loc["Orthopedics", "late_slot_share"] == 1.0 and t.loc["Urology", "late_slot_share"] == 0.0
    assert t.loc["Orthopedics", "overtime_burden_minutes"] == pytest.approx(30.0)
    assert t.loc["Urology", "overtime_burden_minutes"] == 0.0
    assert t.loc["General Surgery", "deferral_rate"] == 1.0 and t.loc["Urology", "deferral_rate"] == 0.0
    assert summary["max_prime_time_gap"] == pytest.approx(100 / 340)
    assert summary["worst_group"] == "General Surgery"
    assert summary["deferral_rate_difference"] == pytest.approx(1.0)


def test_report_has_contract_keys(mini):
    h, ids = mini
    rep = fairness_report(h, _schedule(ids))
    assert set(rep) >= {"by_service_line", "max_prime_time_gap"}
    for v in rep["by_service_line"].values():
        assert {"demand_share", "prime_time_share", "late_slot_share", "overtime_burden_minutes", "deferral_rate"} <= set(v)
    shares = [v["demand_share"] for v in rep["by_service_line"].values()]
    assert sum(shares) == pytest.approx(1.0)


def test_by_site_and_surgeon_and_bad_grouping(mini):
    h, ids = mini
    by_site, _ = schedule_fairness(h, _schedule(ids), "site")
    assert set(by_site["site"]) <= {"Main", "North"}
    by_surgeon, _ = schedule_fairness(h, _schedule(ids), "surgeon_id")
    assert set(by_surgeon["surgeon_id"]) == {"S1", "S3", "S4"}
    with pytest.raises(ValueError, match="by must be one of"):
        schedule_fairness(h, _schedule(ids), "patient_sex")


def test_fairness_cli_writes_contract_json_and_rejects_bad_input(mini, tmp_path):
    import json
    import subprocess
    import sys
    from pathlib import Path

    h, ids = mini
    repo = Path(__file__).resolve().parents[3]
    folder = Path(h.source)
    sched = _schedule(ids)
    for col in ("start", "end_p50", "end_p80", "pacu_in", "pacu_out"):
        sched[col] = pd.to_datetime(sched[col]).dt.strftime("%Y-%m-%dT%H:%M")
    # The schedule must name every booked case of its horizon for the CLI's validation; defer the rest.
    booked = h.cases[(h.cases["status"] == "booked") & (h.cases["surgery_date"] == pd.Timestamp("2027-01-04"))]
    rest = booked[~booked["case_id"].isin(sched["case_id"])]
    extra = pd.DataFrame({"case_id": rest["case_id"], "surgeon_id": rest["surgeon_id"], "service_line": rest["service_line"],
                          "date": "2027-01-04", "room_id": None, "status": "deferred", "reason": "no room"})
    path = tmp_path / "schedule.csv"
    pd.concat([sched, extra], ignore_index=True).to_csv(path, index=False)
    run = lambda *a: subprocess.run([sys.executable, "-m", "engine", "fairness", *a], cwd=repo,  # noqa: E731
                                    capture_output=True, text=True, timeout=120)
    res = run("--data", str(folder), "--schedule", str(path), "--json", str(tmp_path / "f.json"))
    assert res.returncode == 0, res.stderr
    out = json.loads((tmp_path / "f.json").read_text())
    assert set(out["by_service_line"]) >= {"Urology", "Orthopedics", "General Surgery"}
    # Every line of the mini hospital has fewer than the policy's default 5 cases: none is judged.
    assert out["max_prime_time_gap"] == 0.0 and out["policy"]["judged_groups"] == [] and out["policy"]["met"]
    settings = folder / "settings.toml"
    settings.write_text(settings.read_text() + "\n[fairness]\nmin_group_cases = 1\n")
    res = run("--data", str(folder), "--schedule", str(path), "--json", str(tmp_path / "f.json"))
    out = json.loads((tmp_path / "f.json").read_text())
    assert 0 < out["max_prime_time_gap"] <= 1 and out["policy"]["source"] == "settings.toml [fairness]"
    bad = run("--data", str(folder), "--schedule", str(tmp_path / "missing.csv"))
    assert bad.returncode == 2 and "missing.csv" in bad.stderr


def test_fairness_term_narrows_the_prime_time_gap(tmp_path, monkeypatch):
    """Under the policy a day's plan is never further from the limit than the same call's own
    plan without the term (the first one made), and the cost table has both plans. Two separate
    calls are not compared: CP-SAT stops on the wall clock, so each call's times follow the load."""
    from engine.fairness import fairness_term_cost
    from engine.fairness import policy as fair_policy
    from engine.generator import GeneratorParams, write_hospital
    from engine.plan import PlanParams, build_instance, build_model, plan

    folder = tmp_path / "fairhosp"
    write_hospital(folder, GeneratorParams(seed=21, rooms=8, history_days=120, horizon_days=7))
    h = load_hospital(folder).hospital
    booked = h.cases[h.cases["status"] == "booked"]
    bm = pd.to_numeric(booked["booked_minutes"])
    f = pd.DataFrame({"case_id": booked["case_id"], "p50": bm * 1.15, "p80": bm * 1.4, "p95": bm * 1.8, "cancel_prob": 0.05})
    day = booked["surgery_date"].min()
    checks = []
    real = fair_policy.check_policy
    monkeypatch.setattr(fair_policy, "check_policy", lambda *a, **k: checks.append(real(*a, **k)) or checks[-1])
    for d in pd.date_range(day, periods=1):
        checks.clear()
        r = plan(h, f, d, PlanParams(time_limit_s=60, fairness_max_gap_points=0.0))
        assert r.fairness["applied"] and len(checks) == r.fairness["plans_tried"]
        limit = h.settings.fairness.model_copy(update={"max_prime_time_gap_points": 0.0})
        assert real(h, r.schedule, limit, f, True).excess_points <= checks[0].excess_points + 1e-9
    cost = fairness_term_cost(h, f, day, days=1, max_gap_points=0.5, params=PlanParams(time_limit_s=60))
    assert list(cost["plan"]) == ["without the fairness policy", "with the policy (max gap 0.5 points)"]
    assert (cost["scheduled"] > 0).all() and cost["days_within_policy"].between(0, 1).all()
    # The term is a real part of the model only when asked for.
    inst = build_instance(h, f, day, PlanParams())
    assert not hasattr(build_model(inst, PlanParams()), "fair_share")
    assert len(build_model(inst, PlanParams(fairness_max_gap_points=5.0)).fair_share) > 0


def test_group_without_scheduled_cases_has_undefined_late_share_consistently(mini):
    h, ids = mini
    table, summary = schedule_fairness(h, _schedule(ids), "service_line")
    t = table.set_index("service_line")
    # General Surgery has one booked case, deferred: no denominator for the late-slot share.
    assert t.loc["General Surgery", "n_cases"] == 1 and t.loc["General Surgery", "n_scheduled"] == 0
    assert pd.isna(t.loc["General Surgery", "late_slot_share"])
    assert t["late_slot_share"].dtype == float
    rep = fairness_report(h, _schedule(ids))
    gs = rep["by_service_line"]["General Surgery"]
    assert gs["late_slot_share"] is None and gs["n_cases"] == 1 and gs["n_scheduled"] == 0
    # The spread ignores the undefined value instead of turning NaN.
    assert summary["late_slot_share_difference"] == pytest.approx(1.0)
    json.dumps(rep)  # no NaN sneaks into the contract JSON


def test_min_group_cases_keeps_tiny_groups_out_of_spreads(mini):
    h, ids = mini
    table, summary = schedule_fairness(h, _schedule(ids), "service_line", min_group_cases=2)
    assert len(table) == 3  # small groups stay in the table, with their n
    assert set(summary["small_groups"]) == {"Urology", "Orthopedics", "General Surgery"}
    assert summary["deferral_rate_difference"] is None and summary["late_slot_share_difference"] is None
    assert summary["worst_group"] is None and summary["max_prime_time_gap"] == 0.0
    with pytest.raises(ValueError, match="min_group_cases"):
        schedule_fairness(h, _schedule(ids), "service_line", min_group_cases=0)


def test_flags_skip_small_groups_and_use_plain_possessives(mini):
    h, ids = mini
    table, _ = schedule_fairness(h, _schedule(ids), "service_line")
    # One case per group: with the default minimum size nothing can be flagged.
    assert FairnessParams().min_group_cases > 1
    assert flags(table, "service_line", FairnessParams(max_prime_gap_points=0.0)).empty
    loose = flags(table, "service_line", FairnessParams(max_prime_gap_points=0.0, max_late_share_difference=0.0,
                                                        max_deferral_rate_difference=0.0, min_group_cases=1))
    assert {"prime_time_gap", "late_slot_share", "deferral_rate"} <= set(loose["metric"])
    assert (loose["n_cases"] == 1).all()
    msgs = " ".join(loose["message"])
    assert "Orthopedics'" in msgs and "Orthopedics's" not in msgs
    assert "General Surgery's cases are deferred" in msgs


def test_possessive_and_params_validation():
    assert possessive("Orthopedics") == "Orthopedics'" and possessive("Urology") == "Urology's"
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match="min_group_cases"):
            FairnessParams(min_group_cases=bad)
