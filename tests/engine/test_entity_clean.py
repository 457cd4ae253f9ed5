"""Entity clean-up (the mapping's ``clean:`` section): surgeons, procedure codes and service lines
merged however the export spells them; ambiguous names never merged; the import report lists both."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from engine.errors import InputError
from engine.hospital import load_hospital
from engine.importer import import_hospital, load_mapping, parse_mapping
from engine.importer.clean import CleanRules, CodeRules, ServiceRules, SurgeonRules, clean_cases, strip_modifiers
from engine.onboard import suggest_mapping
from tests.foreign_exports import make_export, write_export

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "data" / "samples" / "or_utilization_export.csv"
MAPPING = ROOT / "data" / "mappings" / "or_utilization_export.yaml"
PYTHON = ROOT / ".venv" / "bin" / "python"
if not PYTHON.exists():
    PYTHON = Path(sys.executable)

SURGEONS = CleanRules(surgeons=SurgeonRules(normalise=True))


def _clean(rules: CleanRules, **cols: list) -> tuple[pd.DataFrame, list, list]:
    return clean_cases(pd.DataFrame(cols), rules)


def _texts(items: list) -> list[str]:
    return [i.text for i in items]


# --------------------------------------------------------------------------- surgeons


def test_spellings_of_one_surgeon_become_one_last_first_id() -> None:
    out, merged, not_merged = _clean(SURGEONS, surgeon_id=["Smith, John", "SMITH JOHN", "Dr. John Smith",
                                                           "Smith, John A.", "SMITH JOHN", "Garcia, María",
                                                           "unknown", None])
    assert list(out["surgeon_id"][:6]) == ["S-smith-john"] * 5 + ["S-garcia-maria"]
    assert out["surgeon_id"][6] == "unknown" and pd.isna(out["surgeon_id"][7])
    assert not_merged == []
    assert _texts(merged) == ["surgeon 'SMITH JOHN', 'Dr. John Smith', 'Smith, John' and 'Smith, John A.' "
                              "\u2192 S-smith-john (5 cases)"]  # a name alone becoming its id is no merge


def test_an_explicit_id_in_the_name_wins_for_every_spelling() -> None:
    out, merged, _ = _clean(SURGEONS, surgeon_id=["Smith, John", "SMITH JOHN", "J. Smith (10234)", "10871",
                                                  "Garcia, Maria (10871)", "GARCIA MARIA"])
    assert list(out["surgeon_id"]) == ["10234", "10234", "10234", "10871", "10871", "10871"]
    assert "surgeon 'J. Smith (10234)', 'SMITH JOHN' and 'Smith, John' \u2192 10234 (3 cases)" in _texts(merged)


def test_ids_are_kept_as_they_are() -> None:
    out, merged, _ = _clean(SURGEONS, surgeon_id=["S-smith-john", "10234", "JS01", "Smith, John (Ortho)"])
    assert list(out["surgeon_id"]) == ["S-smith-john", "10234", "JS01", "S-smith-john"]  # '(Ortho)' is no id
    assert _texts(merged) == ["surgeon 'S-smith-john' and 'Smith, John (Ortho)' \u2192 S-smith-john (2 cases)"]


def test_word_order_follows_the_unambiguous_spellings() -> None:
    # 'Chen Wei' in mixed case would read First Last; 'Chen, Wei' says Chen is the last name.
    out, _, _ = _clean(SURGEONS, surgeon_id=["Chen, Wei", "Chen Wei", "Anna Berg", "NGUYEN THU"])
    assert list(out["surgeon_id"]) == ["S-chen-wei", "S-chen-wei", "S-berg-anna", "S-nguyen-thu"]


def test_aliases_apply_before_normalising() -> None:
    rules = CleanRules(surgeons=SurgeonRules(normalise=True, aliases={"jack smith": "Smith, John"}))
    out, _, _ = _clean(rules, surgeon_id=["Jack Smith", "SMITH JOHN"])
    assert list(out["surgeon_id"]) == ["S-smith-john", "S-smith-john"]
    plain = CleanRules(surgeons=SurgeonRules(aliases={"dr who": "10999"}))
    out, _, _ = _clean(plain, surgeon_id=["DR WHO", "10999", "Smith, John"])
    assert list(out["surgeon_id"]) == ["10999", "10999", "Smith, John"]  # no normalise: only aliases


# --------------------------------------------------------------------------- the ambiguity rule


def test_an_initial_that_fits_two_surgeons_is_not_merged_and_is_listed() -> None:
    out, merged, not_merged = _clean(SURGEONS, surgeon_id=["Smith, John", "Smith, James", "J. Smith", "J. Smith",
                                                           "J. Smith (10234)", "Smith", "M. Garcia",
                                                           "Garcia, Maria"])
    assert list(out["surgeon_id"]) == ["S-smith-john", "S-smith-james", "J. Smith", "J. Smith", "10234", "Smith",
                                       "S-garcia-maria", "S-garcia-maria"]
    by_value = {n.value: n for n in not_merged}
    assert set(by_value) == {"J. Smith", "J. Smith (10234)", "Smith"}
    assert by_value["J. Smith"].candidates == ("S-smith-james", "S-smith-john")
    assert by_value["J. Smith"].text == ("surgeon 'J. Smith' not merged: ambiguous (could be S-smith-james or "
                                         "S-smith-john); kept as 'J. Smith' (2 cases)")
    assert by_value["J. Smith (10234)"].kept_as == "10234"  # its explicit id stays, joined to neither
    assert _texts(merged) == ["surgeon 'Garcia, Maria' and 'M. Garcia' \u2192 S-garcia-maria (2 cases)"]


def test_two_ids_under_one_name_leave_the_name_without_an_id_alone() -> None:
    out, _, not_merged = _clean(SURGEONS, surgeon_id=["Smith, John (10234)", "Smith, John (10999)", "SMITH JOHN"])
    assert list(out["surgeon_id"]) == ["10234", "10999", "SMITH JOHN"]
    assert [(n.value, n.candidates) for n in not_merged] == [("SMITH JOHN", ("10234", "10999"))]


def test_a_name_readable_both_ways_when_both_surgeons_exist_is_not_merged() -> None:
    out, _, not_merged = _clean(SURGEONS, surgeon_id=["Thomas, James", "James, Thomas", "James Thomas"])
    assert out["surgeon_id"][2] == "James Thomas"
    assert not_merged[0].candidates == ("S-james-thomas", "S-thomas-james")


# --------------------------------------------------------------------------- codes and services


def test_procedure_codes_lose_their_modifiers() -> None:
    rules = CleanRules(procedure_codes=CodeRules(strip_modifiers=True))
    out, merged, _ = _clean(rules, procedure_code=["27447-RT", "27447 59", "27447", "29881-59-LT", "5-820.00",
                                                   "47562", None])
    assert list(out["procedure_code"][:6]) == ["27447", "27447", "27447", "29881", "5-820.00", "47562"]
    assert _texts(merged) == ["procedure code '27447', '27447 59' and '27447-RT' \u2192 27447 (3 cases)",
                              "procedure code '29881-59-LT' \u2192 29881 (1 case)"]
    assert strip_modifiers("G0105") == "G0105" and strip_modifiers("27447:RT,LT") == "27447"


def test_service_spellings_become_one_service_line() -> None:
    rules = CleanRules(service_lines=ServiceRules(fold_case=True, aliases={"ortho": "Orthopedics",
                                                                           "orthopaedics": "Orthopedics"}))
    out, merged, _ = _clean(rules, service_line=["Ortho", "Orthopaedics", "ORTHOPEDICS", "urology", "Urology",
                                                 "Urology", "GEN  SURG", "gen surg"])
    assert list(out["service_line"]) == ["Orthopedics"] * 3 + ["Urology"] * 3 + ["GEN  SURG", "GEN  SURG"]
    assert "service line 'ORTHOPEDICS', 'Ortho' and 'Orthopaedics' \u2192 Orthopedics (3 cases)" in _texts(merged)
    # A name from settings.service_lines is the preferred spelling.
    out, _, _ = clean_cases(pd.DataFrame({"service_line": ["GEN SURG", "gen surg"]}),
                            CleanRules(service_lines=ServiceRules(fold_case=True)), ["Gen Surg"])
    assert list(out["service_line"]) == ["Gen Surg", "Gen Surg"]


# --------------------------------------------------------------------------- the mapping's clean: section


def _base() -> dict:
    return yaml.safe_load(MAPPING.read_text(encoding="utf-8"))


@pytest.mark.parametrize("clean,key", [
    ({"surgeon": {"normalise": True}}, "clean.surgeon"),
    ({"surgeons": {"normalize": True}}, "clean.surgeons.normalize"),
    ({"surgeons": {"normalise": "yes"}}, "clean.surgeons.normalise"),
    ({"procedure_codes": {"strip_modifiers": 1}}, "clean.procedure_codes.strip_modifiers"),
    ({"service_lines": {"aliases": ["Ortho"]}}, "clean.service_lines.aliases"),
    ({"service_lines": {"aliases": {"Ortho": "Orthopedics", "ORTHO": "Ortho"}}}, "clean.service_lines.aliases.ORTHO"),
    ({"surgeons": {"id_prefix": "S "}}, "clean.surgeons.id_prefix"),
    ("yes", "clean"),
])
def test_a_bad_clean_key_is_named(clean, key: str) -> None:
    with pytest.raises(InputError) as err:
        parse_mapping({**_base(), "clean": clean}, "map.yaml")
    assert key in [p.column for p in err.value.problems], err.value.describe()


def test_cli_bad_clean_key_exits_2_naming_the_key(tmp_path: Path) -> None:
    mapping = tmp_path / "map.yaml"
    mapping.write_text(yaml.safe_dump({**_base(), "clean": {"surgeons": {"normalize": True}}}), encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([str(PYTHON), "-m", "engine", "import", "--source", str(SAMPLE), "--mapping", str(mapping),
                           "--out", str(tmp_path / "out")], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert str(mapping) in proc.stderr and "clean.surgeons.normalize" in proc.stderr
    assert not (tmp_path / "out").exists()


# --------------------------------------------------------------------------- a full import


def _messy_epic(tmp_path: Path) -> tuple[Path, pd.DataFrame]:
    """A foreign ('epic') export whose surgeons, codes and services are written several ways."""
    df = make_export("epic", weeks=4)
    smith = df["Primary Surgeon"] == "Smith, John (10234)"
    for i, idx in enumerate(df.index[smith]):
        df.loc[idx, "Primary Surgeon"] = ["SMITH JOHN", "Smith, John", "J. Smith (10234)", "Dr. John Smith",
                                          "Smith, John (10234)"][i % 5]
    garcia = df.index[df["Primary Surgeon"] == "Garcia, Maria (10871)"]
    df.loc[garcia[::2], "Primary Surgeon"] = "GARCIA MARIA"
    knee = df.index[df["CPT"] == "27447"]
    df.loc[knee[::3], "CPT"] = "27447-RT"
    df.loc[knee[1::3], "CPT"] = "27447 59"
    ortho = df.index[df["Service"] == "ORTHO"]
    for i, idx in enumerate(ortho):
        df.loc[idx, "Service"] = ["Ortho", "Orthopaedics", "ORTHOPEDICS", "ORTHO"][i % 4]
    return write_export(df, tmp_path / "messy.csv"), df


def _messy_mapping(src: Path, tmp_path: Path, clean: dict | None) -> Path:
    """The suggested mapping, with surgeon names read as names and the spellings left to clean:."""
    data = yaml.safe_load(suggest_mapping(src).text)
    data["columns"]["surgeon_id"] = {"column": "Primary Surgeon", "if_missing": "unknown"}
    data["columns"]["service_line"] = "Service"
    data.pop("value_maps", None)
    if clean is not None:
        data["clean"] = clean
    path = tmp_path / ("clean.yaml" if clean else "plain.yaml")
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return path


CLEAN = {"surgeons": {"normalise": True},
         "procedure_codes": {"strip_modifiers": True},
         "service_lines": {"fold_case": True, "aliases": {"Ortho": "Orthopedics", "Orthopaedics": "Orthopedics",
                                                           "GEN SURG": "General Surgery", "GYN": "Gynecology",
                                                           "UROLOGY": "Urology"}}}


def test_a_messy_foreign_export_imports_with_merged_ids_that_validate(tmp_path: Path) -> None:
    src, df = _messy_epic(tmp_path)
    result = import_hospital(src, _messy_mapping(src, tmp_path, CLEAN), tmp_path / "out")
    assert result.rows_written == len(df) and result.rows_quarantined == 0 and len(result.quarantine) == 0
    loaded = load_hospital(tmp_path / "out")
    assert loaded.report.n_quarantined == 0
    cases = loaded.hospital.cases
    assert set(cases["surgeon_id"]) == {"10234", "10871", "11502", "11733", "12044", "12390"}
    assert set(loaded.hospital.surgeons["surgeon_id"]) == set(cases["surgeon_id"])
    assert "27447" in set(cases["procedure_code"]) and not cases["procedure_code"].str.contains("[- ]").any()
    assert set(cases["service_line"]) == {"Orthopedics", "General Surgery", "Urology", "Gynecology"}
    smith = int(df["Primary Surgeon"].str.contains("Smith|SMITH").sum())
    texts = _texts(result.merged)
    into = {m.into: m for m in result.merged if m.kind == "surgeon"}
    assert set(into["10234"].spellings) == {"SMITH JOHN", "Smith, John", "J. Smith (10234)", "Dr. John Smith",
                                            "Smith, John (10234)"}
    assert into["10234"].cases == smith and into["10234"].text.endswith(f"\u2192 10234 ({smith} cases)")
    assert any(t.startswith("service line ") and "\u2192 Orthopedics" in t and "ORTHOPEDICS" in t for t in texts)
    assert any(t.startswith("procedure code ") and "'27447-RT'" in t and t.split(" \u2192 ")[1].startswith("27447 (")
               for t in texts)
    assert result.not_merged == []
    summary = json.loads(json.dumps(result.summary()))  # the CLI's --json payload
    assert {m["into"] for m in summary["clean"]["merged"] if m["kind"] == "surgeon"} == {"10234", "10871"}
    assert summary["clean"]["not_merged"] == []
    assert "merged: surgeon " in result.describe()


def test_without_clean_the_same_export_keeps_every_spelling(tmp_path: Path) -> None:
    src, _ = _messy_epic(tmp_path)
    result = import_hospital(src, _messy_mapping(src, tmp_path, None), tmp_path / "out")
    cases = load_hospital(tmp_path / "out").hospital.cases
    assert {"SMITH JOHN", "Smith, John", "Dr. John Smith"} <= set(cases["surgeon_id"])
    assert result.merged == [] and result.summary()["clean"] == {"merged": [], "not_merged": []}


def test_ambiguous_names_in_an_import_are_listed_not_merged(tmp_path: Path) -> None:
    src, df = _messy_epic(tmp_path)
    df = df.copy()
    chen = df.index[df["Primary Surgeon"] == "Chen, Wei (11502)"]
    df.loc[chen[::2], "Primary Surgeon"] = "Smith, James"  # a second Smith with first initial J
    df.loc[chen[1::4], "Primary Surgeon"] = "J. Smith"
    src = write_export(df, tmp_path / "ambiguous.csv")
    result = import_hospital(src, _messy_mapping(src, tmp_path, CLEAN), tmp_path / "out")
    assert result.rows_quarantined == 0
    # 'J. Smith (10234)' is no guess: its id is John Smith's. The bare 'J. Smith' could be either.
    assert [(n.value, n.candidates) for n in result.not_merged] == [("J. Smith", ("10234", "S-smith-james"))]
    cases = load_hospital(tmp_path / "out").hospital.cases
    assert "J. Smith" in set(cases["surgeon_id"]) and "S-smith-james" in set(cases["surgeon_id"])
    assert "not merged: ambiguous" in result.describe()
    assert [n["value"] for n in result.summary()["clean"]["not_merged"]] == ["J. Smith"]
    assert "10234" in set(cases["surgeon_id"])


def test_cli_import_lists_merges_in_json_and_ambiguous_names_on_stderr(tmp_path: Path) -> None:
    src, df = _messy_epic(tmp_path)
    chen = df.index[df["Primary Surgeon"] == "Chen, Wei (11502)"]
    df.loc[chen[::2], "Primary Surgeon"] = "Smith, James"
    df.loc[chen[1::4], "Primary Surgeon"] = "J. Smith"
    src = write_export(df, tmp_path / "ambiguous.csv")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([str(PYTHON), "-m", "engine", "import", "--source", str(src), "--mapping",
                           str(_messy_mapping(src, tmp_path, CLEAN)), "--out", str(tmp_path / "out"),
                           "--json", str(tmp_path / "result.json")], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr
    assert "surgeon 'J. Smith' not merged: ambiguous" in proc.stderr
    clean = json.loads((tmp_path / "result.json").read_text())["clean"]
    assert {m["into"] for m in clean["merged"] if m["kind"] == "surgeon"} == {"10234", "10871"}
    assert any(m["kind"] == "procedure code" and m["into"] == "27447" for m in clean["merged"])
    assert [n["value"] for n in clean["not_merged"]] == ["J. Smith"]


# --------------------------------------------------------------------------- suggest-mapping


def test_suggested_mapping_has_a_commented_clean_section_that_loads_uncommented(tmp_path: Path) -> None:
    src, _ = _messy_epic(tmp_path)
    text = suggest_mapping(src).text
    assert "# clean:" in text and "#     normalise: true" in text and "'27447-RT'" in text
    assert "map surgeon_id to the surgeon column itself" not in text  # mostly names: read as names already
    tidy = suggest_mapping(write_export(make_export("epic", weeks=2), tmp_path / "tidy.csv")).text
    assert "map surgeon_id to the surgeon column itself" in tidy  # every name has its id: the regex is kept
    load_mapping(_write(tmp_path / "as_is.yaml", text))  # commented: loads as it is
    start = text.index("# clean:")
    block = text[start:text.index("\n\n", start)]
    uncommented = text.replace(block, "\n".join(line[2:] for line in block.splitlines()))
    mapping = load_mapping(_write(tmp_path / "uncommented.yaml", uncommented))
    assert mapping.clean is not None and mapping.clean.surgeons.normalise
    assert mapping.clean.procedure_codes.strip_modifiers and mapping.clean.service_lines.fold_case


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path
