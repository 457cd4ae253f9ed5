"""The one configuration adapter: TOML -> pydantic, errors naming the file and key."""
from __future__ import annotations

from pathlib import Path

import pytest

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
