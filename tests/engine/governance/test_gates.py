"""Each safety gate tripped on purpose, with its plain-language message and what to inspect next."""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest

from engine.forecast.registry import ModelVersion
from engine.governance import GateParams, Governance, Override, evaluate_gates, load_catalog, read_log, withheld
from engine.governance.gates import GATES
from engine.hospital import load_hospital
from tests.engine.governance.conftest import COORD, VIEWER

GOOD_MODEL = {"version": "v20270103-abc", "train_until": "2027-01-03", "data_hash": "abc123", "drift_state": "ok"}


def _by_gate(results):
    return {r.gate: r for r in results}


def edit_csv(folder: Path, name: str, fn) -> None:
    df = pd.read_csv(folder / name, dtype=str, keep_default_na=False)
    fn(df).to_csv(folder / name, index=False)


def test_all_gates_pass_on_a_sound_plan(hospital, planned, loaded) -> None:
    res = evaluate_gates(hospital, plan_json=planned.to_json(), model=GOOD_MODEL, quality=loaded.report, override_rate=0.0,
                         schedule=planned.schedule)
    assert [r.gate for r in res] == list(GATES)
    assert withheld(res) == [], [r.message for r in res if not r.passed]
    g = _by_gate(res)
    assert g["feeds"].message.startswith("All required feeds are current: cases")
    assert g["solver"].message.startswith("The highs solver finished (optimal")
    assert all(r.rule_id.startswith("G-") for r in res)
    assert g["hard_rules"].message.startswith("No hard rule is broken: ") and "H1-H10" in g["hard_rules"].message
    assert all(r.checked for r in res)  # every gate states what it looked at


def test_stale_feeds(hospital, folder_copy) -> None:
    later = replace(hospital, settings=hospital.settings.with_updates(as_of="2027-01-15"))
    g = _by_gate(evaluate_gates(later))["feeds"]
    assert not g.passed and g.withholds
    assert "The cases feed is stale: its newest record" in g.message and "older than the as-of date 2027-01-15" in g.message
    assert "allowed: 3 days" in g.message and "cases.csv" in g.inspect_next
    # a staffing feed that stops after two days
    edit_csv(folder_copy, "staffing.csv", lambda df: df[df["date"] <= "2027-01-05"])
    short = load_hospital(folder_copy).hospital
    g = _by_gate(evaluate_gates(short))["feeds"]
    assert not g.passed
    assert "The staffing feed reaches only 2 days ahead of 2027-01-04 (last date 2027-01-05); planning needs at least 7 days ahead." in g.message
    assert "staffing.csv" in g.inspect_next and "rostering" in g.inspect_next
    assert g.details["stale"] == ["staffing"]
    # a feed that is not required does not block
    assert _by_gate(evaluate_gates(short, params=GateParams(required_feeds=("cases", "blocks"))))["feeds"].passed


def test_drift_stop(hospital, tmp_path) -> None:
    stop = {**GOOD_MODEL, "drift_state": "stop"}
    g = _by_gate(evaluate_gates(hospital, model=stop))["drift"]
    assert not g.passed and "is in the stop state" in g.message and "retrain" in g.inspect_next
    # with the registry's artefact, the message names what shifted
    (tmp_path / "drift.csv").write_text("quantity,psi,state\nbooked_minutes,0.41,stop\nbmi,0.02,ok\n")
    mv = ModelVersion("v9", {**stop, "version": "v9"}, forecaster=None, path=tmp_path)
    g = _by_gate(evaluate_gates(hospital, model=mv))["drift"]
    assert "booked_minutes (PSI 0.41)" in g.message and "drift.csv" in g.inspect_next
    warn = _by_gate(evaluate_gates(hospital, model={**GOOD_MODEL, "drift_state": "warn"}))["drift"]
    assert warn.passed and "moderate shift" in warn.message


def test_stale_or_mismatched_model_artefact(gov: Governance, hid: str, hospital, planned) -> None:
    old = {**GOOD_MODEL, "train_until": "2026-09-01"}
    g = _by_gate(evaluate_gates(hospital, model=old))["model"]
    assert not g.passed
    assert "was trained on data up to 2026-09-01, 125 days before the as-of date 2027-01-04 (allowed: 30 days)" in g.message
    assert "Retrain" in g.inspect_next and "rules-based" in g.inspect_next
    assert _by_gate(evaluate_gates(hospital, model=old, params=GateParams(max_model_age_days=200)))["model"].passed
    no_hash = {k: v for k, v in GOOD_MODEL.items() if k != "data_hash"}
    assert "carries no data hash" in _by_gate(evaluate_gates(hospital, model=no_hash))["model"].message
    # the schedule was proposed with one model; another is in force now
    v = gov.propose(hid, planned, COORD, hospital=hospital, model=GOOD_MODEL)
    swapped = {**GOOD_MODEL, "data_hash": "zzz999"}
    g = _by_gate(evaluate_gates(hospital, model=swapped, version=v))["model"]
    assert not g.passed and "the artefact was replaced" in g.message
    other = {**GOOD_MODEL, "version": "v20270104-def"}
    assert "proposed with model v20270103-abc, but the model in force is v20270104-def" in \
        _by_gate(evaluate_gates(hospital, model=other, version=v))["model"].message


def test_input_data_changed_since_proposal(gov: Governance, hid: str, hospital, planned) -> None:
    v = gov.propose(hid, planned, COORD, hospital=hospital)
    assert _by_gate(evaluate_gates(hospital, version=v))["input_data"].passed
    changed = replace(hospital, cases=hospital.cases.iloc[:-1])
    g = _by_gate(evaluate_gates(changed, version=v))["input_data"]
    assert not g.passed and f"changed since version {v.version_id} was proposed" in g.message and "Re-plan" in g.inspect_next


def test_high_override_rate(gov: Governance, hid: str, hospital, planned, loaded) -> None:
    g = _by_gate(evaluate_gates(hospital, override_rate=0.3))["override_rate"]
    assert not g.passed and "30% of the cases in this schedule were changed by hand, above the 20% threshold" in g.message
    # through the ledger: a third of the cases overridden, mostly surgeon requests in one line
    v = gov.propose(hid, planned, COORD, hospital=hospital)
    s = planned.schedule
    pick = s[s["status"] == "scheduled"].head(7)
    nv = gov.override(v.version_id, [Override(c, "lock", "surgeon_request") for c in pick["case_id"]], COORD)
    res = gov.check_gates(nv.version_id, COORD, hospital, model=GOOD_MODEL, quality=loaded.report)
    g = _by_gate(res)["override_rate"]
    line = pick["service_line"].value_counts().index[0]
    assert not g.passed and f"(7 of {len(s)} cases)" in g.message
    assert "most by code surgeon_request (7)" in g.message and f"most by service line {line}" in g.message
    assert "Review the override log" in g.inspect_next
    entry = read_log(gov.engine, hid).iloc[-1]
    assert entry["kind"] == "gate_decision" and entry["payload"]["decision"] == "withhold"
    assert entry["payload"]["failed"] == ["override_rate"] and len(entry["payload"]["gates"]) == len(GATES)
    with pytest.raises(PermissionError, match="may not run the safety gates"):
        gov.check_gates(nv.version_id, VIEWER, hospital)


def test_solver_fallback_failure_and_gap(hospital, planned, rules_planned) -> None:
    fb = {**planned.to_json(), "solver": "rules", "status": "time_limit", "fallback_used": True,
          "fallback_reason": "The highs solver found no schedule within 5 s. Showing the rules-based block schedule instead."}
    g = _by_gate(evaluate_gates(hospital, plan_json=fb))["solver"]
    assert not g.passed and "The optimizer did not produce this schedule: The highs solver found no schedule within 5 s." in g.message
    assert "rollback to rules" in g.inspect_next
    gap = {**planned.to_json(), "status": "time_limit", "mip_gap": 0.083}
    g = _by_gate(evaluate_gates(hospital, plan_json=gap))["solver"]
    assert not g.passed and "stopped with a gap of 8.3%, above the tolerance of 5%" in g.message and "more time" in g.inspect_next
    err = {**planned.to_json(), "status": "error", "mip_gap": None}
    assert "ended with status 'error'" in _by_gate(evaluate_gates(hospital, plan_json=err))["solver"].message
    assert not _by_gate(evaluate_gates(hospital))["solver"].passed  # nothing recorded: cannot vouch for it
    assert _by_gate(evaluate_gates(hospital, plan_json=rules_planned.to_json()))["solver"].message.startswith("Rules-based")
    assert _by_gate(evaluate_gates(hospital, plan_json=gap, params=GateParams(max_gap=0.1)))["solver"].passed


def test_too_many_quarantined_rows(folder_copy) -> None:
    def damage(df):
        idx = df.index[df["status"] == "completed"][:30]  # ~1.7% of rows, below the 5% rejection
        df.loc[idx, "surgery_date"] = "2026-02-30"
        return df

    edit_csv(folder_copy, "cases.csv", damage)
    loaded = load_hospital(folder_copy)
    assert loaded.report.n_quarantined == 30
    g = _by_gate(evaluate_gates(loaded.hospital, quality=loaded.report, params=GateParams(max_quarantine_share=0.01)))["quarantine"]
    assert not g.passed and "30 of" in g.message and "were quarantined at import, above the 1% limit" in g.message
    assert "most problems in column 'surgery_date' (30 rows)" in g.message and "quarantine list" in g.inspect_next
    assert _by_gate(evaluate_gates(loaded.hospital, quality=loaded.report))["quarantine"].passed  # 1.7% < default 2%


def test_monitored_gate_reports_without_blocking(hospital, tmp_path) -> None:
    text = Path(load_catalog().source).read_text()
    block = text[text.index('id = "G-OVERRIDE"'):]
    block = block[:block.index("[[rule]]")]
    new_block = block.replace('mode = "enforced"', 'mode = "monitored"').replace("max_rate = 0.2", "max_rate = 0.25")
    (tmp_path / "catalog.toml").write_text(text.replace(block, new_block))
    cat = load_catalog(tmp_path / "catalog.toml")
    params = GateParams.from_catalog(cat)
    assert params.max_override_rate == 0.25 and "override_rate" not in params.enforced
    g = _by_gate(evaluate_gates(hospital, override_rate=0.3, catalog=cat))["override_rate"]
    assert not g.passed and not g.blocking and not g.withholds and g.message.startswith("(monitored, not blocking)")
    with pytest.raises(ValueError, match="max_override_rate must be within 0..1"):
        GateParams(max_override_rate=2)
    with pytest.raises(ValueError, match="required_feeds must be among"):
        GateParams(required_feeds=("radio",))
