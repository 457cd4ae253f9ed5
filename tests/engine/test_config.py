"""The one configuration adapter: TOML -> pydantic, errors naming the file and key."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import field_validator

from engine import config
from engine.errors import InputError
from engine.fairness.guardrails import load_guardrails


def _policy(tmp_path: Path, text: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    p = tmp_path / "guardrails.toml"
    p.write_text(text)
    monkeypatch.setenv("GUARDRAILS_FILE", str(p))
    return p


def test_guardrails_file_read_through_the_model(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _policy(tmp_path, 'forbidden_attributes = ["sex", " ward "]\nuses = "  a  "\n', monkeypatch)
    g = load_guardrails()
    assert g.forbidden == frozenset({"sex", "ward"}) and g.uses == "a" and g.audit_only == ()


@pytest.mark.parametrize("text, key, words", [
    ('forbidden_attributes = "sex"\n', "forbidden_attributes", "list of column names"),
    ('audit_only = ["x"]\n', "forbidden_attributes", "is required"),
    ('forbidden_attributes = []\nforbiden = 1\n', "forbiden", "unknown key"),
    ('forbidden_attributes = []\nuses = 3\n', "uses", "must be a string, got 3"),
    ('forbidden_attributes = [\n', None, "not valid TOML"),
])
def test_bad_guardrails_name_file_and_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str, key: str | None,
                                          words: str) -> None:
    p = _policy(tmp_path, text, monkeypatch)
    with pytest.raises(InputError) as info:
        load_guardrails()
    probs = info.value.problems
    assert probs[0].file == str(p) and probs[0].column == key and words in probs[0].problem


# --------------------------------------------------------------------------- sections (config.Table)

class _Entry(config.Table):
    not_a_table = "each entry needs a name"
    name: str


class _Section(config.Table):
    unknown_key = "unknown key (known: {sorted})"
    size: int = 1
    entries: list[_Entry] = []
    pairs: dict[str, Any] = {}

    @field_validator("pairs", mode="before")
    @classmethod
    def _pairs(cls, v: Any) -> dict[str, Any]:
        errs = config.Errors()
        for k, x in v.items():
            if x is None:
                errs.add((k,), "has no value")
        errs.raise_if_any()
        return v


def _problems(data: Any) -> list[tuple[str | None, str]]:
    with pytest.raises(InputError) as info:
        config.validate(_Section, data, "f.yaml")
    assert {p.file for p in info.value.problems} == {"f.yaml"}
    return [(p.column, p.problem) for p in info.value.problems]


def test_a_table_reports_unknown_keys_with_the_problems_of_the_known_ones() -> None:
    assert _problems({"sise": 2, "size": [2], "pairs": {"a": None, "b": 1}}) == [
        ("sise", "unknown key (known: entries, pairs, size)"),
        ("size", "must be an integer, got [2]"),
        ("pairs.a", "has no value")]


def test_list_entries_read_as_indexes_and_keep_their_own_words() -> None:
    assert _problems({"entries": [{"name": "a"}, "b", {"name": "c", "x": 1}, {}]}) == [
        ("entries[1]", "each entry needs a name"), ("entries[2].x", "unknown key"), ("entries[3].name", "is required")]


def test_an_empty_table_is_the_defaults() -> None:
    assert config.validate(_Section, {"entries": [{"name": "a"}]}, "f").size == 1
    assert config.validate(_Section, None, "f").entries == []
