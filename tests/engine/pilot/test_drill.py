"""Rollback drills: one per fault kind on the small pilot hospital. Each injects the fault into a copy,
is detected by the gate (or the store) the design names, is withheld or falls back, is restored, and
leaves the original folder byte for byte as it was; the CLI writes the report and one audit entry."""
from __future__ import annotations

import hashlib
import json

import pytest

from engine.governance import read_log, verify_chain
from engine.pilot.drill import FAULT_GATE, FAULTS, DrillParams, drills, run_drill, solver_down

pytestmark = pytest.mark.slow


def _digest(folder) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


@pytest.mark.parametrize("fault", FAULTS)
def test_each_fault_is_detected_answered_and_restored(fault, pilot_folder, tmp_path) -> None:
    before = _digest(pilot_folder)
    rep = run_drill(pilot_folder, DrillParams(fault, time_limit_s=10), tmp_path / "w", hospital_id="pilot")
    steps = {s["step"]: s for s in rep["steps"]}
    assert list(steps) == ["copy", "baseline", "inject", "detect", "respond", "restore"], rep["steps"]
    assert all(s["ok"] for s in rep["steps"]), rep["steps"]
    assert rep["passed"] and rep["original_untouched"] and _digest(pilot_folder) == before
    assert all(s["seconds"] >= 0 for s in rep["steps"])
    assert json.loads((tmp_path / "w" / "drill-report.json").read_text())["fault"] == fault
    gate = FAULT_GATE[fault]
    if gate is not None:  # withheld by the fault's own gate, in the real publish flow
        assert gate in steps["respond"]["data"]["withheld_by"]
        assert steps["detect"]["detail"].startswith("detected")
    else:
        assert "Connection refused" in steps["detect"]["detail"] or "refused" in steps["detect"]["detail"]
        assert (tmp_path / "w" / "rules-schedule.csv").exists()
    if fault in ("stale-model", "solver-down"):  # the rules schedule is the fallback, and it clears that gate
        assert "passes the" in steps["respond"]["detail"]


def test_solver_patch_is_undone() -> None:
    import importlib

    solve = importlib.import_module("engine.plan.solve")
    with solver_down():
        assert not solve.highs_available() and solve.glpsol_path() is None
    assert solve.highs_available()


def test_bad_fault_is_refused() -> None:
    with pytest.raises(ValueError, match="fault must be one of"):
        DrillParams("power-cut")


def test_cli_writes_the_report_and_one_audit_entry(pilot_folder, tmp_path, capsys) -> None:
    from engine.cli import main

    url = f"sqlite:///{tmp_path / 'store.sqlite'}"
    out = tmp_path / "drill"
    assert main(["drill", "--data", str(pilot_folder), "--fault", "stale-feed", "--db", url, "--out", str(out),
                 "--json", str(tmp_path / "d.json")]) == 0
    assert "PASSED" in capsys.readouterr().out
    rep = json.loads((tmp_path / "d.json").read_text())
    log = read_log(url, "pilot")
    assert list(log["kind"]) == ["drill"] and rep["audit_entry_id"] == int(log["entry_id"].iloc[0])
    assert log["payload"].iloc[0]["fault"] == "stale-feed" and log["payload"].iloc[0]["passed"] is True
    assert verify_chain(url, "pilot").ok
    listed = drills(url, "pilot")
    assert list(listed["fault"]) == ["stale-feed"] and listed["report"].iloc[0].endswith("drill-report.json")
    assert main(["drill", "--data", str(pilot_folder), "--fault", "stale-feed", "--db", url,
                 "--out", str(pilot_folder / "x")]) == 2
    assert "--out" in capsys.readouterr().err
    assert not (pilot_folder / "x").exists()


def test_solver_down_drill_plans_from_the_deployments_settings(pilot_folder, tmp_path, monkeypatch) -> None:
    """The drill's optimizer runs start from the plan settings it is given (the dashboard passes its own,
    OR_PLAN_PARAMS included), with one day and the drill's time limit."""
    import engine.plan as plan_pkg
    from engine.plan import PlanParams

    seen = []
    real = plan_pkg.plan

    def spy(h, fc, day, params=None, **kw):
        seen.append(params)
        return real(h, fc, day, params, **kw)

    monkeypatch.setattr(plan_pkg, "plan", spy)
    base = PlanParams(days=3, sequencer="greedy", w_overtime=7.0)
    rep = run_drill(pilot_folder, DrillParams("solver-down", time_limit_s=5, plan_params=base), tmp_path / "w",
                    hospital_id="pilot")
    assert rep["passed"], rep["steps"]
    assert seen and all(p.sequencer == "greedy" and p.w_overtime == 7.0 and p.days == 1 and p.time_limit_s == 5
                        for p in seen)
