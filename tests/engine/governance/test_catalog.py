"""The rules catalog: validated with errors naming the key, versioned by content, read by the optimizer."""
from __future__ import annotations

from pathlib import Path

import pytest

from engine.errors import InputError
from engine.governance import load_catalog, plan_params_from_catalog
from engine.plan import PlanParams, plan

REAL = Path(load_catalog().source)


def _variant(tmp_path: Path, old: str, new: str, rule: str | None = None) -> Path:
    text = REAL.read_text()
    if rule:
        start = text.index(f'id = "{rule}"')
        end = text.find("[[", start)
        block = text[start:end]
        assert old in block, (old, rule)
        text = text[:start] + block.replace(old, new, 1) + text[end:]
    else:
        assert old in text
        text = text.replace(old, new, 1)
    p = tmp_path / "catalog.toml"
    p.write_text(text)
    return p


def test_catalog_loads_with_hard_rules_enforced() -> None:
    cat = load_catalog()
    ids = cat.enforced_ids()
    assert [f"H{i}" for i in range(1, 11)] == ids[:10]
    assert {r.mode for r in cat.rules.values()} == {"enforced", "monitored", "advisory"}
    for rid in ("FAIR-PRIME", "OT-P80", "FCOTS"):
        assert cat.rules[rid].mode == "monitored"
    for r in cat.rules.values():
        assert r.owner and r.description and r.severity in ("critical", "high", "medium", "low")
    assert cat.rules["H3"].params["overtime_cap_minutes"] == 120
    assert cat.rules_version.startswith("rules-") and len(cat.rules_version) == 18
    assert set(cat.justifications) == {"surgeon_request", "patient_factor", "equipment", "clinical_priority", "other"}
    assert cat.justifications["other"].requires_text and not cat.justifications["equipment"].requires_text
    assert not cat.may_override("H1", "coordinator") and cat.may_override("KEEP-DATE", "coordinator")
    assert len(cat.to_frame()) == len(cat.rules)


@pytest.mark.parametrize(
    "rule, old, new, key",
    [
        ("H4", 'mode = "enforced"', 'mode = "advisory"', "rule H4.mode"),
        ("FCOTS", 'mode = "monitored"', 'mode = "sometimes"', "rule FCOTS.mode"),
        ("OT-P80", 'severity = "medium"', 'severity = "meh"', "rule OT-P80.severity"),
        ("FCOTS", 'override_role = "leadership"', 'override_role = "janitor"', "rule FCOTS.override_role"),
        ("H2", 'owner = "Perioperative services director"', 'owner = ""', "rule H2.owner"),
        ("H3", "overtime_cap_minutes = 120", "overtime_cap_minutes = -5", "rule H3.params.overtime_cap_minutes"),
        ("H5", 'override_role = "none"', 'override_role = "coordinator"', "rule H5.override_role"),
        ("H7", 'id = "H7"', 'id = "H1"', "rule H1.id"),
    ],
)
def test_invalid_catalog_names_the_key(tmp_path: Path, rule: str, old: str, new: str, key: str) -> None:
    with pytest.raises(InputError) as exc:
        load_catalog(_variant(tmp_path, old, new, rule if "id = " not in old else None))
    assert any(p.column == key for p in exc.value.problems), [str(p) for p in exc.value.problems]


def test_missing_hard_rule_and_broken_toml(tmp_path: Path) -> None:
    p = _variant(tmp_path, 'id = "H8"', 'id = "H8-renamed"')
    with pytest.raises(InputError, match="rule H8.*hard rule is missing"):
        load_catalog(p)
    p.write_text("[[rule]\nid=")
    with pytest.raises(InputError, match="cannot read the rules catalog"):
        load_catalog(p)


def test_rules_version_follows_the_content(tmp_path: Path) -> None:
    same = tmp_path / "same.toml"
    same.write_text(REAL.read_text())
    assert load_catalog(same).rules_version == load_catalog().rules_version
    changed = _variant(tmp_path, "max_gap_points = 5.0", "max_gap_points = 4.0", "FAIR-PRIME")
    assert load_catalog(changed).rules_version != load_catalog().rules_version


def test_plan_params_from_catalog(tmp_path: Path, hospital, forecasts, day1) -> None:
    base = PlanParams(days=1, overtime_cap_minutes=None, allow_open_time=True)
    p = plan_params_from_catalog(load_catalog(), base)
    assert p.overtime_cap_minutes == 120.0 and p.allow_open_time and p.allow_date_change
    assert p.fairness_max_gap_points is None and p.days == 1  # monitored rules leave the optimizer alone
    strict = _variant(tmp_path, 'mode = "advisory"', 'mode = "enforced"', "BLOCK-ONLY")
    cat = load_catalog(strict)
    p = plan_params_from_catalog(cat, base)
    assert p.allow_open_time is False
    # the optimizer then keeps every case inside a block of its own
    res = plan(hospital, forecasts, day1, p)
    blocks = hospital.blocks[hospital.blocks["date"] == day1]
    blocked_rooms = set(blocks["room_id"])
    sched = res.schedule[res.schedule["status"] == "scheduled"]
    assert set(sched["room_id"]) <= blocked_rooms
    cap = _variant(tmp_path, "overtime_cap_minutes = 120", "overtime_cap_minutes = 45", "H3")
    assert plan_params_from_catalog(load_catalog(cap), base).overtime_cap_minutes == 45.0
    fair = _variant(tmp_path, 'mode = "monitored"', 'mode = "enforced"', "FAIR-PRIME")
    assert plan_params_from_catalog(load_catalog(fair), base).fairness_max_gap_points == 5.0
