"""The rules catalog's problems name the file and key (data/rules/catalog.toml read through engine/config.py)."""
from __future__ import annotations

from itertools import count
from pathlib import Path

import pytest

from engine.errors import InputError
from engine.governance import load_catalog
from engine.governance.catalog import DEFAULT_CATALOG, HARD_RULE_IDS

_files = count()


class _Roles:
    """What load_catalog needs of the roles: their names."""

    def __init__(self, *names: str) -> None:
        self._names = list(names)

    def names(self) -> list[str]:
        return self._names


ROLES = _Roles("coordinator", "leadership")


def _rule(rid: str, kind: str = "hard", mode: str = "enforced", override: str = "none", extra: str = "") -> str:
    return (f'[[rule]]\nid = "{rid}"\nname = "rule {rid}"\nkind = "{kind}"\ndescription = "what {rid} says"\n'
            f'owner = "someone"\nseverity = "high"\nmode = "{mode}"\noverride_role = "{override}"\n{extra}\n')


GOOD = ('catalog_version = "test.1"\n\n'
        + "".join(_rule(h, extra="[rule.params]\novertime_cap_minutes = 90\n" if h == "H3" else "") for h in HARD_RULE_IDS)
        + _rule("FAIR-PRIME", "policy", "monitored", "leadership", "[rule.params]\nmax_gap_points = 5.0\n")
        + _rule("KEEP-DATE", "policy", "advisory", "coordinator")
        + '[[justification]]\ncode = "equipment"\nlabel = "Equipment availability"\n\n'
        + '[[justification]]\ncode = "other"\nrequires_text = true\n')


def _write(tmp_path: Path, text: str | bytes) -> Path:
    p = tmp_path / f"catalog{next(_files)}.toml"  # a new file each time: the loader caches on (path, mtime)
    p.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
    return p


def _in_rule(text: str, rid: str, old: str, new: str) -> str:
    start = text.index(f'id = "{rid}"')
    end = text.find("[[", start)
    block = text[start:end]
    assert old in block, (rid, old)
    return text[:start] + block.replace(old, new, 1) + text[end:]


def _problems(path: Path, roles: _Roles = ROLES) -> list[tuple[str | None, str]]:
    with pytest.raises(InputError) as exc:
        load_catalog(path, roles=roles)
    assert all(p.file == str(path) and p.row is None for p in exc.value.problems)
    return [(p.column, p.problem) for p in exc.value.problems]


def test_the_shipped_catalog_loads() -> None:
    cat = load_catalog(DEFAULT_CATALOG)
    assert cat.enforced_ids()[:10] == list(HARD_RULE_IDS)
    assert cat.source == str(DEFAULT_CATALOG) and cat.catalog_version


def test_a_small_catalog_reads_into_rules(tmp_path: Path) -> None:
    cat = load_catalog(_write(tmp_path, GOOD), roles=ROLES)
    assert list(cat.rules) == [*HARD_RULE_IDS, "FAIR-PRIME", "KEEP-DATE"]
    h3 = cat.rule("H3")
    assert (h3.name, h3.kind, h3.severity, h3.mode, h3.override_role) == ("rule H3", "hard", "high", "enforced", "none")
    assert h3.params == {"overtime_cap_minutes": 90} and cat.rule("H1").params == {}
    assert cat.param("FAIR-PRIME", "max_gap_points") == 5.0
    assert cat.may_override("KEEP-DATE", "coordinator") and not cat.may_override("H1", "coordinator")
    assert cat.justifications["equipment"].label == "Equipment availability"
    assert cat.justifications["other"].label == "other" and cat.justifications["other"].requires_text  # no label: the code
    assert not cat.justifications["equipment"].requires_text
    assert cat.catalog_version == "test.1" and cat.rules_version.startswith("rules-")
    assert load_catalog(cat.source, roles=ROLES) is cat  # cached on (path, mtime, roles)


@pytest.mark.parametrize("rid, old, new, key, message", [
    ("H2", 'name = "rule H2"\n', "", "rule H2.name", "is required (a non-empty text)"),
    ("H2", 'owner = "someone"', 'owner = "  "', "rule H2.owner", "is required (a non-empty text)"),
    ("H2", 'owner = "someone"', "owner = 3", "rule H2.owner", "is required (a non-empty text)"),
    ("H6", 'severity = "high"', 'severity = "meh"', "rule H6.severity", "'meh' must be one of critical, high, medium, low"),
    ("KEEP-DATE", 'kind = "policy"', 'kind = "wish"', "rule KEEP-DATE.kind", "'wish' must be one of hard, policy, gate, metric"),
    ("KEEP-DATE", 'mode = "advisory"', 'mode = "sometimes"', "rule KEEP-DATE.mode",
     "'sometimes' must be one of enforced, monitored, advisory"),
    ("KEEP-DATE", 'override_role = "coordinator"', 'override_role = "janitor"', "rule KEEP-DATE.override_role",
     "'janitor' must be one of none, coordinator, leadership"),
    ("KEEP-DATE", 'owner = "someone"', 'owner = "someone"\ncolour = "red"\nsize = 2', "rule KEEP-DATE",
     "unknown key(s) ['colour', 'size']"),
    ("KEEP-DATE", 'owner = "someone"', 'owner = "someone"\nparams = 3', "rule KEEP-DATE.params", "must be a table"),
    ("H7", 'id = "H7"', 'id = "H1"', "rule H1.id", "duplicated id"),
    ("H4", 'mode = "enforced"', 'mode = "advisory"', "rule H4.mode", "a hard rule must be enforced, got 'advisory'"),
    ("H5", 'override_role = "none"', 'override_role = "coordinator"', "rule H5.override_role",
     'a hard rule cannot be overridden: use "none"'),
    ("H8", 'id = "H8"', 'id = "H8-renamed"', "rule H8", "the hard rule is missing (docs/hard-rules.md)"),
    ("H3", "overtime_cap_minutes = 90", "overtime_cap_minutes = -5", "rule H3.params.overtime_cap_minutes",
     "-5 must be a number of minutes >= 0"),
    ("H3", "overtime_cap_minutes = 90", "overtime_cap_minutes = true", "rule H3.params.overtime_cap_minutes",
     "True must be a number of minutes >= 0"),
    ("H3", "overtime_cap_minutes = 90", 'overtime_cap_minutes = "90"', "rule H3.params.overtime_cap_minutes",
     "'90' must be a number of minutes >= 0"),
    ("FAIR-PRIME", "max_gap_points = 5.0", "max_gap_points = 150", "rule FAIR-PRIME.params.max_gap_points",
     "150 must be within 0..100"),
])
def test_each_rule_problem_names_the_key(tmp_path: Path, rid: str, old: str, new: str, key: str, message: str) -> None:
    assert (key, message) in _problems(_write(tmp_path, _in_rule(GOOD, rid, old, new)))


def test_a_rule_without_an_id_is_named_by_its_place(tmp_path: Path) -> None:
    text = _in_rule(GOOD, "KEEP-DATE", 'id = "KEEP-DATE"\n', "")
    text = text.replace('override_role = "coordinator"', 'override_role = "janitor"')
    assert _problems(_write(tmp_path, text)) == [
        ("rule[11].id", "is required (a non-empty text)"),
        ("rule[11].override_role", "'janitor' must be one of none, coordinator, leadership")]


def test_override_roles_are_those_of_the_roles_given(tmp_path: Path) -> None:
    path = _write(tmp_path, _in_rule(GOOD, "KEEP-DATE", 'override_role = "coordinator"', 'override_role = "janitor"'))
    assert ("rule KEEP-DATE.override_role", "'janitor' must be one of none, coordinator, leadership") in _problems(path)
    assert load_catalog(path, roles=_Roles("coordinator", "leadership", "janitor")).rule("KEEP-DATE").override_role == "janitor"


@pytest.mark.parametrize("old, new, key, message", [
    ('[[justification]]\ncode = "equipment"\n', "[[justification]]\n", "justification[0].code", "is required"),
    ('[[justification]]\ncode = "equipment"\n', "[[justification]]\ncode = 4\n", "justification[0].code", "is required"),
    ("requires_text = true", 'requires_text = "yes"', "justification other.requires_text", "must be true or false"),
])
def test_each_justification_problem_names_the_key(tmp_path: Path, old: str, new: str, key: str, message: str) -> None:
    assert old in GOOD
    assert _problems(_write(tmp_path, GOOD.replace(old, new))) == [(key, message)]


def test_a_catalog_needs_rules_and_justifications(tmp_path: Path) -> None:
    text = 'catalog_version = "x"\n'
    assert _problems(_write(tmp_path, text)) == [
        ("rule", "the catalog needs [[rule]] entries"), ("justification", "the catalog needs [[justification]] codes")]
    rules_only = GOOD[:GOOD.index("[[justification]]")]
    assert _problems(_write(tmp_path, rules_only)) == [("justification", "the catalog needs [[justification]] codes")]


def test_entries_that_are_not_tables(tmp_path: Path) -> None:
    text = GOOD[GOOD.index("[[justification]]"):].replace("[[justification]]", "[[justificationx]]")
    got = _problems(_write(tmp_path, 'rule = [1]\njustification = ["other"]\n' + text))
    assert any(k == "rule[0]" and m.startswith("must be a table") for k, m in got), got
    assert any(k == "justification[0]" and m.startswith("must be a table") for k, m in got), got
    assert [k for k, m in got if m.startswith("the hard rule is missing")] == [f"rule {h}" for h in HARD_RULE_IDS]


def test_all_problems_of_a_file_come_in_one_error(tmp_path: Path) -> None:
    text = _in_rule(GOOD, "H7", 'id = "H7"', 'id = "H1"')  # duplicated, and H7 missing
    text = _in_rule(text, "H4", 'mode = "enforced"', 'mode = "advisory"')
    text = _in_rule(text, "H3", "overtime_cap_minutes = 90", "overtime_cap_minutes = -1")
    text = _in_rule(text, "KEEP-DATE", 'owner = "someone"', 'owner = ""\nsize = 2')
    text = text.replace("requires_text = true", "requires_text = 1")
    assert sorted(_problems(_write(tmp_path, text))) == sorted([
        ("rule H4.mode", "a hard rule must be enforced, got 'advisory'"),
        ("rule H3.params.overtime_cap_minutes", "-1 must be a number of minutes >= 0"),
        ("rule KEEP-DATE.owner", "is required (a non-empty text)"),
        ("justification other.requires_text", "must be true or false"),
        ("rule H1.id", "duplicated id"),
        ("rule KEEP-DATE", "unknown key(s) ['size']"),
        ("rule H7", "the hard rule is missing (docs/hard-rules.md)")])


@pytest.mark.parametrize("content", ["[[rule]\nid=", b"\xff\xfe not text"])
def test_an_unreadable_catalog_names_the_file(tmp_path: Path, content: str | bytes) -> None:
    path = _write(tmp_path, content)
    with pytest.raises(InputError, match="cannot read the rules catalog") as exc:
        load_catalog(path, roles=ROLES)
    assert [p.file for p in exc.value.problems] == [str(path)]


def test_a_missing_catalog_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "absent.toml"
    with pytest.raises(InputError, match="cannot read the rules catalog") as exc:
        load_catalog(path, roles=ROLES)
    assert [p.file for p in exc.value.problems] == [str(path)]
