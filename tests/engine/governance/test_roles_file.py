"""The roles file's problems name the file and key (data/roles.toml read through engine/config.py)."""
from __future__ import annotations

from pathlib import Path

import pytest

from engine.errors import InputError
from engine.governance import load_roles
from engine.governance.roles import DEFAULT_ROLES

GOOD_ROLES = """
[actions]
view_schedule = "view schedules"
approve = "approve a proposed schedule"

[roles.coordinator]
label = "OR coordinator"
clinical = true
can = ["view_schedule"]

[roles.leadership]
can = ["view_schedule", "approve"]

[roles.governance]
can = ["view_schedule"]

[roles.viewer]
can = ["view_schedule"]

[masking]
mask = "xx"
identifier_columns = ["MRN"]
free_text_columns = ["Notes"]
prefixes = ["Patient_"]
"""


def _write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "roles.toml"
    p.write_text(text, encoding="utf-8")
    return p


def _problems(path: Path) -> list[tuple[str | None, str]]:
    with pytest.raises(InputError) as exc:
        load_roles(path)
    assert all(p.file == str(path) for p in exc.value.problems)
    return [(p.column, p.problem) for p in exc.value.problems]


def test_the_shipped_roles_file_loads() -> None:
    roles = load_roles(DEFAULT_ROLES)
    assert roles.roles["coordinator"].clinical and not roles.roles["viewer"].clinical
    assert roles.is_masked("mrn")


def test_a_small_roles_file_reads_into_roles(tmp_path: Path) -> None:
    roles = load_roles(_write(tmp_path, GOOD_ROLES))
    assert roles.names() == ["coordinator", "leadership", "governance", "viewer"]
    assert roles.roles["coordinator"].label == "OR coordinator"
    assert roles.roles["leadership"].label == "leadership"  # no label: the role's name
    assert roles.can("leadership", "approve") and not roles.can("viewer", "approve")
    assert roles.mask == "xx" and roles.masked_columns == frozenset({"mrn", "notes"})
    assert roles.masked_prefixes == ("patient_",) and roles.free_text_columns == frozenset({"notes"})
    assert roles.is_masked("Patient_Age") and not roles.is_masked("room")


def test_unknown_actions_and_missing_roles_are_named(tmp_path: Path) -> None:
    text = GOOD_ROLES.replace('can = ["view_schedule", "approve"]', 'can = ["view_schedule", "fly"]')
    text = text.replace("[roles.viewer]\ncan = [\"view_schedule\"]\n", "")
    assert _problems(_write(tmp_path, text)) == [
        ("roles.leadership.can", "unknown action(s) ['fly']; known: ['approve', 'view_schedule']"),
        ("roles.viewer", "this role is required")]


def test_wrong_types_are_named(tmp_path: Path) -> None:
    text = GOOD_ROLES.replace("clinical = true", 'clinical = "yes"').replace(
        '[roles.viewer]\ncan = ["view_schedule"]', '[roles.viewer]\ncan = "view_schedule"')
    text = text.replace('[roles.governance]\ncan = ["view_schedule"]', "[roles]\ngovernance = 3")
    got = _problems(_write(tmp_path, text))
    assert ("roles.coordinator.clinical", "must be true or false") in got
    assert ("roles.viewer.can", "must be a list of action names") in got
    assert any(k == "roles.governance" and m.startswith("must be a table") for k, m in got), got


def test_missing_actions_table(tmp_path: Path) -> None:
    text = GOOD_ROLES.replace('[actions]\nview_schedule = "view schedules"\napprove = "approve a proposed schedule"\n', "")
    assert ("actions", "must be a table of action = description") in _problems(_write(tmp_path, text))


def test_unreadable_roles_file(tmp_path: Path) -> None:
    path = _write(tmp_path, "[actions\n")
    with pytest.raises(InputError, match="cannot read the roles file") as exc:
        load_roles(path)
    assert exc.value.problems[0].file == str(path)
