"""Validation of a hospital folder: every kind of bad input gives a clear outcome and message.

Each bad input either rejects the folder (InputError; the CLI exits 2) or quarantines the row
(counted, with its reason). Every expected message names file, row, column and the problem.
"""
from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pandas as pd
import pytest

from engine import contract as C
from engine.errors import InputError, Problem
from engine.hospital import ValidationParams, load_cases, load_hospital
from tests.minihospital import BLOCKS, CASES_HEADER, ROOMS, SETTINGS, STAFFING, SURGEONS, case_rows, write_mini_hospital

HEADER = CASES_HEADER.split(",")
REPO = Path(__file__).resolve().parents[2]


# --------------------------------------------------------------------------- helpers


def cases_with(row: int, column: str, value: str) -> list[str]:
    """The default case rows with data row ``row`` (1-based) given ``value`` in ``column``."""
    rows = case_rows()
    cells = rows[row - 1].split(",")
    cells[HEADER.index(column)] = value
    rows[row - 1] = ",".join(cells)
    return rows


def cases_text(rows: list[str], header: str = CASES_HEADER) -> str:
    return "\n".join([header, *rows]) + "\n"


def cases_without(*columns: str) -> str:
    keep = [i for i, h in enumerate(HEADER) if h not in columns]
    lines = [CASES_HEADER, *case_rows()]
    return "\n".join(",".join(line.split(",")[i] for i in keep) for line in lines) + "\n"


@dataclass
class Bad:
    """One kind of bad input and what validation must say about it."""

    id: str
    files: Callable[[], dict[str, str | bytes | None]]  # file name -> text, bytes, or None (delete)
    outcome: str  # "reject" or "quarantine"
    file: str
    row: int | None
    column: str | None
    text: str  # a piece of the problem text


def make_folder(folder: Path, files: dict[str, str | bytes | None]) -> Path:
    write_mini_hospital(folder)
    for name, content in files.items():
        path = folder / name
        if content is None:
            path.unlink()
        elif isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
    return folder


def has_problem(problems: list[Problem], file: str, row: int | None, column: str | None, text: str) -> bool:
    return any(p.file == file and p.row == row and p.column == column and text in p.problem for p in problems)


def where(file: str, row: int | None, column: str | None) -> str:
    """The location part of a message, as Problem prints it."""
    return str(Problem(file, row, column, "")).removesuffix(": ")


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "engine", *args], cwd=REPO, capture_output=True, text=True, timeout=120
    )


# --------------------------------------------------------------------------- the table

latin1_cases = cases_text(case_rows()).replace("Lap cholecystectomy", "Lap cholécystectomie", 1).encode("latin-1")
unclosed_quote = case_rows()
unclosed_quote[3] = unclosed_quote[3].replace("Total hip arthroplasty", '"Total hip arthroplasty')

BAD_INPUTS = [
    # ---- whole files and headers: the folder is rejected
    Bad("missing cases.csv", lambda: {"cases.csv": None}, "reject", "cases.csv", None, None, "required file is missing"),
    Bad("missing rooms.csv", lambda: {"rooms.csv": None}, "reject", "rooms.csv", None, None, "required file is missing"),
    Bad("missing surgeons.csv", lambda: {"surgeons.csv": None}, "reject", "surgeons.csv", None, None, "required file is missing"),
    Bad("missing settings.toml", lambda: {"settings.toml": None}, "reject", "settings.toml", None, None, "required file is missing"),
    Bad("missing required column", lambda: {"cases.csv": cases_without("status")}, "reject", "cases.csv", None, "status", "required column is missing"),
    Bad("missing rooms column", lambda: {"rooms.csv": ROOMS.replace("capabilities,open_time", "capabilities,opens", 1)}, "reject", "rooms.csv", None, "open_time", "required column is missing"),
    Bad("semicolon-separated file", lambda: {"cases.csv": cases_text(case_rows()).replace(",", ";")}, "reject", "cases.csv", None, None, "comma-separated"),
    Bad("header case differs", lambda: {"rooms.csv": ROOMS.replace("room_id", "Room_ID", 1)}, "reject", "rooms.csv", None, "room_id", "found 'Room_ID'"),
    Bad("completed cases without wheels columns", lambda: {"cases.csv": cases_without("wheels_in", "wheels_out")}, "reject", "cases.csv", None, "wheels_in", "completed cases need wheels_in and wheels_out"),
    Bad("duplicated header", lambda: {"rooms.csv": ROOMS.replace("room_id,site", "room_id,room_id", 1)}, "reject", "rooms.csv", None, "room_id", "appears more than once"),
    Bad("empty file", lambda: {"rooms.csv": ""}, "reject", "rooms.csv", None, None, "file is empty"),
    Bad("blank-lines-only file", lambda: {"surgeons.csv": "\n\n"}, "reject", "surgeons.csv", None, None, "file is empty"),
    Bad("non-UTF-8 file", lambda: {"cases.csv": latin1_cases}, "reject", "cases.csv", 3, "procedure_name", "not UTF-8 text: byte 0xe9 on line 4"),
    Bad("non-UTF-8 header", lambda: {"rooms.csv": "r\xf6om_id\n".encode("latin-1")}, "reject", "rooms.csv", None, None, "not UTF-8 text"),
    Bad("unbalanced quote", lambda: {"cases.csv": cases_text(unclosed_quote)}, "reject", "cases.csv", 4, None, "quoted field opened on line 5 is never closed"),
    Bad("column values without a header name", lambda: {"rooms.csv": ROOMS.replace("close_time\n", "close_time,\n").replace("17:00\n", "17:00,x\n")}, "reject", "rooms.csv", None, "#6", "column has values but no name"),
    # ---- rooms, surgeons, blocks, staffing: any bad row rejects
    Bad("rooms close before open", lambda: {"rooms.csv": ROOMS.replace("OR3,North,,07:30,15:30", "OR3,North,,15:30,07:30")}, "reject", "rooms.csv", 3, "close_time", "close_time is not after open_time"),
    Bad("bad HH:MM", lambda: {"rooms.csv": ROOMS.replace("OR3,North,,07:30", "OR3,North,,7h30")}, "reject", "rooms.csv", 3, "open_time", "'7h30' is not a time of day (HH:MM"),
    Bad("hour 24", lambda: {"rooms.csv": ROOMS.replace("OR2,Main,fluoro,07:30,17:00", "OR2,Main,fluoro,07:30,24:00")}, "reject", "rooms.csv", 2, "close_time", "'24:00' is not a time of day"),
    Bad("duplicate room id", lambda: {"rooms.csv": ROOMS + "OR3,North,,07:30,15:30\n"}, "reject", "rooms.csv", 4, "room_id", "duplicate room_id 'OR3': already in row 3"),
    Bad("room without site", lambda: {"rooms.csv": ROOMS.replace("OR3,North", "OR3,")}, "reject", "rooms.csv", 3, "site", "required value is missing"),
    Bad("duplicate surgeon", lambda: {"surgeons.csv": SURGEONS + "S1,Urology\n"}, "reject", "surgeons.csv", 5, "surgeon_id", "duplicate surgeon_id 'S1': already in row 1"),
    Bad("staffing negative", lambda: {"staffing.csv": STAFFING.replace("2027-01-05,2,2,3", "2027-01-05,-2,2,3")}, "reject", "staffing.csv", 2, "staffed_rooms", "-2 is negative"),
    Bad("staffing non-integer", lambda: {"staffing.csv": STAFFING.replace("2027-01-05,2,2,3", "2027-01-05,2,2.5,3")}, "reject", "staffing.csv", 2, "anesthesia_teams", "'2.5' is not a whole number"),
    Bad("staffing not a number", lambda: {"staffing.csv": STAFFING.replace("2027-01-05,2,2,3", "2027-01-05,2,2,many")}, "reject", "staffing.csv", 2, "pacu_beds", "'many' is not a number"),
    Bad("duplicate staffing date", lambda: {"staffing.csv": STAFFING + "2027-01-05,1,1,1\n"}, "reject", "staffing.csv", 3, "date", "duplicate date '2027-01-05': already in row 2"),
    Bad("overlapping blocks", lambda: {"blocks.csv": BLOCKS + "2027-01-04,OR1,Urology,,12:00,14:00\n"}, "reject", "blocks.csv", 6, "start_time", "overlaps the block in row 1 (07:30-17:00) in room OR1 on 2027-01-04"),
    Bad("block on unknown room", lambda: {"blocks.csv": BLOCKS + "2027-01-06,OR7,Urology,,07:30,12:00\n"}, "reject", "blocks.csv", 6, "room_id", "room 'OR7' is not in rooms.csv"),
    Bad("block ends before it starts", lambda: {"blocks.csv": BLOCKS + "2027-01-06,OR3,Urology,,12:00,08:00\n"}, "reject", "blocks.csv", 6, "end_time", "end_time is not after start_time"),
    Bad("block bad date", lambda: {"blocks.csv": BLOCKS + "2027-02-30,OR3,Urology,,07:30,12:00\n"}, "reject", "blocks.csv", 6, "date", "'2027-02-30' is not a date (YYYY-MM-DD)"),
    Bad("block unknown service line", lambda: {"blocks.csv": BLOCKS + "2027-01-06,OR3,Cardiology,,07:30,12:00\n"}, "reject", "blocks.csv", 6, "service_line", "unknown service line 'Cardiology'"),
    # ---- settings.toml
    Bad("settings bad TOML", lambda: {"settings.toml": SETTINGS + "turnover = = 3\n"}, "reject", "settings.toml", None, None, "not valid TOML: Invalid value (at line 6"),
    Bad("settings missing required", lambda: {"settings.toml": SETTINGS.replace("pacu_minutes = 75\n", "")}, "reject", "settings.toml", None, "pacu_minutes", "required setting is missing"),
    Bad("settings bad prime_time", lambda: {"settings.toml": SETTINGS.replace('"07:30-15:30"', '"15:30-07:30"')}, "reject", "settings.toml", None, "prime_time", "must look like \"07:30-15:30\""),
    Bad("settings turnover not a number", lambda: {"settings.toml": SETTINGS.replace("turnover_minutes = 30", 'turnover_minutes = "30 min"')}, "reject", "settings.toml", None, "turnover_minutes", "must be a number of minutes within 0..240"),
    Bad("settings not UTF-8", lambda: {"settings.toml": SETTINGS.replace("Mini", "M\xefni").encode("latin-1")}, "reject", "settings.toml", None, None, "not UTF-8 text: byte 0xef on line 1"),
    # ---- cases.csv rows: quarantined and counted
    Bad("bad date", lambda: {"cases.csv": cases_text(cases_with(3, "surgery_date", "2026-13-01"))}, "quarantine", "cases.csv", 3, "surgery_date", "'2026-13-01' is not a date (YYYY-MM-DD)"),
    Bad("bad datetime", lambda: {"cases.csv": cases_text(cases_with(3, "wheels_in", "2026-12-01T25:99"))}, "quarantine", "cases.csv", 3, "wheels_in", "'2026-12-01T25:99' is not a datetime (YYYY-MM-DDTHH:MM)"),
    Bad("datetime with time zone", lambda: {"cases.csv": cases_text(cases_with(3, "wheels_in", "2026-12-01T11:30+01:00"))}, "quarantine", "cases.csv", 3, "wheels_in", "has a time-zone offset"),
    Bad("unknown status", lambda: {"cases.csv": cases_text(cases_with(3, "status", "done"))}, "quarantine", "cases.csv", 3, "status", "'done' is not a known status (allowed: completed, cancelled, booked)"),
    Bad("missing required value", lambda: {"cases.csv": cases_text(cases_with(3, "procedure_code", ""))}, "quarantine", "cases.csv", 3, "procedure_code", "required value is missing"),
    Bad("wheels_out before wheels_in", lambda: {"cases.csv": cases_text(cases_with(3, "wheels_out", "2026-12-01T10:00"))}, "quarantine", "cases.csv", 3, "wheels_out", "wheels_out is not after wheels_in"),
    Bad("duration over 1440 min", lambda: {"cases.csv": cases_text(cases_with(3, "wheels_out", "2026-12-02T12:00"))}, "quarantine", "cases.csv", 3, "wheels_out", "longer than 1440 minutes"),
    Bad("completed without wheels_in", lambda: {"cases.csv": cases_text(cases_with(3, "wheels_in", ""))}, "quarantine", "cases.csv", 3, "wheels_in", "a completed case needs wheels_in"),
    Bad("completed without wheels_out", lambda: {"cases.csv": cases_text(cases_with(3, "wheels_out", ""))}, "quarantine", "cases.csv", 3, "wheels_out", "a completed case needs wheels_out"),
    Bad("procedure outside wheels", lambda: {"cases.csv": cases_text(cases_with(3, "procedure_end", "2026-12-01T15:00"))}, "quarantine", "cases.csv", 3, "procedure_end", "procedure_end falls outside wheels_in..wheels_out"),
    Bad("negative booked_minutes", lambda: {"cases.csv": cases_text(cases_with(3, "booked_minutes", "-5"))}, "quarantine", "cases.csv", 3, "booked_minutes", "-5 is out of range: booked_minutes must be within 1..1440"),
    Bad("booked_minutes not a number", lambda: {"cases.csv": cases_text(cases_with(3, "booked_minutes", "2h"))}, "quarantine", "cases.csv", 3, "booked_minutes", "'2h' is not a number"),
    Bad("age out of range", lambda: {"cases.csv": cases_text(cases_with(3, "patient_age", "150"))}, "quarantine", "cases.csv", 3, "patient_age", "150 is out of range: patient_age must be within 0..120"),
    Bad("unknown ASA class", lambda: {"cases.csv": cases_text(cases_with(3, "asa_class", "7"))}, "quarantine", "cases.csv", 3, "asa_class", "7 is not a known ASA class"),
    Bad("ASA class as text", lambda: {"cases.csv": cases_text(cases_with(3, "asa_class", "IV"))}, "quarantine", "cases.csv", 3, "asa_class", "'IV' is not a number"),
    Bad("unknown urgency", lambda: {"cases.csv": cases_text(cases_with(3, "urgency", "asap"))}, "quarantine", "cases.csv", 3, "urgency", "'asap' is not a known urgency (allowed: elective, urgent, emergent)"),
    Bad("duplicate case_id", lambda: {"cases.csv": cases_text(cases_with(3, "case_id", "C0001"))}, "quarantine", "cases.csv", 3, "case_id", "duplicate case_id 'C0001': already in row 1 (that row is kept)"),
    Bad("unknown room_id", lambda: {"cases.csv": cases_text(cases_with(3, "room_id", "OR9"))}, "quarantine", "cases.csv", 3, "room_id", "room 'OR9' is not in rooms.csv"),
    Bad("unknown surgeon", lambda: {"cases.csv": cases_text(cases_with(3, "surgeon_id", "S99"))}, "quarantine", "cases.csv", 3, "surgeon_id", "surgeon 'S99' is not in surgeons.csv"),
    Bad("mislabelled service line", lambda: {"cases.csv": cases_text(cases_with(3, "service_line", "Orthopaedics"))}, "quarantine", "cases.csv", 3, "service_line", "unknown service line 'Orthopaedics'"),
    Bad("row with too many fields", lambda: {"cases.csv": cases_text([*case_rows()[:2], case_rows()[2] + ",x,y", *case_rows()[3:]])}, "quarantine", "cases.csv", 3, None, "malformed row: 27 fields, the header has 25"),
]


def _params(bad: Bad):
    return pytest.param(bad, id=bad.id)


def test_the_table_covers_enough_kinds() -> None:
    assert len({b.id for b in BAD_INPUTS}) == len(BAD_INPUTS) >= 20
    assert {b.outcome for b in BAD_INPUTS} == {"reject", "quarantine"}


@pytest.mark.parametrize("bad", [_params(b) for b in BAD_INPUTS])
def test_bad_input(bad: Bad, tmp_path: Path) -> None:
    folder = make_folder(tmp_path / "h", bad.files())
    if bad.outcome == "reject":
        with pytest.raises(InputError) as info:
            load_hospital(folder)
        problems = info.value.problems
        assert has_problem(problems, bad.file, bad.row, bad.column, bad.text), info.value.describe()
        # The printed message names file, row and column.
        line = next(str(p) for p in problems if p.file == bad.file and p.row == bad.row and p.column == bad.column)
        assert line.startswith(where(bad.file, bad.row, bad.column) + ": ")
        # One message per row and column: nothing is reported twice.
        keys = [(p.file, p.row, p.column) for p in problems if p.row is not None]
        assert len(keys) == len(set(keys)), info.value.describe()
    else:
        loaded = load_hospital(folder)
        report = loaded.report
        assert report.n_quarantined == 1
        assert report.files[bad.file].n_quarantined == 1
        q = report.quarantine
        mine = q[q["row"] == bad.row]
        assert len(mine) == 1, q.to_string()  # one reason per row here: no repeated problem
        rec = mine.iloc[0]
        assert rec["file"] == bad.file
        assert (rec["column"] if pd.notna(rec["column"]) else None) == bad.column
        assert bad.text in rec["reason"]
        n_rows = len(case_rows())
        assert len(loaded.hospital.cases) == n_rows - 1
        assert report.files[bad.file].n_rows == n_rows
        # The quarantined row is the one named; the kept rows are the others.
        expected_id = case_rows()[bad.row - 1].split(",")[0] if bad.id != "duplicate case_id" else "C0001"
        assert rec["case_id"] == expected_id
        if bad.id != "duplicate case_id":
            assert expected_id not in set(loaded.hospital.cases["case_id"])


# The CLI on a representative subset: exit 2 and the message on stderr.
CLI_SUBSET = [
    "missing settings.toml",
    "missing required column",
    "non-UTF-8 file",
    "unbalanced quote",
    "duplicate room id",
    "overlapping blocks",
    "settings bad TOML",
    "staffing non-integer",
]


@pytest.mark.parametrize("bad", [_params(b) for b in BAD_INPUTS if b.id in CLI_SUBSET])
def test_cli_validate_rejects_bad_input(bad: Bad, tmp_path: Path) -> None:
    folder = make_folder(tmp_path / "h", bad.files())
    res = run_cli("validate", "--data", str(folder))
    assert res.returncode == 2, res.stderr
    lines = res.stderr.splitlines()
    assert lines[0] == "error: bad input"
    prefix = where(bad.file, bad.row, bad.column) + ": "
    assert any(line.startswith(prefix) and bad.text in line for line in lines), res.stderr
    assert "Traceback" not in res.stderr


def test_cli_validate_ok_on_mini_hospital(mini_hospital: Path) -> None:
    res = run_cli("validate", "--data", str(mini_hospital))
    assert res.returncode == 0, res.stderr
    assert "cases.csv" in res.stdout and "rooms.csv" in res.stdout


def test_cli_validate_quarantine_is_not_an_error(tmp_path: Path) -> None:
    folder = make_folder(tmp_path / "h", {"cases.csv": cases_text(cases_with(3, "surgery_date", "2026-13-01"))})
    res = run_cli("validate", "--data", str(folder))
    assert res.returncode == 0, res.stderr
    assert "quarantined rows" in res.stdout and "'2026-13-01' is not a date" in res.stdout


# --------------------------------------------------------------------------- beyond the table


def test_valid_mini_hospital_loads_typed(mini_hospital: Path) -> None:
    loaded = load_hospital(mini_hospital)
    h = loaded.hospital
    assert loaded.report.n_quarantined == 0 and not loaded.report.rejected
    assert len(h.cases) == len(case_rows()) and len(h.rooms) == 3 and len(h.staffing) == 2
    assert list(h.cases.columns) == list(C.CASES_COLUMNS)
    assert str(h.cases["surgery_date"].dtype) == "datetime64[us]"
    assert str(h.cases["wheels_in"].dtype) == "datetime64[us]"
    assert h.cases["booked_minutes"].dtype == "float64"
    assert h.rooms.loc[h.rooms["room_id"] == "OR1", "capabilities"].item() == "laparoscopy;robot"
    assert h.name == "Mini Test Hospital"
    assert h.as_of() == pd.Timestamp("2027-01-04")
    assert list(h.cases.index) == list(range(len(h.cases)))


def test_every_problem_is_listed_in_one_pass(tmp_path: Path) -> None:
    folder = make_folder(
        tmp_path / "h",
        {
            "rooms.csv": ROOMS + "OR3,North,,07:30,15:30\n",
            "staffing.csv": STAFFING.replace("2027-01-05,2,2,3", "2027-01-05,-2,2,3"),
            "settings.toml": SETTINGS.replace("pacu_minutes = 75\n", ""),
        },
    )
    with pytest.raises(InputError) as info:
        load_hospital(folder)
    files = {p.file for p in info.value.problems}
    assert {"rooms.csv", "staffing.csv", "settings.toml"} <= files


def test_parse_failure_is_not_reported_again(tmp_path: Path) -> None:
    # A value that does not parse used to come back as "required value is missing" and, for
    # times, as a broken row rule too. Each row and column is now blamed once.
    folder = make_folder(
        tmp_path / "h",
        {
            "rooms.csv": ROOMS.replace("OR3,North,,07:30", "OR3,North,,7h30"),
            "staffing.csv": STAFFING + "2027-01-06,x,1,1\n",
        },
    )
    with pytest.raises(InputError) as info:
        load_hospital(folder)
    rows = [(p.file, p.row, p.column, p.problem) for p in info.value.problems if p.row is not None]
    assert rows == [
        ("rooms.csv", 3, "open_time", "'7h30' is not a time of day (HH:MM, 00:00 to 23:59)"),
        ("staffing.csv", 3, "staffed_rooms", "'x' is not a number"),
    ]


def test_one_corrupt_timestamp_in_a_large_file(tmp_path: Path) -> None:
    base = case_rows()
    rows = []
    for k in range(10_000):
        cells = base[k % len(base)].split(",")
        cells[0] = f"X{k:06d}"
        rows.append(",".join(cells))
    bad = 6_000
    assert rows[bad].split(",")[2] == "completed"
    cells = rows[bad].split(",")
    cells[HEADER.index("wheels_out")] = "2026-12-0l T1O:30"
    rows[bad] = ",".join(cells)
    folder = make_folder(tmp_path / "big", {"cases.csv": cases_text(rows)})
    loaded = load_hospital(folder)
    rep = loaded.report
    assert rep.files["cases.csv"].n_rows == 10_000
    assert rep.n_quarantined == 1
    assert len(loaded.hospital.cases) == 9_999
    assert rep.quarantine.to_dict("records") == [
        {
            "file": "cases.csv",
            "row": bad + 1,
            "case_id": f"X{bad:06d}",
            "column": "wheels_out",
            "reason": "'2026-12-0l T1O:30' is not a datetime (YYYY-MM-DDTHH:MM)",
        }
    ]
    assert f"X{bad:06d}" not in set(loaded.hospital.cases["case_id"])
    assert rep.summary().set_index("file").loc["cases.csv", "quarantined"] == 1


def test_too_many_bad_rows_reject_the_file(tmp_path: Path) -> None:
    rows = case_rows()
    for r in range(1, 11):  # 10 of 67 rows: 14.9% > 5%
        cells = rows[r - 1].split(",")
        cells[1] = "someday"
        rows[r - 1] = ",".join(cells)
    folder = make_folder(tmp_path / "h", {"cases.csv": cases_text(rows)})
    with pytest.raises(InputError) as info:
        load_hospital(folder)
    first = info.value.problems[0]
    assert (first.file, first.row, first.column) == ("cases.csv", None, None)
    assert "10 of 67 rows (14.9%) have problems, more than the allowed 5.0%: the file is rejected" in first.problem
    assert "'surgery_date' 10" in first.problem
    assert has_problem(info.value.problems, "cases.csv", 10, "surgery_date", "'someday' is not a date")
    # A looser limit lets the same file load, with the rows quarantined.
    loaded = load_hospital(folder, ValidationParams(max_quarantine_share=0.2))
    assert loaded.report.n_quarantined == 10
    assert len(loaded.hospital.cases) == 57


@pytest.mark.parametrize("value", [1.5, -0.1, float("nan"), "0.1"])
def test_validation_params_reject_bad_share(value: object) -> None:
    with pytest.raises(ValueError, match="max_quarantine_share"):
        ValidationParams(max_quarantine_share=value)  # type: ignore[arg-type]


def test_missing_optional_columns_still_load(tmp_path: Path) -> None:
    optional = ["procedure_name", "room_id", "booked_minutes", "booked_at", "procedure_start", "procedure_end",
                "urgency", "required_equipment", "asa_class", "bmi", "site"]
    folder = make_folder(tmp_path / "h", {"cases.csv": cases_without(*optional)})
    loaded = load_hospital(folder)
    cases = loaded.hospital.cases
    assert len(cases) == len(case_rows()) and loaded.report.n_quarantined == 0
    assert list(cases.columns) == list(C.CASES_COLUMNS)
    assert cases["booked_minutes"].isna().all() and cases["booked_minutes"].dtype == "float64"
    assert cases["booked_at"].isna().all() and str(cases["booked_at"].dtype) == "datetime64[us]"
    assert (cases["urgency"] == "elective").all()
    assert (cases["required_equipment"] == "").all()
    warnings = loaded.report.files["cases.csv"].warnings
    assert any(w.startswith("optional columns not given: ") and "booked_minutes" in w for w in warnings)
    assert loaded.report.summary().set_index("file").loc["cases.csv", "status"] == "warnings"


def test_missing_surgeon_column_loads_with_warning(tmp_path: Path) -> None:
    folder = make_folder(tmp_path / "h", {"cases.csv": cases_without("surgeon_id")})
    loaded = load_hospital(folder)
    assert (loaded.hospital.cases["surgeon_id"] == "unknown").all()
    assert len(loaded.hospital.cases) == len(case_rows())
    assert any("no surgeon_id column" in w for w in loaded.report.files["cases.csv"].warnings)


def test_extra_columns_are_kept(tmp_path: Path) -> None:
    rows = [r + f",ward {i % 3}," for i, r in enumerate(case_rows())]
    folder = make_folder(
        tmp_path / "h",
        {
            "cases.csv": cases_text(rows, CASES_HEADER + ",ward,notes"),
            "surgeons.csv": "surgeon_id,service_line,grade\nS1,Orthopedics,\nS2,Orthopedics,fellow\n"
            "S3,General Surgery,\nS4,Urology,consultant\n",
        },
    )
    loaded = load_hospital(folder)
    cases = loaded.hospital.cases
    assert list(cases.columns) == [*C.CASES_COLUMNS, "ward", "notes"]
    assert cases["ward"].tolist()[:4] == ["ward 0", "ward 1", "ward 2", "ward 0"]
    assert cases["notes"].isna().all()
    surgeons = loaded.hospital.surgeons
    assert surgeons["grade"].isna().tolist() == [True, False, True, False]
    assert surgeons["grade"].dropna().tolist() == ["fellow", "consultant"]


def test_codes_are_case_insensitive(tmp_path: Path) -> None:
    rows = cases_with(1, "status", "Completed")
    cells = rows[2].split(",")
    cells[HEADER.index("urgency")] = "URGENT"
    rows[2] = ",".join(cells)
    loaded = load_hospital(make_folder(tmp_path / "h", {"cases.csv": cases_text(rows)}))
    assert loaded.report.n_quarantined == 0
    cases = loaded.hospital.cases.set_index("case_id")
    assert cases.loc["C0001", "status"] == "completed" and cases.loc["C0003", "urgency"] == "urgent"


def test_rows_off_their_line_say_which_line(tmp_path: Path) -> None:
    # Row numbers are data rows (Problem's contract); a blank line and a multi-line cell move
    # row 3 to line 6 of the file, and the message says so.
    rows = case_rows()
    rows[0] = rows[0].replace("Total hip arthroplasty", '"Total hip\narthroplasty"')
    rows = [*rows[:2], "", *rows[2:]]
    cells = rows[3].split(",")
    cells[HEADER.index("patient_age")] = "-1"
    rows[3] = ",".join(cells)
    loaded = load_hospital(make_folder(tmp_path / "h", {"cases.csv": cases_text(rows)}))
    q = loaded.report.quarantine
    assert q[["row", "case_id", "column"]].values.tolist() == [[3, "C0003", "patient_age"]]
    assert q["reason"].item() == "-1 is out of range: patient_age must be within 0..120 years [row 3 is on line 6 of the file]"
    assert loaded.hospital.cases["procedure_name"].iloc[0] == "Total hip\narthroplasty"
    assert "1 empty row skipped" in loaded.report.files["cases.csv"].warnings


def test_service_lines_from_settings_are_known(tmp_path: Path) -> None:
    folder = make_folder(
        tmp_path / "h",
        {
            "cases.csv": cases_text(cases_with(3, "service_line", "Cardiology")),
            "settings.toml": SETTINGS + 'service_lines = ["Cardiology"]\n',
        },
    )
    assert load_hospital(folder).report.n_quarantined == 0


def test_optional_files_may_be_absent(tmp_path: Path) -> None:
    folder = make_folder(tmp_path / "h", {"blocks.csv": None, "staffing.csv": None})
    loaded = load_hospital(folder)
    assert len(loaded.hospital.blocks) == 0 and list(loaded.hospital.blocks.columns) == list(C.BLOCKS_COLUMNS)
    # Without staffing no room is staffed: validation says what that means for a plan.
    (warning,) = loaded.report.files["staffing.csv"].warnings
    assert warning.startswith("file not given (optional)") and "a plan defers every case" in warning
    assert loaded.report.files["blocks.csv"].warnings == ["file not given (optional)"]


def test_missing_folder_is_bad_input(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        load_hospital(tmp_path / "nowhere")


def test_load_cases_on_a_lone_file(tmp_path: Path) -> None:
    path = tmp_path / "history.csv"
    rows = cases_with(5, "wheels_out", "2026-12-02T07:00")  # before wheels_in
    rows = [r.replace(",OR2,", ",OR99,") for r in rows]  # rooms unknown: no reference checks here
    path.write_text(cases_text(rows))
    df, report = load_cases(path)
    assert len(df) == len(case_rows()) - 1
    assert report.n_quarantined == 1
    rec = report.quarantine.iloc[0]
    assert (rec["file"], rec["row"], rec["column"], rec["case_id"]) == ("history.csv", 5, "wheels_out", "C0005")
    assert "OR99" in set(df["room_id"])


def test_load_cases_bad_file_names_it(tmp_path: Path) -> None:
    path = tmp_path / "history.csv"
    path.write_bytes(cases_text(case_rows()).replace("Main", "Mäin", 1).encode("latin-1"))
    with pytest.raises(InputError) as info:
        load_cases(path)
    assert info.value.problems[0].file == "history.csv"
    with pytest.raises(InputError, match="does not exist"):
        load_cases(tmp_path / "nope.csv")


def test_cli_validate_reads_every_site_of_a_network(tmp_path: Path) -> None:
    """A network folder (network.toml) is validated site by site, as ingest takes it, instead of
    being read as one hospital folder with every file missing."""
    import json

    from engine.cli import main

    net = tmp_path / "net"
    assert main(["generate", "--out", str(net), "--sites", "2", "--rooms", "2", "--history-days", "30",
                 "--horizon-days", "3"]) == 0
    assert (net / "network.toml").is_file()
    js = tmp_path / "v.json"
    assert main(["validate", "--data", str(net), "--json", str(js)]) == 0
    sites = json.loads(js.read_text())["sites"]
    assert len(sites) == 2 and all(p.is_dir() and p.name in sites for p in net.iterdir() if p.is_dir())
