"""Unit tests: scenario files and SimParams validate their input and name what is wrong."""
from __future__ import annotations

from pathlib import Path

import pytest

from engine.errors import InputError
from engine.sim import KNOBS, SimParams, available_scenarios, load_scenario
from engine.sim.scenario import SCENARIO_DIR, Scenario


def test_the_four_scenarios_load() -> None:
    assert {"normal", "high_addon", "staff_shortage", "bed_constraint"} <= set(available_scenarios())
    for name in ("normal", "high_addon", "staff_shortage", "bed_constraint"):
        s = load_scenario(name)
        assert s.name == name and set(s.knobs) == set(KNOBS)
    assert load_scenario("high_addon").is_range("addon_multiplier")
    assert load_scenario("staff_shortage").value("staffed_rooms_delta") < 0
    assert load_scenario("bed_constraint").value("pacu_beds_delta") < 0
    assert load_scenario(SCENARIO_DIR / "normal.toml").value("duration_inflation") == 0.0


def _write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "s.toml"
    p.write_text(text)
    return p


@pytest.mark.parametrize("text, key, words", [
    ('name = "x"\n[knobs]\nduration_inflaton = 0.1\n', "knobs.duration_inflaton", "unknown knob"),
    ('name = "x"\ncolour = "red"\n', "colour", "unknown key"),
    ('name = "x"\n[knobs]\nduration_inflation = "lots"\n', "knobs.duration_inflation", "must be a number"),
    ('name = "x"\n[knobs]\nstaffed_rooms_delta = 1.5\n', "knobs.staffed_rooms_delta", "integer"),
    ('name = "x"\n[knobs]\nlate_start_prob = 1.5\n', "knobs.late_start_prob", "out of range"),
    ('name = "x"\n[knobs]\ncancel_multiplier = -1\n', "knobs.cancel_multiplier", "out of range"),
    ('name = "x"\n[knobs]\naddon_multiplier = [2.0, 1.0]\n', "knobs.addon_multiplier", "lo above hi"),
    ('name = "x"\n[knobs]\naddon_multiplier = [1.0, 2.0, 3.0]\n', "knobs.addon_multiplier", "two numbers"),
    ('name = "x"\n[knobs]\npacu_beds_delta = true\n', "knobs.pacu_beds_delta", "integer"),
    ('name = 5\n', "name", "must be a string"),
    ('knobs = 3\n', "knobs", "must be a table"),
])
def test_bad_scenario_file_names_file_and_key(tmp_path: Path, text: str, key: str, words: str) -> None:
    p = _write(tmp_path, text)
    with pytest.raises(InputError) as info:
        load_scenario(p)
    probs = [pr for pr in info.value.problems if pr.column == key]
    assert probs, info.value.describe()
    assert probs[0].file == str(p) and words in probs[0].problem
    assert key in info.value.describe() and str(p) in info.value.describe()


def test_all_problems_reported_at_once(tmp_path: Path) -> None:
    p = _write(tmp_path, '[knobs]\nlate_start_prob = 2\nfoo = 1\n')
    with pytest.raises(InputError) as info:
        load_scenario(p)
    assert {pr.column for pr in info.value.problems} == {"knobs.late_start_prob", "knobs.foo"}


def test_unknown_name_missing_file_and_bad_toml(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="unknown scenario 'nope'.*normal"):
        load_scenario("nope")
    with pytest.raises(InputError, match="not found"):
        load_scenario(tmp_path / "missing.toml")
    with pytest.raises(InputError, match="not valid TOML"):
        load_scenario(_write(tmp_path, "name = \n"))


def test_scenario_with_validates_and_defaults_fill() -> None:
    s = Scenario("t", knobs={"duration_inflation": 0.2})
    assert s.value("cancel_multiplier") == KNOBS["cancel_multiplier"].default
    assert s.with_(duration_inflation=[0.1, 0.3]).bounds("duration_inflation") == (0.1, 0.3)
    with pytest.raises(InputError, match="knobs.late_start_prob"):
        s.with_(late_start_prob=3.0)


@pytest.mark.parametrize("field, value", [
    ("addon_policy", "random"), ("engine", "numba"), ("turnover_sigma", -0.1), ("early_ready_prob", 1.5),
    ("max_addons_per_group", -1), ("chunk_reps", 0), ("z_clip", float("nan")), ("min_duration_minutes", 2000.0),
])
def test_simparams_bad_values_name_the_field(field: str, value) -> None:
    with pytest.raises(ValueError, match=field):
        SimParams(**{field: value})


def test_knobs_come_from_the_one_spec_table() -> None:
    """Every KNOBS entry is a knob of the file model, checked with its own bounds; nothing else is."""
    from engine.sim.scenario import _Knobs

    assert list(_Knobs.model_fields) == list(KNOBS)
    s = Scenario("t", knobs={"addon_multiplier": [1, 2], "pacu_beds_delta": -3})
    assert s.knobs["addon_multiplier"] == (1, 2) and s.is_range("addon_multiplier") and s.value("pacu_beds_delta") == -3
    lo, hi = KNOBS["room_downtime_minutes"].lo, KNOBS["room_downtime_minutes"].hi
    assert Scenario("t", knobs={"room_downtime_minutes": hi}).value("room_downtime_minutes") == hi
    with pytest.raises(InputError) as info:
        Scenario("t", knobs={"room_downtime_minutes": hi + 1, "x": 1}, source="mine.toml")
    assert sorted((p.file, p.column, p.problem.split(" (")[0]) for p in info.value.problems) == [
        ("mine.toml", "knobs.room_downtime_minutes", f"{hi + 1!r} is out of range"), ("mine.toml", "knobs.x", "unknown knob")]
    assert f"({lo:g}..{hi:g})" in str(info.value)
