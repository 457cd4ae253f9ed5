"""The importer: foreign export + YAML mapping -> validated contract hospital folder."""
from __future__ import annotations

import csv
import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from engine.errors import InputError
from tests.nested import with_key, without_key
from engine.hospital import load_hospital
from engine.importer import (
    apply_mapping,
    import_hospital,
    load_mapping,
    parse_mapping,
    read_source,
)

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "data" / "samples" / "or_utilization_export.csv"
MAPPING = ROOT / "data" / "mappings" / "or_utilization_export.yaml"
PYTHON = ROOT / ".venv" / "bin" / "python"
if not PYTHON.exists():  # CI may run from another interpreter
    PYTHON = Path(sys.executable)

# The worked mapping's maps, restated independently to check the import against the source.
SERVICE = {"ORTHO": "Orthopedics", "GEN SURG": "General Surgery", "UROLOGY": "Urology",
           "GYN": "Gynecology", "ENT": "Otolaryngology", "VASCULAR": "Vascular Surgery"}
STATUS = {"completed": "completed", "canceled": "cancelled", "scheduled": "booked"}


def _source_rows() -> list[dict[str, str]]:
    with SAMPLE.open(newline="", encoding="utf-8") as fh:
        return [{k: v.strip() for k, v in r.items()} for r in csv.DictReader(fh)]


def _raw_mapping() -> dict:
    return yaml.safe_load(MAPPING.read_text(encoding="utf-8"))


def _write_mapping(tmp_path: Path, data: dict, name: str = "map.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def _parse_clock(date_text: str, time_text: str) -> dt.datetime:
    day = dt.datetime.strptime(date_text, "%m/%d/%Y")
    for fmt in ("%H:%M", "%I:%M %p"):
        try:
            t = dt.datetime.strptime(time_text, fmt)
            return day.replace(hour=t.hour, minute=t.minute)
        except ValueError:
            continue
    raise ValueError(time_text)


@pytest.fixture(scope="module")
def imported(tmp_path_factory: pytest.TempPathFactory):
    out = tmp_path_factory.mktemp("imp") / "hospital"
    result = import_hospital(SAMPLE, MAPPING, out)
    cases = pd.read_csv(out / "cases.csv", dtype=str, keep_default_na=False)
    return result, out, cases


# --------------------------------------------------------------------------- round trip


def test_round_trip_validates_and_counts_match(imported) -> None:
    result, out, cases = imported
    source = _source_rows()
    assert 150 <= len(source) <= 300
    assert result.rows_read == len(source) == result.rows_written == len(cases)
    assert result.rows_quarantined == 0 and result.problems == [] and result.warnings == []
    assert sorted(p.name for p in out.iterdir()) == ["blocks.csv", "cases.csv", "rooms.csv", "settings.toml",
                                                    "staffing.csv", "surgeons.csv"]  # blocks, staffing inferred
    loaded = load_hospital(out)
    assert len(loaded.hospital.cases) == len(source)
    assert loaded.report.n_quarantined == 0
    assert loaded.hospital.settings.turnover_minutes == 30
    assert loaded.hospital.settings.prime_time == "07:30-15:30"
    summary = result.summary()
    assert summary["rows_written"] == len(source) and summary["rows_quarantined"] == 0


def test_round_trip_durations_match_source(imported) -> None:
    _, _, cases = imported
    by_id = cases.set_index("case_id")
    checked = 0
    for row in _source_rows():
        if not row["Wheels In"]:
            continue
        start = _parse_clock(row["Date"], row["Wheels In"])
        end = _parse_clock(row["Date"], row["Wheels Out"])
        if end < start:  # the export writes times after midnight on the same date
            end += dt.timedelta(days=1)
        got = by_id.loc[row["Encounter ID"]]
        minutes = (pd.Timestamp(got["wheels_out"]) - pd.Timestamp(got["wheels_in"])).total_seconds() / 60
        assert minutes == (end - start).total_seconds() / 60, row["Encounter ID"]
        checked += 1
    assert checked > 100
    # The case that runs past midnight: 22:48 -> 00:37 the next day.
    late = by_id.loc[cases.loc[cases["wheels_in"] == "2027-01-07T22:48", "case_id"].item()]
    assert late["wheels_out"] == "2027-01-08T00:37"
    assert late["procedure_end"] == "2027-01-08T00:21"
    assert late["procedure_start"] == "2027-01-07T23:10"
    assert late["urgency"] == "emergent"


def test_round_trip_maps_services_statuses_and_fields(imported) -> None:
    _, _, cases = imported
    by_id = cases.set_index("case_id")
    for row in _source_rows():
        got = by_id.loc[row["Encounter ID"]]
        assert got["service_line"] == SERVICE[row["Service"].upper()]
        assert got["status"] == STATUS[row["Case Status"].lower()]
        assert got["surgery_date"] == dt.datetime.strptime(row["Date"], "%m/%d/%Y").strftime("%Y-%m-%d")
        assert got["surgeon_id"] == row["Surgeon"].rsplit("(", 1)[1].rstrip(")")
        assert got["room_id"] == row["OR Suite"]
        assert got["procedure_code"] == row["CPT Code"]
        assert float(got["booked_minutes"]) == float(row["Booked Time (min)"])
        assert got["site"] == "Main"
        expected_urgency = {"": "elective", "N": "elective", "Y": "urgent", "Emergent": "emergent"}
        assert got["urgency"] == expected_urgency[row["Add On"]]
        asa = row["ASA"].rstrip("E")
        assert got["asa_class"] == (f"{float(asa)}" if asa else "")
        assert got["cancellation_reason"] == row["Cancel Reason"]
    assert "Anesthesiologist" not in cases.columns and "anesthesiologist" not in cases.columns
    assert {"surgeon_name", "patient_class", "asa_emergency"} <= set(cases.columns)
    assert set(cases["status"]) == {"completed", "cancelled", "booked"}
    booked = cases[cases["status"] == "booked"]
    assert (booked["wheels_in"] == "").all() and (booked["scheduled_start"] != "").all()
    # Blank optional fields stay blank, not "nan".
    assert "nan" not in set(cases["anesthesia_type"]) and (cases["anesthesia_type"] == "").any()


def test_round_trip_derives_rooms_and_surgeons(imported) -> None:
    _, out, cases = imported
    rooms = pd.read_csv(out / "rooms.csv", dtype=str).set_index("room_id")
    assert set(rooms.index) == set(cases["room_id"])
    assert rooms.loc["OR 01", "capabilities"] == "general;robot"
    assert rooms.loc["OR 04", "capabilities"] == "general"
    assert rooms.loc["HYBRID 1", "capabilities"] == "general;fluoro;hybrid"
    assert rooms.loc["HYBRID 1", "close_time"] == "19:00"
    assert rooms.loc["OR 04", "open_time"] == "07:30" and rooms.loc["OR 04", "site"] == "Main"
    surgeons = pd.read_csv(out / "surgeons.csv", dtype=str).set_index("surgeon_id")
    assert set(surgeons.index) == set(cases["surgeon_id"])
    assert surgeons.loc["10234", "service_line"] == "Orthopedics"


# --------------------------------------------------------------------------- other formats


def _typed_source() -> pd.DataFrame:
    """The sample as a typed table: real dates, times and numbers, as Excel/Parquet hold them."""
    df = pd.read_csv(SAMPLE, dtype=str, keep_default_na=False)
    df = df.apply(lambda s: s.str.strip())
    typed = df.astype(object)
    typed["Encounter ID"] = df["Encounter ID"].astype(int)
    typed["Booked Time (min)"] = df["Booked Time (min)"].astype(int)
    typed["Date"] = [dt.datetime.strptime(v, "%m/%d/%Y") for v in df["Date"]]
    for col in ("OR Schedule", "Wheels In", "Start Time", "End Time", "Wheels Out"):
        typed[col] = [_parse_clock("01/01/2000", v).time() if v else None for v in df[col]]
    return typed.replace("", None)


def test_parquet_and_excel_give_the_same_cases(imported, tmp_path: Path) -> None:
    _, _, expected = imported
    text = pd.read_csv(SAMPLE, dtype=str, keep_default_na=False)
    typed = _typed_source()

    # Parquet, all text as a CSV-to-Parquet conversion writes it.
    text.to_parquet(tmp_path / "export.parquet", index=False)
    # Parquet with typed columns (dates, ints, times of day).
    typed_pq = typed.copy()
    typed_pq["Date"] = pd.to_datetime(typed_pq["Date"]).dt.date
    typed_pq.to_parquet(tmp_path / "typed.parquet", index=False)
    # Excel with real date and time cells and a title row above the header.
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    ws.title = "Cases"
    wb.create_sheet("Notes")
    for row in [list(typed.columns)] + typed.values.tolist():
        ws.append(row)
    wb.save(tmp_path / "export.xlsx")

    for name in ("export.parquet", "typed.parquet", "export.xlsx"):
        out = tmp_path / f"out_{name.replace('.', '_')}"
        result = import_hospital(tmp_path / name, MAPPING, out)
        got = pd.read_csv(out / "cases.csv", dtype=str, keep_default_na=False)
        pd.testing.assert_frame_equal(got, expected, obj=name)
        assert result.rows_quarantined == 0, name


def test_excel_sheet_by_name_and_header_row(tmp_path: Path) -> None:
    from openpyxl import Workbook

    wb = Workbook()
    wb.active.title = "Summary"
    ws = wb.create_sheet("Cases")
    ws.append(["OR utilization report, January 2027"])
    ws.append(["Encounter ID", "Date", "Wheels In"])
    ws.append([1, dt.datetime(2027, 1, 4), dt.time(7, 42)])
    ws.append([2, 46392, 0.5])  # Excel serial numbers in cells without a date format
    wb.save(tmp_path / "x.xlsx")
    mapping = parse_mapping({
        "source": {"sheet": "Cases", "header_row": 2},
        "columns": {"case_id": "Encounter ID", "surgery_date": "Date",
                    "wheels_in": {"date": "Date", "time": "Wheels In"}},
        "constants": {"status": "completed", "service_line": "X", "procedure_code": "1",
                      "surgeon_id": "unknown"},
        "settings": {"turnover_minutes": 30, "pacu_minutes": 60, "prime_time": "07:30-15:30"},
    })
    df = read_source(tmp_path / "x.xlsx", mapping)
    assert list(df.columns) == ["Encounter ID", "Date", "Wheels In"]
    cases, problems = apply_mapping(df, mapping, "x.xlsx")
    assert problems == []
    assert cases["case_id"].tolist() == ["1", "2"]
    assert cases["surgery_date"].tolist() == ["2027-01-04", "2027-01-05"]
    assert cases["wheels_in"].tolist() == ["2027-01-04T07:42", "2027-01-05T12:00"]


# --------------------------------------------------------------------------- mapping features


def _small_mapping(**overrides) -> dict:
    base = {
        "columns": {
            "case_id": "ID",
            "surgery_date": "Date",
            "status": {"column": "Status", "map": {"Done": "completed", "Off": "cancelled"},
                       "unmapped": "error"},
            "service_line": {"column": "Svc", "map": {"ORTHO": "Orthopedics"}},
            "procedure_code": {"derive": "concat", "columns": ["Proc", "Mod"], "sep": "-"},
            "surgeon_id": {"derive": "split", "column": "Doc", "sep": "/", "index": -1,
                           "if_missing": "unknown"},
            "wheels_in": {"date": "Date", "time": "In"},
            "wheels_out": {"date": "Date", "time": "Out", "roll_over_midnight": True},
            "booked_minutes": {"column": "Booked", "optional": True,
                               "if_missing": {"derive": "minutes_between", "start": "wheels_in",
                                              "end": "wheels_out"}},
        },
        "constants": {"urgency": "elective", "site": "Main"},
        "formats": {"date": ["%d.%m.%Y"], "time": ["%H%M", "%H:%M"]},
        "settings": {"turnover_minutes": 30, "pacu_minutes": 60, "prime_time": "07:30-15:30"},
    }
    base.update(overrides)
    return base


def _small_source(**cols) -> pd.DataFrame:
    data = {
        "ID": ["A1", " A2 ", "A3"],
        "Date": ["04.01.2027", "04.01.2027", "05.01.2027"],
        "Status": ["Done", "done", "Off"],
        "Svc": ["ORTHO", "Urology", "ortho"],
        "Proc": ["27447", "52356", "29881"],
        "Mod": ["LT", "", None],
        "Doc": ["Dr/S1", "", "Dr/S3"],
        "In": ["0742", "2330", ""],
        "Out": ["10:05", "0110", ""],
        "Booked": ["150", "", ""],
    }
    data.update(cols)
    return pd.DataFrame(data)


def test_apply_mapping_derivations() -> None:
    mapping = parse_mapping(_small_mapping())
    cases, problems = apply_mapping(_small_source(), mapping, "src.csv")
    assert problems == []
    assert cases["case_id"].tolist() == ["A1", "A2", "A3"]  # trimmed
    assert cases["status"].tolist() == ["completed", "completed", "cancelled"]  # case-insensitive
    assert cases["service_line"].tolist() == ["Orthopedics", "Urology", "Orthopedics"]  # keep
    assert cases["procedure_code"].tolist() == ["27447-LT", "52356", "29881"]
    assert cases["surgeon_id"].tolist() == ["S1", "unknown", "S3"]
    assert cases["surgery_date"].tolist() == ["2027-01-04", "2027-01-04", "2027-01-05"]
    assert cases["wheels_in"].tolist()[:2] == ["2027-01-04T07:42", "2027-01-04T23:30"]
    assert cases["wheels_out"].tolist()[:2] == ["2027-01-04T10:05", "2027-01-05T01:10"]
    assert pd.isna(cases["wheels_in"].iloc[2])
    assert cases["booked_minutes"].tolist()[:2] == [150.0, 100.0]  # given, then derived
    assert pd.isna(cases["booked_minutes"].iloc[2])
    assert cases["urgency"].tolist() == ["elective"] * 3 and cases["site"].tolist() == ["Main"] * 3
    assert list(cases.columns[:4]) == ["case_id", "surgery_date", "status", "service_line"]


def test_from_datetime_date_with_fallback_and_constants_fill_gaps() -> None:
    raw = _small_mapping()
    raw["columns"]["surgery_date"] = {"derive": "from_datetime_date", "from": "wheels_in",
                                      "if_missing": {"column": "Date"}}
    raw["columns"]["urgency"] = {"column": "AddOn", "map": {"Y": "urgent"}, "unmapped": "error"}
    mapping = parse_mapping(raw)
    src = _small_source(AddOn=["Y", "", None])
    cases, problems = apply_mapping(src, mapping, "src.csv")
    assert problems == []
    assert cases["surgery_date"].tolist() == ["2027-01-04", "2027-01-04", "2027-01-05"]
    assert cases["urgency"].tolist() == ["urgent", "elective", "elective"]  # constant fills gaps


def test_bad_values_are_row_problems_naming_source_row_and_column() -> None:
    mapping = parse_mapping(_small_mapping())
    src = _small_source(In=["0742", "25:99", ""], Status=["Done", "Postponed", "Off"],
                        Booked=["150", "lots", ""])
    cases, problems = apply_mapping(src, mapping, "src.csv")
    found = {(p.file, p.row, p.column) for p in problems}
    assert found == {("src.csv", 2, "In"), ("src.csv", 2, "Status"), ("src.csv", 2, "Booked")}
    text = " ".join(str(p) for p in problems)
    assert "'25:99'" in text and "'Postponed'" in text and "'lots'" in text
    assert pd.isna(cases.loc[1, "wheels_in"]) and pd.isna(cases.loc[1, "status"])
    assert cases.loc[0, "wheels_in"] == "2027-01-04T07:42"


def test_extra_columns_keep_and_extras() -> None:
    raw = _small_mapping(extra_columns="keep",
                         extras={"doctor": {"column": "Doc"}, "booked_text": {"column": "Booked"}})
    mapping = parse_mapping(raw)
    src = _small_source(**{"Patient Class": ["IP", "OP", " "], "site": ["x", "y", "z"]})
    cases, _ = apply_mapping(src, mapping, "src.csv")
    assert cases["patient_class"].tolist()[:2] == ["IP", "OP"] and pd.isna(cases["patient_class"][2])
    assert cases["source_site"].tolist() == ["x", "y", "z"]  # no clash with the contract's site
    assert cases["doctor"].tolist()[0] == "Dr/S1"
    assert "Mod" not in cases.columns and "mod" not in cases.columns  # used by concat
    dropped, _ = apply_mapping(src, parse_mapping(_small_mapping()), "src.csv")
    assert "patient_class" not in dropped.columns


def test_excel_serial_numbers_in_text_cells() -> None:
    mapping = parse_mapping(_small_mapping())
    src = _small_source(Date=["46391", "46391.0", "05.01.2027"], In=["0.3208333333", "0742", ""],
                        Out=["0.5", "0900", ""])
    cases, problems = apply_mapping(src, mapping, "src.csv")
    assert problems == []
    assert cases["surgery_date"].tolist()[:2] == ["2027-01-04", "2027-01-04"]
    assert cases["wheels_in"].iloc[0] == "2027-01-04T07:42"
    assert cases["wheels_out"].iloc[0] == "2027-01-04T12:00"


def test_missing_source_column_names_file_key_and_column() -> None:
    mapping = parse_mapping(_small_mapping())
    src = _small_source().drop(columns=["Svc"])
    with pytest.raises(InputError) as exc:
        apply_mapping(src, mapping, "src.csv")
    p = exc.value.problems[0]
    assert p.file == "src.csv" and p.column == "Svc" and "columns.service_line" in p.problem
    # An optional column may be absent: a warning, and the fallback fills in.
    warnings: list = []
    cases, _ = apply_mapping(_small_source().drop(columns=["Booked"]), mapping, "src.csv", warnings)
    assert [w.column for w in warnings] == ["Booked"]
    assert cases["booked_minutes"].tolist()[0] == 143.0


def test_column_names_match_ignoring_case_and_whitespace(tmp_path: Path) -> None:
    path = tmp_path / "src.csv"
    path.write_text(" ENCOUNTER id ,Date\n1,01/04/2027\n,\n", encoding="utf-8")
    mapping = parse_mapping({"columns": {"case_id": "Encounter ID", "surgery_date": "Date"},
                             "constants": {"status": "booked", "service_line": "X",
                                           "procedure_code": "1", "surgeon_id": "unknown"},
                             "settings": {"turnover_minutes": 30, "pacu_minutes": 60,
                                          "prime_time": "07:30-15:30"}})
    df = read_source(path, mapping)
    assert len(df) == 1  # the all-empty line is not a data row
    cases, problems = apply_mapping(df, mapping, "src.csv")
    assert problems == [] and cases["case_id"].tolist() == ["1"]


# --------------------------------------------------------------------------- reading sources


def test_read_source_options_encoding_delimiter_and_duplicated_headers(tmp_path: Path) -> None:
    path = tmp_path / "export.txt"
    path.write_bytes("Nr;Chirurg;Nr;Saal\n1;Müller (7);x; OR 1 \n".encode("latin-1"))
    raw = _small_mapping(source={"encoding": "latin-1", "delimiter": ";"})
    warnings: list = []
    df = read_source(path, parse_mapping(raw), warnings)
    assert list(df.columns) == ["Nr", "Chirurg", "Nr (2)", "Saal"]
    assert df.loc[0, "Chirurg"] == "Müller (7)" and df.loc[0, "Saal"] == "OR 1"
    assert warnings and warnings[0].column == "Nr" and "duplicated header" in warnings[0].problem
    # Mapping a duplicated header is ambiguous: an error naming the column.
    raw["columns"]["case_id"] = "Nr"
    with pytest.raises(InputError, match="more than once"):
        apply_mapping(df, parse_mapping(raw), str(path))
    # Read with the default utf-8, the latin-1 file is an error naming the file and the option.
    with pytest.raises(InputError, match="source.encoding") as exc:
        read_source(path, parse_mapping(_small_mapping(source={"delimiter": ";"})))
    assert exc.value.problems[0].file == str(path)


def test_read_source_rejects_unknown_and_unreadable_files(tmp_path: Path) -> None:
    mapping = load_mapping(MAPPING)
    (tmp_path / "export.json").write_text("{}")
    with pytest.raises(InputError, match="unknown file type") as exc:
        read_source(tmp_path / "export.json", mapping)
    assert exc.value.problems[0].file.endswith("export.json")
    (tmp_path / "broken.parquet").write_bytes(b"not a parquet file")
    with pytest.raises(InputError, match="cannot read as parquet"):
        read_source(tmp_path / "broken.parquet", mapping)
    (tmp_path / "broken.xlsx").write_bytes(b"PK not really")
    with pytest.raises(InputError, match="cannot read as excel"):
        read_source(tmp_path / "broken.xlsx", mapping)
    with pytest.raises(InputError, match="not found"):
        read_source(tmp_path / "missing.csv", mapping)


# --------------------------------------------------------------------------- bad mappings


_drop, _set = without_key, with_key


BASE = _raw_mapping()
BAD_MAPPINGS = {
    "unknown target column": (_set(BASE, "Patient Name", "columns", "patient_name"),
                              "columns.patient_name"),
    "unknown derive kind": (_set(BASE, {"derive": "lookup", "column": "Surgeon"},
                                 "columns", "surgeon_id"), "columns.surgeon_id.derive"),
    "missing columns": (_drop(BASE, "columns"), "columns"),
    "required column not mapped": (_drop(BASE, "columns", "case_id"), "columns.case_id"),
    "status maps to unknown status": (_set(BASE, {"Completed": "done"}, "columns", "status", "map"),
                                      "columns.status.map"),
    "unknown value map": (_set(BASE, "services", "columns", "service_line", "map"),
                          "columns.service_line.map"),
    "bad regex": (_set(BASE, "((", "columns", "surgeon_id", "pattern"), "columns.surgeon_id.pattern"),
    "format without directives": (_set(BASE, "MM/DD/YYYY", "formats", "date"), "formats.date"),
    "unknown key in a spec": (_set(BASE, "x", "columns", "room_id"), None),
    "typo at top level": (_set(BASE, {}, "colums"), "colums"),
    "missing setting": (_drop(BASE, "settings", "prime_time"), "settings.prime_time"),
    # Validated with HospitalSettings, the model load_hospital uses (the old hand checks missed these).
    "bad service level": (_set(BASE, {"finish_probability": 2}, "settings", "service_levels"),
                          "settings.service_levels.finish_probability"),
    "bad time zone": (_set(BASE, "Mars/Olympus", "settings", "timezone"), "settings.timezone"),
    "bad unmapped policy": (_set(BASE, "ignore", "columns", "status", "unmapped"),
                            "columns.status.unmapped"),
    "bad room time": (_set(BASE, "7am", "rooms", "open_time"), "rooms.open_time"),
    "reference to undefined column": (_set(BASE, {"derive": "minutes_between", "start": "wheels_in",
                                                  "end": "anesthesia_end"},
                                           "columns", "booked_minutes"),
                                      "columns.booked_minutes"),
    "cycle": (_set(BASE, {"date": "Date", "time": "Wheels In", "roll_over_midnight": True,
                          "after": "wheels_out"}, "columns", "wheels_in"), "cycle"),
    "bad bad_values policy": (_set(BASE, "skip", "bad_values"), "bad_values"),
}
del BAD_MAPPINGS["unknown key in a spec"]  # a bare source name is valid; covered below


@pytest.mark.parametrize("case", sorted(BAD_MAPPINGS))
def test_bad_mappings_name_the_file_and_key(case: str, tmp_path: Path) -> None:
    data, key = BAD_MAPPINGS[case]
    path = _write_mapping(tmp_path, data)
    with pytest.raises(InputError) as exc:
        load_mapping(path)
    message = str(exc.value)
    assert str(path) in message
    assert key in message, message


def test_bad_mapping_unknown_spec_key_and_bad_yaml(tmp_path: Path) -> None:
    data = _set(BASE, {"column": "OR Suite", "fromat": "%H"}, "columns", "room_id")
    with pytest.raises(InputError, match=r"columns\.room_id\.fromat"):
        load_mapping(_write_mapping(tmp_path, data))
    bad = tmp_path / "bad.yaml"
    bad.write_text("columns:\n  case_id: [unclosed\n", encoding="utf-8")
    with pytest.raises(InputError, match="bad YAML at line") as exc:
        load_mapping(bad)
    assert exc.value.problems[0].file == str(bad)
    with pytest.raises(InputError, match="cannot read mapping"):
        load_mapping(tmp_path / "nope.yaml")


def test_yes_no_keys_stay_text(tmp_path: Path) -> None:
    path = tmp_path / "m.yaml"
    path.write_text(MAPPING.read_text(encoding="utf-8"), encoding="utf-8")
    mapping = load_mapping(path)
    urgency = mapping.fields["urgency"].value_map
    assert urgency["yes"] == "urgent" and urgency["no"] == "elective" and urgency["y"] == "urgent"


# --------------------------------------------------------------------------- bad rows


def _sample_with(tmp_path: Path, edits: dict[int, dict[str, str]], name: str = "export.csv") -> Path:
    df = pd.read_csv(SAMPLE, dtype=str, keep_default_na=False)
    for row, values in edits.items():
        for col, value in values.items():
            df.loc[row - 1, col] = value
    path = tmp_path / name
    df.to_csv(path, index=False)
    return path


def _first_completed_rows(n: int) -> list[int]:
    rows = [i + 1 for i, r in enumerate(_source_rows()) if r["Case Status"] == "Completed"]
    return rows[:n]


def test_one_bad_time_is_set_aside_not_the_import(tmp_path: Path) -> None:
    row = _first_completed_rows(3)[2]
    source = _sample_with(tmp_path, {row: {"Wheels In": "25:99"}})
    out = tmp_path / "out"
    result = import_hospital(source, MAPPING, out)
    n = len(_source_rows())
    assert result.rows_read == n and result.rows_written == n - 1
    assert result.rows_quarantined == 1 and result.rows_set_aside == 1
    [p] = result.problems
    assert (p.file, p.row, p.column) == (str(source), row, "Wheels In") and "'25:99'" in p.problem
    q = result.quarantine
    assert q["source_row"].tolist() == [row] and q["stage"].tolist() == ["import"]
    cases = pd.read_csv(out / "cases.csv", dtype=str)
    assert _source_rows()[row - 1]["Encounter ID"] not in set(cases["case_id"])
    assert len(load_hospital(out).hospital.cases) == n - 1


def test_blank_policy_leaves_the_row_to_validation(tmp_path: Path) -> None:
    row = _first_completed_rows(1)[0]
    source = _sample_with(tmp_path, {row: {"Wheels Out": "noon-ish"}})
    mapping = _write_mapping(tmp_path, _set(BASE, "blank", "bad_values"))
    result = import_hospital(source, mapping, tmp_path / "out")
    n = len(_source_rows())
    assert result.rows_written == n and result.rows_set_aside == 0
    assert result.rows_quarantined == 1  # completed without wheels_out: quarantined on load
    q = result.quarantine
    assert q["source_row"].tolist() == [row] and q["stage"].tolist() == ["validation"]
    assert "wheels" in q["column"].iloc[0]


def test_too_many_bad_rows_rejects_and_writes_nothing(tmp_path: Path) -> None:
    rows = _first_completed_rows(20)
    source = _sample_with(tmp_path, {r: {"Wheels In": "later"} for r in rows})
    out = tmp_path / "out"
    with pytest.raises(InputError) as exc:
        import_hospital(source, MAPPING, out)
    assert not out.exists()
    message = str(exc.value)
    assert "max_bad_row_fraction" in message
    assert f"{source}, row {rows[0]} (line {rows[0] + 1}), column 'Wheels In'" in message
    # A folder already there is left exactly as it was.
    out.mkdir()
    (out / "cases.csv").write_text("old\n")
    with pytest.raises(InputError):
        import_hospital(source, MAPPING, out)
    assert [p.name for p in out.iterdir()] == ["cases.csv"]
    assert (out / "cases.csv").read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temp left


def test_validation_rejection_is_relabelled_and_writes_nothing(tmp_path: Path) -> None:
    # 'keep' lets an unknown status through the importer; validation then rejects the file.
    mapping = _write_mapping(tmp_path, _set(BASE, "keep", "columns", "status", "unmapped"))
    rows = _first_completed_rows(15)
    source = _sample_with(tmp_path, {r: {"Case Status": "Postponed"} for r in rows})
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("x")
    with pytest.raises(InputError) as exc:
        import_hospital(source, mapping, out)
    assert [p.name for p in out.iterdir()] == ["keep.txt"]
    located = [p for p in exc.value.problems if p.row is not None]
    assert located and located[0].file == str(source) and located[0].row == rows[0]
    assert located[0].column == "Case Status -> status" and "postponed" in located[0].problem.lower()


def test_files_named_by_the_mapping_are_copied(tmp_path: Path) -> None:
    (tmp_path / "blocks.csv").write_text(
        "date,room_id,service_line,surgeon_id,start_time,end_time\n"
        "2027-01-18,OR 01,Orthopedics,,07:30,15:30\n", encoding="utf-8")
    (tmp_path / "staffing.csv").write_text(
        "date,staffed_rooms,anesthesia_teams,pacu_beds\n2027-01-18,6,6,10\n", encoding="utf-8")
    data = _set(BASE, {"blocks": "blocks.csv", "staffing": str(tmp_path / "staffing.csv")}, "files")
    mapping = _write_mapping(tmp_path, data)
    result = import_hospital(SAMPLE, mapping, tmp_path / "out")
    assert {"blocks.csv", "staffing.csv"} <= set(result.files)
    loaded = load_hospital(tmp_path / "out")
    assert len(loaded.hospital.blocks) == 1 and len(loaded.hospital.staffing) == 1
    missing = _write_mapping(tmp_path, _set(BASE, {"blocks": "nope.csv"}, "files"), "m2.yaml")
    with pytest.raises(InputError, match=r"files\.blocks"):
        import_hospital(SAMPLE, missing, tmp_path / "out2")
    assert not (tmp_path / "out2").exists()


# --------------------------------------------------------------------------- command line


def _cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([str(PYTHON), "-m", "engine", "import", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=60)


def test_cli_import_ok(tmp_path: Path) -> None:
    out = tmp_path / "hospital"
    proc = _cli("--source", str(SAMPLE), "--mapping", str(MAPPING), "--out", str(out),
                "--json", str(tmp_path / "result.json"))
    assert proc.returncode == 0, proc.stderr
    assert (out / "cases.csv").exists() and (tmp_path / "result.json").exists()
    assert str(len(_source_rows())) in proc.stdout


def test_cli_bad_rows_exit_2_naming_file_row_column(tmp_path: Path) -> None:
    rows = _first_completed_rows(20)
    source = _sample_with(tmp_path, {r: {"Wheels Out": "25:61"} for r in rows})
    out = tmp_path / "hospital"
    proc = _cli("--source", str(source), "--mapping", str(MAPPING), "--out", str(out))
    assert proc.returncode == 2, proc.stderr
    assert f"{source}, row {rows[0]}" in proc.stderr and "'Wheels Out'" in proc.stderr
    assert not out.exists()


def test_cli_bad_mapping_exit_2_naming_key(tmp_path: Path) -> None:
    mapping = _write_mapping(tmp_path, _set(BASE, {"derive": "guess"}, "columns", "room_id"))
    proc = _cli("--source", str(SAMPLE), "--mapping", str(mapping), "--out", str(tmp_path / "o"))
    assert proc.returncode == 2
    assert str(mapping) in proc.stderr and "columns.room_id.derive" in proc.stderr


# --------------------------------------------------------------------------- messy sources


def test_roll_over_midnight_only_for_plausible_gaps() -> None:
    raw = _small_mapping()
    raw["formats"]["datetime"] = ["%d.%m.%Y %H:%M"]
    mapping = parse_mapping(raw)
    # Row 1: swapped times (07:42 in, 07:00 out) would be a 23-hour case: not rolled.
    # Row 2: the time cell holds a whole datetime: taken as it is.
    src = _small_source(In=["0742", "2330", ""], Out=["0700", "05.01.2027 01:10", ""])
    cases, problems = apply_mapping(src, mapping, "src.csv")
    assert problems == []
    assert cases["wheels_out"].tolist()[:2] == ["2027-01-04T07:00", "2027-01-05T01:10"]


def test_blank_lines_and_ragged_rows_keep_row_numbers(tmp_path: Path) -> None:
    path = tmp_path / "src.csv"
    path.write_text("ID,Date,Status,Svc,Proc,Mod,Doc,In,Out,Booked\n"
                    "A1,04.01.2027,Done,ORTHO,1,,Dr/S1,0742,0900,\n"
                    ",,,,,,,,,\n"
                    "\n"
                    "A2,04.01.2027,Done,ORTHO,1,,Dr/S1,07:42,99:00,,surplus\n", encoding="utf-8")
    mapping = parse_mapping(_small_mapping())
    warnings: list = []
    df = read_source(path, mapping, warnings)
    assert len(df) == 2
    cases, problems = apply_mapping(df, mapping, str(path), warnings)
    [p] = problems
    assert (p.row, p.column) == (4, "Out")  # the fourth data row, as the file shows it
    assert cases.index.tolist() == [0, 3]
    assert [(w.row, "ignored" in w.problem) for w in warnings] == [(4, True)]


def test_extras_datetime_feeds_minutes_between_and_list_sep() -> None:
    raw = _small_mapping()
    raw["columns"]["scheduled_start"] = {"date": "Date", "time": "SchedIn"}
    raw["columns"]["booked_minutes"] = {"column": "Booked", "if_missing": {
        "derive": "minutes_between", "start": "scheduled_start", "end": "scheduled_end"}}
    raw["columns"]["required_equipment"] = {"column": "Kit", "list_sep": ","}
    raw["extras"] = {"scheduled_end": {"date": "Date", "time": "SchedOut", "kind": "datetime",
                                       "roll_over_midnight": True, "after": "scheduled_start"}}
    mapping = parse_mapping(raw)
    src = _small_source(SchedIn=["0730", "2300", ""], SchedOut=["0930", "0030", ""],
                        Kit=["Robot, fluoro", "", None])
    cases, problems = apply_mapping(src, mapping, "src.csv")
    assert problems == []
    assert cases["booked_minutes"].tolist()[:2] == [150.0, 90.0]
    assert cases["scheduled_end"].tolist()[:2] == ["2027-01-04T09:30", "2027-01-05T00:30"]
    assert cases["required_equipment"].iloc[0] == "Robot;fluoro"
    assert list(cases.columns)[-1] == "scheduled_end"


def test_numbers_accept_thousands_separators_only() -> None:
    mapping = parse_mapping(_small_mapping())
    src = _small_source(Booked=["1,200", "1,5", " 90 "])
    cases, problems = apply_mapping(src, mapping, "src.csv")
    assert [(p.row, p.column) for p in problems] == [(2, "Booked")]
    assert cases["booked_minutes"].iloc[0] == 1200.0 and cases["booked_minutes"].iloc[2] == 90.0


# --------------------------------------------------------------------------- suggested mappings (issue 17)

from engine.cli import main as cli_main  # noqa: E402
from engine.onboard import suggest_mapping  # noqa: E402
from engine.onboard.suggest import classify, match_headers, normalise  # noqa: E402
from tests.foreign_exports import TRUTH, make_export, write_export  # noqa: E402

# The shipped worked mapping is the answer key for the sample export.
SAMPLE_TRUTH = {"Encounter ID": "case_id", "Date": "surgery_date", "OR Suite": "room_id", "Service": "service_line",
                "Surgeon": "surgeon_id", "CPT Code": "procedure_code", "CPT Description": "procedure_name",
                "Booked Time (min)": "booked_minutes", "OR Schedule": "scheduled_start", "Wheels In": "wheels_in",
                "Start Time": "procedure_start", "End Time": "procedure_end", "Wheels Out": "wheels_out",
                "Case Status": "status", "Patient Class": "admission_type", "ASA": "asa_class",
                "Anesthesia Type": "anesthesia_type", "Cancel Reason": "cancellation_reason", "Add On": "urgency"}


def _accuracy(matches: dict[str, str], truth: dict[str, str]) -> float:
    got = {h: t for t, h in matches.items()}
    return sum(got.get(h) == t for h, t in truth.items()) / len(truth)


@pytest.mark.parametrize("style,ext", [("epic", ".csv"), ("euro", ".txt"), ("iso", ".xlsx")])
def test_suggested_mapping_of_foreign_exports_imports_them(style: str, ext: str, tmp_path: Path) -> None:
    """Exports this repository has no mapping for: the suggestion loads, names every column right
    (100% on these three shapes: US dates + times, ;-separated German day-first datetimes, Excel
    ISO) and imports every case unedited."""
    df = make_export(style, weeks=4)
    src = write_export(df, tmp_path / f"{style}{ext}")
    s = suggest_mapping(src)
    assert _accuracy(s.matches, TRUTH[style]) == 1.0, {h: t for t, h in s.matches.items()}
    mp = tmp_path / "suggested.yaml"
    mp.write_text(s.text)
    load_mapping(mp)
    result = import_hospital(src, mp, tmp_path / "out")
    assert result.rows_written == len(df) and result.rows_quarantined == 0
    cases = load_hospital(tmp_path / "out").hospital.cases
    assert set(cases["status"]) == {"completed", "cancelled", "booked"}
    done = cases[cases["status"] == "completed"]
    assert done["wheels_in"].notna().all() and (done["wheels_out"] > done["wheels_in"]).all()


def test_suggested_mapping_of_the_sample_export_matches_the_worked_mapping(tmp_path: Path) -> None:
    s = suggest_mapping(SAMPLE)
    assert _accuracy(s.matches, SAMPLE_TRUTH) == 1.0
    assert s.unused == ["Anesthesiologist"]
    mp = tmp_path / "suggested.yaml"
    mp.write_text(s.text)
    ours = import_hospital(SAMPLE, mp, tmp_path / "suggested")
    shipped = import_hospital(SAMPLE, MAPPING, tmp_path / "shipped")
    a = load_hospital(tmp_path / "suggested").hospital.cases
    b = load_hospital(tmp_path / "shipped").hospital.cases
    assert ours.rows_quarantined == shipped.rows_quarantined == 0
    for col in ("case_id", "surgery_date", "status", "service_line", "surgeon_id", "room_id", "wheels_in",
                "wheels_out", "procedure_start", "procedure_end", "urgency", "booked_minutes"):
        pd.testing.assert_series_equal(a[col], b[col], obj=col)


@pytest.mark.parametrize("header,target", [
    ("Wheels In", "wheels_in"), ("In Room", "wheels_in"), ("Pt In Room", "wheels_in"), ("Patient In Room", "wheels_in"),
    ("Pt. Out of Room", "wheels_out"), ("OR Suite", "room_id"), ("Room", "room_id"), ("CPT", "procedure_code"),
    ("Primary Procedure", "procedure_name"), ("Surgeon", "surgeon_id"), ("Service", "service_line"),
    ("Booked Time (min)", "booked_minutes"), ("Case #", "case_id"), ("Incision Time", "procedure_start"),
    ("Specialty", "service_line"), ("Theatre", "room_id"), ("Sched. Start", "scheduled_start"),
])
def test_header_variants_are_recognised(header: str, target: str) -> None:
    values = {"wheels_in": "07:42", "wheels_out": "09:10", "procedure_start": "07:55", "scheduled_start": "07:30",
              "booked_minutes": "90", "case_id": "A1"}
    kinds = {header: classify(pd.Series([values.get(target, "x 1")] * 5))}
    assert match_headers([header], kinds).get(target, (None,))[0] == header, normalise(header)


def test_formats_are_detected_and_day_first_told_from_month_first() -> None:
    assert classify(pd.Series(["13/01/2027", "02/01/2027"])).formats == ("%d/%m/%Y",)
    assert classify(pd.Series(["01/13/2027", "01/02/2027"])).formats == ("%m/%d/%Y",)
    amb = classify(pd.Series(["01/02/2027", "03/04/2027"]))
    assert amb.kind == "date" and amb.ambiguous
    assert classify(pd.Series(["7:42 AM", "1:05 PM"])).formats == ("%I:%M %p",)
    k = classify(pd.Series(["04.01.2027 07:42", "05.01.2027 13:00"]))
    assert (k.kind, k.formats) == ("datetime", ("%d.%m.%Y %H:%M",))
    assert classify(pd.Series(["120", "95", "1,200"])).kind == "number"


def test_ambiguous_dates_and_unknown_values_are_flagged_for_review(tmp_path: Path) -> None:
    df = make_export("epic", weeks=1, booked_days=2)
    df["Surgery Date"] = "01/02/2027"  # day and month both <= 12
    df.loc[0, "Case Status"] = "Zombie"
    s = suggest_mapping(write_export(df, tmp_path / "x.csv"))
    assert "day-first and month-first both fit" in s.text
    assert '# CHECK: "Zombie" has no guess' in s.text
    assert "values seen (count): Completed" in s.text and '"GEN SURG": "General Surgery"' in s.text


def test_cli_suggest_mapping_writes_yaml_to_stdout(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert cli_main(["import", "--suggest-mapping", "--source", str(SAMPLE)]) == 0
    text = capsys.readouterr().out
    assert yaml.safe_load(text)["columns"]["case_id"] == "Encounter ID"
    assert text.startswith("# Suggested mapping")
    assert cli_main(["import", "--source", str(SAMPLE)]) == 2  # neither --mapping/--out nor --suggest-mapping
    assert "--mapping and --out" in capsys.readouterr().err


# --------------------------------------------------------------------------- blocks, staffing, PACU beds inferred (issue 17)

from engine.onboard.infer import InferParams, infer_staffing, pacu_peak, weekly_template  # noqa: E402
from tests.foreign_exports import PATTERN, ROOMS  # noqa: E402


@pytest.fixture(scope="module")
def onboarded(tmp_path_factory: pytest.TempPathFactory):
    """The epic-style export (14 weeks, last week booked, PACU times), suggested mapping unedited."""
    d = tmp_path_factory.mktemp("onboard")
    src = write_export(make_export("epic", weeks=14), d / "epic.csv")
    (d / "map.yaml").write_text(suggest_mapping(src).text)
    result = import_hospital(src, d / "map.yaml", d / "hospital")
    return d, result


def test_missing_blocks_and_staffing_are_inferred_and_marked(onboarded) -> None:
    d, result = onboarded
    assert {"blocks.csv", "staffing.csv"} <= set(result.files)
    h = load_hospital(d / "hospital").hospital
    inferred = h.settings.get("inferred")
    assert set(inferred) == {"blocks.csv", "staffing.csv"} and "weekly template" in inferred["blocks.csv"]
    booked = h.cases[h.cases["status"] == "booked"]
    assert set(booked["surgery_date"]) <= set(h.staffing["date"])  # every booked day is staffed
    blocks = h.blocks.assign(weekday=h.blocks["date"].dt.day_of_week)
    # A stable owner becomes a block; OR 4 on Fridays (a different service each week) stays open time.
    for r, room in enumerate(ROOMS["epic"]):
        for wd, service in enumerate(PATTERN[r]):
            got = set(blocks.loc[(blocks["room_id"] == room) & (blocks["weekday"] == wd), "service_line"])
            assert got == ({service} if service else set()), (room, wd, got)
    assert (blocks["start_time"] == "07:30").all()
    monday = h.staffing[h.staffing["date"].dt.day_of_week == 0]
    assert (monday["staffed_rooms"] == 4).all() and (monday["anesthesia_teams"] == 4).all()
    assert (h.staffing.loc[h.staffing["date"].dt.day_of_week >= 5, "staffed_rooms"] == 0).all()


def test_pacu_beds_from_peak_recovery_else_the_setting() -> None:
    df = pd.DataFrame({"pacu_in": [f"2027-01-04T{h:02d}:00" for h in (8, 8, 9, 9, 10, 11, 12, 12, 13, 14, 15)],
                       "pacu_out": [f"2027-01-04T{h:02d}:30" for h in (9, 9, 9, 10, 10, 11, 13, 12, 13, 14, 15)]})
    # 8:00 two in, 9:00 two more while both stay until 9:30: four at once.
    assert pacu_peak(df, InferParams(pacu_quantile=1.0)) == 4
    cases = make_export("iso", weeks=3)  # no PACU times
    cases = cases.rename(columns={"date_of_surgery": "surgery_date", "theatre": "room_id", "specialty": "service_line",
                                  "consultant": "surgeon_id", "outcome": "status"})
    cases["status"] = cases["status"].replace({"done": "completed"})
    _, how = infer_staffing(cases, InferParams(), pacu_beds_setting=6)
    assert how == "the pacu_beds setting"
    staffing, how = infer_staffing(cases, InferParams())
    assert "per staffed room" in how and staffing["pacu_beds"].max() == 6  # 1.5 x 4 rooms


def test_a_provided_file_wins_and_inference_can_be_switched_off(onboarded, tmp_path: Path) -> None:
    d, _ = onboarded
    mapping = yaml.safe_load((d / "map.yaml").read_text())
    blocks = "date,room_id,service_line,surgeon_id,start_time,end_time\n2027-01-04,OR 1,Urology,,07:30,12:00\n"
    (tmp_path / "blocks.csv").write_text(blocks)
    mapping["files"] = {"blocks": str(tmp_path / "blocks.csv")}
    mapping["infer"] = {"staffing": False}
    mp = tmp_path / "map.yaml"
    mp.write_text(yaml.safe_dump(mapping))
    result = import_hospital(d / "epic.csv", mp, tmp_path / "out")
    assert "staffing.csv" not in result.files
    h = load_hospital(tmp_path / "out").hospital
    assert h.blocks["service_line"].tolist() == ["Urology"] and len(h.staffing) == 0
    assert h.settings.get("inferred") is None
    mapping["infer"] = {"weeks": 0}
    mp.write_text(yaml.safe_dump(mapping))
    with pytest.raises(InputError) as exc:
        load_mapping(mp)
    assert exc.value.problems[0].column == "infer" and "weeks" in exc.value.problems[0].problem


def test_weekly_template_needs_a_stable_owner() -> None:
    rows = []
    for week in range(8):
        day = pd.Timestamp("2026-11-02") + pd.Timedelta(weeks=week)  # Mondays
        rows.append({"surgery_date": day, "room_id": "R1", "service_line": "Urology", "surgeon_id": "S1",
                     "status": "completed", "booked_minutes": 120})
        rows.append({"surgery_date": day, "room_id": "R2", "service_line": ["Urology", "ENT"][week % 2],
                     "surgeon_id": "S2", "status": "completed", "booked_minutes": 120})
        if week < 3:  # R3 ran on 3 of 8 Mondays: too rarely to own
            rows.append({"surgery_date": day, "room_id": "R3", "service_line": "ENT", "surgeon_id": "S3",
                         "status": "completed", "booked_minutes": 60})
    t = weekly_template(pd.DataFrame(rows))
    assert t[["room_id", "weekday", "service_line", "surgeon_id"]].values.tolist() == [["R1", 0, "Urology", "S1"]]


@pytest.mark.slow
def test_plan_runs_on_an_imported_folder_whose_last_week_is_booked(onboarded, tmp_path: Path) -> None:
    """Issue 17: plan failed on an imported folder whose last week was booked (no blocks, no staffing)."""
    import json

    from tests.feasibility import assert_feasible

    d, _ = onboarded
    h = load_hospital(d / "hospital").hospital
    monday = h.cases.loc[h.cases["status"] == "booked", "surgery_date"].min()
    assert monday.weekday() == 0
    out, js = tmp_path / "schedule.csv", tmp_path / "plan.json"
    rc = cli_main(["plan", "--data", str(d / "hospital"), "--date", f"{monday:%Y-%m-%d}", "--out", str(out),
                   "--json", str(js), "--time-limit", "30", "--models", str(tmp_path / "models")])
    assert rc == 0
    result = json.loads(js.read_text())
    assert result["fallback_used"] is False and result["n_scheduled"] > 0
    assert_feasible(h, out)


def test_clock_is_set_only_when_history_runs_past_today(tmp_path: Path) -> None:
    import_hospital(SAMPLE, MAPPING, tmp_path / "future")  # completed cases up to 2027-01-15
    assert str(load_hospital(tmp_path / "future").hospital.settings.as_of) == "2027-01-16"
    past = make_export("iso", weeks=3, start=dt.date(2025, 3, 3))
    src = write_export(past, tmp_path / "past.csv")
    (tmp_path / "m.yaml").write_text(suggest_mapping(src).text)
    import_hospital(src, tmp_path / "m.yaml", tmp_path / "past")
    assert load_hospital(tmp_path / "past").hospital.settings.as_of is None  # a real extract: the wall clock


def test_files_settings_stands_in_for_the_settings_section(tmp_path: Path) -> None:
    """``files.settings`` (a settings.toml of the hospital's own) replaces the mapping's settings
    section; giving both, or neither, is a located error."""
    from engine.contract import SETTINGS_FILE

    (tmp_path / "given.toml").write_text('turnover_minutes = 30\n', encoding="utf-8")
    data = {k: v for k, v in BASE.items() if k != "settings"}
    m = load_mapping(_write_mapping(tmp_path, {**data, "files": {"settings": "given.toml"}}))
    assert m.settings == {} and m.files[SETTINGS_FILE] == tmp_path / "given.toml"
    with pytest.raises(InputError, match="missing section"):
        load_mapping(_write_mapping(tmp_path, data, "none.yaml"))
    with pytest.raises(InputError, match="not both"):
        load_mapping(_write_mapping(tmp_path, {**BASE, "files": {"settings": "given.toml"}}, "both.yaml"))
