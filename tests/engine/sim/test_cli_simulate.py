"""``python -m engine simulate`` (CONTRACTS.md section 3): exit codes and JSON keys."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from engine.cli import main
from engine.forecast import ForecastParams, Forecaster, Registry

FAST = ForecastParams(iterations=60, cancel_iterations=40, calibration_days=60, min_train_cases=100)
METRICS = ("utilization", "overtime_minutes", "cancellations", "spillover_cases", "pacu_hold_minutes", "surgeon_idle_minutes")


@pytest.fixture(scope="module")
def cli_setup(sim_hospital, tmp_path_factory):
    """The small hospital folder, a registry holding a quickly fitted model, and a rules schedule."""
    folder, h = sim_hospital
    tmp = tmp_path_factory.mktemp("simcli")
    models = tmp / "models"
    fc = Forecaster(FAST).fit(h.cases, train_until=h.as_of(), rooms=h.rooms)
    Registry(models).save("small", fc, {"data_hash": "test"}, {})
    sched = tmp / "schedule.csv"
    assert main(["plan", "--data", str(folder), "--date", f"{h.as_of():%Y-%m-%d}", "--days", "2", "--solver", "rules",
                 "--out", str(sched), "--models", str(models), "--name", "small"]) == 0
    return folder, models, sched, tmp


def sim(folder, models, sched, *extra: str) -> int:
    return main(["simulate", "--data", str(folder), "--schedule", str(sched), "--models", str(models), "--name", "small",
                 *extra])


def test_simulate_writes_contract_json(cli_setup, capsys) -> None:
    folder, models, sched, tmp = cli_setup
    out = tmp / "sim.json"
    assert sim(folder, models, sched, "--scenario", "normal", "--reps", "200", "--seed", "3", "--json", str(out)) == 0
    j = json.loads(out.read_text())
    for m in METRICS:
        assert set(j[m]) >= {"mean", "p5", "p50", "p95"} and "worst5_mean" in j[m]
        assert j[m]["p5"] <= j[m]["p50"] <= j[m]["p95"]
    assert isinstance(j["by_service_line"], dict) and j["by_service_line"]
    first = next(iter(j["by_service_line"].values()))
    assert {"overtime_minutes", "cancellations", "end_delay_minutes", "on_time_rate"} <= set(first)
    assert j["reps"] == 200 and j["seed"] == 3 and j["scenario"] == "normal" and len(j["dates"]) == 2
    assert "utilization" in capsys.readouterr().out
    # Same seed, same days: the JSON figures repeat exactly.
    again = tmp / "again.json"
    assert sim(folder, models, sched, "--scenario", "normal", "--reps", "200", "--seed", "3", "--json", str(again)) == 0
    k = json.loads(again.read_text())
    assert all(j[m] == k[m] for m in METRICS) and j["by_service_line"] == k["by_service_line"]


def test_simulate_other_scenarios_and_engine(cli_setup) -> None:
    folder, models, sched, tmp = cli_setup
    out = tmp / "simpy.json"
    assert sim(folder, models, sched, "--scenario", "bed_constraint", "--reps", "30", "--engine", "simpy",
               "--addon-policy", "bump", "--json", str(out)) == 0
    j = json.loads(out.read_text())
    assert j["engine"] == "simpy" and j["addon_policy"] == "bump" and j["pacu_hold_minutes"]["mean"] >= 0
    scen = tmp / "mine.toml"
    scen.write_text('name = "mine"\n[knobs]\nduration_inflation = [0.0, 0.2]\n')
    assert sim(folder, models, sched, "--scenario", str(scen), "--reps", "20", "--json", str(out)) == 0
    assert json.loads(out.read_text())["scenario"] == "mine"


def test_simulate_on_a_dask_cluster(cli_setup) -> None:
    from distributed import LocalCluster

    folder, models, sched, tmp = cli_setup
    a, b = tmp / "local.json", tmp / "dask.json"
    assert sim(folder, models, sched, "--scenario", "normal", "--reps", "50", "--seed", "1", "--json", str(a)) == 0
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=":0") as cluster:
        assert sim(folder, models, sched, "--scenario", "normal", "--reps", "50", "--seed", "1", "--json", str(b),
                   "--scheduler", cluster.scheduler_address) == 0
    ja, jb = json.loads(a.read_text()), json.loads(b.read_text())
    assert jb["dask"] is True and all(ja[m] == jb[m] for m in METRICS)


def _bad_schedule(tmp: Path, sched: Path) -> Path:
    df = pd.read_csv(sched, dtype=str)
    df.loc[1, "case_id"] = "GHOST-1"
    p = tmp / "bad_schedule.csv"
    df.to_csv(p, index=False)
    return p


@pytest.mark.parametrize("case", ["missing_schedule", "unknown_case", "bad_scenario_name", "bad_scenario_file",
                                  "reps_zero", "reps_negative", "missing_column", "missing_data"])
def test_simulate_bad_input_exits_2(cli_setup, capsys, case: str) -> None:
    folder, models, sched, tmp = cli_setup
    args = {"scenario": "normal", "reps": "5", "schedule": sched, "data": folder}
    want = ""
    if case == "missing_schedule":
        args["schedule"], want = tmp / "nope.csv", "nope.csv"
    elif case == "unknown_case":
        args["schedule"], want = _bad_schedule(tmp, sched), "GHOST-1"
    elif case == "bad_scenario_name":
        args["scenario"], want = "hurricane", "unknown scenario"
    elif case == "bad_scenario_file":
        p = tmp / "bad.toml"
        p.write_text('[knobs]\nlate_start_prob = 7\n')
        args["scenario"], want = str(p), "knobs.late_start_prob"
    elif case == "reps_zero":
        args["reps"], want = "0", "--reps"
    elif case == "reps_negative":
        args["reps"], want = "-3", "--reps"
    elif case == "missing_column":
        p = tmp / "nocol.csv"
        pd.read_csv(sched, dtype=str).drop(columns=["start"]).to_csv(p, index=False)
        args["schedule"], want = p, "start"
    elif case == "missing_data":
        args["data"], want = tmp / "no_hospital", "no_hospital"
    out = tmp / f"{case}.json"
    code = main(["simulate", "--data", str(args["data"]), "--schedule", str(args["schedule"]), "--scenario", args["scenario"],
                 "--reps", args["reps"], "--models", str(models), "--name", "small", "--json", str(out)])
    err = capsys.readouterr().err
    assert code == 2, err
    assert want in err and not out.exists()


def test_simulate_help_lists_contract_options(capsys) -> None:
    with pytest.raises(SystemExit) as info:
        main(["simulate", "--help"])
    assert info.value.code == 0
    text = capsys.readouterr().out
    for opt in ("--data", "--schedule", "--scenario", "--reps", "--seed", "--json", "--scheduler"):
        assert opt in text
