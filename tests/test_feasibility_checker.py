"""The independent feasibility checker (tests/feasibility.py) on the mini hospital.

A hand-made feasible schedule passes; each test then breaks exactly one hard rule
(docs/hard-rules.md) and expects that rule, and only that rule, to be reported.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from engine.hospital import load_hospital
from tests.feasibility import (
    SCHEDULE_COLUMNS,
    Violation,
    assert_feasible,
    check_schedule,
    read_schedule,
    rules_broken,
)
from tests.minihospital import STAFFING, case_rows, write_mini_hospital

D1, D2 = "2027-01-04", "2027-01-05"

# The 6 booked cases of the mini hospital: case_id -> (surgeon, service line, surgery_date).
BOOKED = {
    "C0062": ("S1", "Orthopedics", D1),  # fluoro
    "C0063": ("S2", "Orthopedics", D1),
    "C0064": ("S3", "General Surgery", D1),
    "C0065": ("S4", "Urology", D1),  # robot
    "C0066": ("S1", "Orthopedics", D2),  # fluoro
    "C0067": ("S2", "Orthopedics", D2),
}

# A feasible placement: case_id -> (date, room, start, P50 minutes, P80 minutes).
FEASIBLE = {
    "C0062": (D1, "OR2", "07:30", 120, 150),  # Orthopedics service block
    "C0063": (D1, "OR2", "10:00", 120, 150),  # exactly 30 min turnover after C0062
    "C0064": (D1, "OR3", "07:30", 120, 150),  # General Surgery service block
    "C0065": (D1, "OR1", "08:00", 120, 150),  # S4's own block, robot room
    "C0066": (D2, "OR2", "07:30", 120, 150),  # S1's own block
    "C0067": (D2, "OR3", "08:00", 120, 150),  # open time (OR3 has no block on 01-05)
}

PACU_MINUTES = 75


def row(case_id: str, date: str | None, room: str | None, start: str | None, p50: float = 120, p80: float = 150,
        status: str = "scheduled", reason: str = "fits its block", pacu: float = PACU_MINUTES, surgeon: str | None = None) -> dict:
    sg, sl, _ = BOOKED.get(case_id, ("S1", "Orthopedics", D1))
    out = {"case_id": case_id, "surgeon_id": surgeon or sg, "service_line": sl, "date": date or "", "room_id": room or "",
           "status": status, "start": "", "end_p50": "", "end_p80": "", "pacu_in": "", "pacu_out": "", "reason": reason}
    if start:
        t0 = pd.Timestamp(start) if "T" in start else pd.Timestamp(f"{date}T{start}")
        fmt = "%Y-%m-%dT%H:%M"
        end50 = t0 + pd.Timedelta(minutes=p50)
        out.update(start=t0.strftime(fmt), end_p50=end50.strftime(fmt),
                   end_p80=(t0 + pd.Timedelta(minutes=p80)).strftime(fmt), pacu_in=end50.strftime(fmt),
                   pacu_out=(end50 + pd.Timedelta(minutes=pacu)).strftime(fmt))
    return out


def schedule(changes: dict[str, dict] | None = None, drop: tuple[str, ...] = (), extra: list[dict] = ()) -> pd.DataFrame:
    """The feasible schedule as schedule.csv text cells, with some cases re-placed."""
    rows = []
    for cid, (date, room, start, p50, p80) in FEASIBLE.items():
        if cid in drop:
            continue
        kw = {"date": date, "room": room, "start": start, "p50": p50, "p80": p80}
        kw.update((changes or {}).get(cid, {}))
        rows.append(row(cid, **kw))
    return pd.DataFrame([*rows, *extra], columns=list(SCHEDULE_COLUMNS))


def hospital(tmp_path: Path, name: str = "mini", cases_rows: list[str] | None = None, **files: str):
    return load_hospital(write_mini_hospital(tmp_path / name, cases_rows, **files)).hospital


@pytest.fixture
def mini(tmp_path: Path):
    return hospital(tmp_path)


def only(violations: list[Violation], rule: str) -> list[Violation]:
    """Assert every violation is of ``rule`` (no flood of other rules); return them."""
    assert violations, f"expected a {rule} violation, got none"
    assert rules_broken(violations) == {rule}, "\n".join(map(str, violations))
    return violations


# --------------------------------------------------------------------------- feasible


def test_feasible_schedule_passes(mini, tmp_path):
    sched = schedule()
    assert check_schedule(mini, sched) == []
    assert_feasible(mini, sched)
    # the same through a CSV file and a folder path
    path = tmp_path / "schedule.csv"
    sched.to_csv(path, index=False)
    assert check_schedule(str(tmp_path / "mini"), path) == []
    # an explicit horizon that is wider than the booked days is fine too
    assert check_schedule(mini, sched, horizon_dates=[D1, D2, "2027-01-06"]) == []


def test_deferred_case_without_room_is_feasible(mini):
    sched = schedule(drop=("C0067",), extra=[row("C0067", D2, None, None, status="deferred", reason="no open room")])
    assert check_schedule(mini, sched) == []
    # a deferred row may also leave the date empty
    sched = schedule(drop=("C0067",), extra=[row("C0067", None, None, None, status="deferred", reason="no room")])
    assert check_schedule(mini, sched) == []


def test_assert_feasible_lists_violations(mini):
    with pytest.raises(AssertionError, match=r"H4 turnover 2027-01-04 OR2 \[C0062, C0063\]"):
        assert_feasible(mini, schedule({"C0063": {"start": "09:50"}}))


def test_rounding_within_tolerance_passes(mini):
    sched = schedule({"C0063": {"start": "09:59:45"}})  # 15 s short of the turnover: rounding
    sched.loc[sched.case_id == "C0063", "start"] = "2027-01-04T09:59:45"
    assert check_schedule(mini, sched) == []
    assert rules_broken(check_schedule(mini, sched, tolerance_minutes=0.1)) == {"H4"}


# --------------------------------------------------------------------------- H1


def test_h1_missing_case(mini):
    v = only(check_schedule(mini, schedule(drop=("C0063",))), "H1")
    assert len(v) == 1 and v[0].case_ids == ("C0063",) and "missing" in v[0].message


def test_h1_duplicated_case(mini):
    v = only(check_schedule(mini, schedule(extra=[row("C0062", D1, "OR2", "07:30")])), "H1")
    assert len(v) == 1 and "appears 2 times" in v[0].message


def test_h1_deferred_case_with_room(mini):
    sched = schedule(drop=("C0067",), extra=[row("C0067", D2, "OR3", "08:00", status="deferred", reason="late")])
    v = only(check_schedule(mini, sched), "H1")
    assert len(v) == 1 and "empty room_id" in v[0].message


@pytest.mark.parametrize(
    "column, value, words",
    [
        ("reason", "", "reason is empty"),
        ("status", "Scheduled", "status is 'Scheduled'"),
        ("status", "", "status is empty"),
        ("end_p80", "", "needs end_p80"),
        ("surgeon_id", "S2", "cases.csv says 'S1'"),
        ("start", "2027-01-04T07:30+01:00", "time-zone offset"),
        ("start", "soon", "not a datetime"),
        ("date", "2027-01-04T00:00", "not a date"),
    ],
)
def test_h1_bad_cells(mini, column, value, words):
    sched = schedule()
    sched.loc[sched.case_id == "C0062", column] = value
    v = only(check_schedule(mini, sched), "H1")
    assert any(words in x.message for x in v), "\n".join(map(str, v))


def test_h1_unknown_room(mini):
    sched = schedule()
    sched.loc[sched.case_id == "C0062", "room_id"] = "OR9"
    v = check_schedule(mini, sched)
    # an unknown room is H1; it still counts as a fourth room used on 01-04 (3 staffed)
    assert rules_broken(v) == {"H1", "H7"}
    assert any("not in rooms.csv" in x.message for x in v if x.rule == "H1")


def test_h1_cases_that_do_not_belong(mini):
    extra = [row("C9999", None, None, None, status="deferred", reason="?"),  # unknown id
             row("C0001", None, None, None, status="deferred", reason="?")]  # a completed history case
    v = only(check_schedule(mini, schedule(extra=extra)), "H1")
    assert {x.case_id for x in v} == {"C9999", "C0001"}


def test_h1_missing_contract_column(mini):
    v = only(check_schedule(mini, schedule().drop(columns=["reason"])), "H1")
    assert any("column reason" in x.message and "missing" in x.message for x in v)


def test_h1_explicit_horizon_excludes_other_days(mini):
    # with a horizon of 01-04 only, the 01-05 cases do not belong (H1) and are off-horizon (H10)
    v = check_schedule(mini, schedule(), horizon_dates=[D1])
    assert rules_broken(v) == {"H1", "H10"}
    assert {x.case_id for x in v} == {"C0066", "C0067"}


def test_h1_times_out_of_order(mini):
    sched = schedule()
    sched.loc[sched.case_id == "C0064", "end_p80"] = "2027-01-04T09:00"  # before end_p50 09:30
    only(check_schedule(mini, sched), "H1")


# --------------------------------------------------------------------------- H2


def test_h2_robot_case_in_room_without_robot(mini):
    # the robot case moves to OR3's open time on 01-05: allowed everywhere except equipment
    v = only(check_schedule(mini, schedule({"C0065": {"date": D2, "room": "OR3", "start": "10:30"}})), "H2")
    assert len(v) == 1 and v[0].case_id == "C0065" and "robot" in v[0].message


def test_h2_room_lost_its_equipment(tmp_path):
    rooms = "room_id,site,capabilities,open_time,close_time\nOR1,Main,robot;laparoscopy,07:30,17:00\nOR2,Main,,07:30,17:00\nOR3,North,,07:30,15:30\n"
    v = only(check_schedule(hospital(tmp_path, **{"rooms.csv": rooms}), schedule()), "H2")
    assert {x.case_id for x in v} == {"C0062", "C0066"}


# --------------------------------------------------------------------------- H3


def test_h3_start_before_open(mini):
    v = only(check_schedule(mini, schedule({"C0067": {"start": "07:00"}})), "H3")
    assert len(v) == 1 and "before room OR3 opens" in v[0].message


def test_h3_end_p80_past_close_plus_cap(mini):
    # OR3 closes 15:30, cap 120 -> 17:30; P80 end 17:35 (P50 end 16:00 is fine)
    v = only(check_schedule(mini, schedule({"C0067": {"start": "14:00", "p50": 120, "p80": 215}})), "H3")
    assert len(v) == 1 and "overtime cap" in v[0].message
    # 17:30 exactly is allowed
    assert check_schedule(mini, schedule({"C0067": {"start": "14:00", "p50": 120, "p80": 210}})) == []


def test_h3_no_case_starts_at_or_after_close(mini):
    # OR3 (open time on 01-05) closes 15:30: a short case starting 15:30 would end within the cap
    v = only(check_schedule(mini, schedule({"C0067": {"start": "15:30", "p50": 20, "p80": 30}})), "H3")
    assert len(v) == 1 and "at or after room OR3's close" in v[0].message
    assert check_schedule(mini, schedule({"C0067": {"start": "15:29", "p50": 20, "p80": 30}})) == []


def test_h3_overtime_cap_from_settings(tmp_path):
    from tests.minihospital import SETTINGS

    h = hospital(tmp_path, **{"settings.toml": SETTINGS + "overtime_cap_minutes = 60\n"})
    v = only(check_schedule(h, schedule({"C0067": {"start": "14:00", "p50": 120, "p80": 200}})), "H3")  # 17:20 > 16:30
    assert len(v) == 1


def test_h3_case_not_on_its_date(mini):
    sched = schedule()
    sched.loc[sched.case_id == "C0064", "date"] = D1
    sched.loc[sched.case_id == "C0064", ["start", "end_p50", "end_p80", "pacu_in", "pacu_out"]] = [
        "2027-01-03T23:00", "2027-01-04T08:00", "2027-01-04T08:30", "2027-01-04T08:00", "2027-01-04T09:15"]
    v = check_schedule(mini, sched)
    assert rules_broken(v) <= {"H3", "H9"}  # it starts before its block too
    assert any(x.rule == "H3" and "on its date" in x.message for x in v)


# --------------------------------------------------------------------------- H4


def test_h4_turnover_too_short(mini):
    v = only(check_schedule(mini, schedule({"C0063": {"start": "09:50"}})), "H4")
    assert len(v) == 1 and v[0].case_ids == ("C0062", "C0063") and v[0].room_id == "OR2"


def test_h4_case_nested_inside_a_longer_one(mini):
    # C0063 starts after C0062 but C0062 is long: C0063 sits inside it
    sched = schedule({"C0062": {"p50": 300, "p80": 320}, "C0063": {"start": "08:00", "p50": 30, "p80": 40},
                      "C0064": {"start": "07:30"}})
    v = check_schedule(mini, sched)
    assert "H4" in rules_broken(v)
    assert rules_broken(v) <= {"H4", "H8"}  # PACU may also be touched by the re-timing


# --------------------------------------------------------------------------- H5


def test_h5_surgeon_in_two_rooms(tmp_path):
    # a variant where S1 also does C0067 (01-05, OR3 open time) while operating in OR2
    rows = [r.replace(",Orthopedics,27447,Total knee arthroplasty,S2,", ",Orthopedics,27447,Total knee arthroplasty,S1,")
            if r.startswith("C0067,") else r for r in case_rows()]
    h = hospital(tmp_path, cases_rows=rows)
    sched = schedule()
    sched.loc[sched.case_id == "C0067", "surgeon_id"] = "S1"
    v = only(check_schedule(h, sched), "H5")
    assert len(v) == 1 and set(v[0].case_ids) == {"C0066", "C0067"}
    # back to back in different rooms is fine ([start, end_p80) is half-open)
    assert check_schedule(h, schedule({"C0067": {"start": "10:00"}}).assign(
        surgeon_id=lambda d: d.surgeon_id.where(d.case_id != "C0067", "S1"))) == []


# --------------------------------------------------------------------------- H6


def test_h6_no_block_for_surgeon_or_service(mini):
    # C0064 (S3, General Surgery) into OR1 on 01-04, which is S4's surgeon block
    v = only(check_schedule(mini, schedule({"C0064": {"room": "OR1", "start": "10:30"}})), "H6")
    assert len(v) == 1 and v[0].case_id == "C0064"


def test_h6_surgeon_block_is_for_that_surgeon_only(mini):
    # C0067 (S2, Orthopedics) into OR2 on 01-05: S1's own block, not an Orthopedics service block
    v = only(check_schedule(mini, schedule({"C0067": {"room": "OR2", "start": "10:00"}})), "H6")
    assert v[0].case_id == "C0067"


def test_h6_open_time_only_when_allowed(mini):
    v = only(check_schedule(mini, schedule(), allow_open_time=False), "H6")
    assert len(v) == 1 and v[0].case_id == "C0067" and "open time" in v[0].message


# --------------------------------------------------------------------------- H7


def test_h7_more_rooms_than_staffed(mini):
    # C0064 moves to OR1 (General Surgery block) on 01-05: three rooms, two staffed
    v = only(check_schedule(mini, schedule({"C0064": {"date": D2, "room": "OR1", "start": "08:00"}})), "H7")
    assert len(v) == 1 and "only 2 staffed rooms" in v[0].message


def test_h7_anesthesia_teams(tmp_path):
    staffing = STAFFING.replace("2027-01-04,3,3,4", "2027-01-04,3,2,4")
    v = only(check_schedule(hospital(tmp_path, **{"staffing.csv": staffing}), schedule()), "H7")
    assert len(v) == 1 and "anesthesia teams" in v[0].message


def test_h7_date_without_staffing_row_has_no_capacity(tmp_path):
    staffing = "date,staffed_rooms,anesthesia_teams,pacu_beds\n2027-01-04,3,3,4\n"
    v = check_schedule(hospital(tmp_path, **{"staffing.csv": staffing}), schedule())
    assert rules_broken(v) == {"H7", "H8"}  # no rooms and no PACU beds on 01-05
    assert all(x.date.isoformat() == D2 for x in v)


# --------------------------------------------------------------------------- H8


def test_h8_more_patients_than_beds(tmp_path):
    # 01-04: C0062 and C0064 recover 09:30-10:45, C0065 10:00-11:15: 3 at once, 2 beds
    staffing = STAFFING.replace("2027-01-04,3,3,4", "2027-01-04,3,3,2")
    v = only(check_schedule(hospital(tmp_path, **{"staffing.csv": staffing}), schedule()), "H8")
    assert len(v) == 1 and set(v[0].case_ids) == {"C0062", "C0064", "C0065"} and "3 patients" in v[0].message


def test_h8_back_to_back_stays_share_a_bed(tmp_path):
    staffing = STAFFING.replace("2027-01-05,2,2,3", "2027-01-05,2,2,1")
    h = hospital(tmp_path, **{"staffing.csv": staffing})
    # C0066 recovers 09:30-10:45; C0067 ends at 10:45 and takes the bed as it frees
    assert check_schedule(h, schedule({"C0067": {"start": "08:45"}})) == []
    only(check_schedule(h, schedule({"C0067": {"start": "08:44"}})), "H8")


def test_h8_pacu_stay_shorter_than_setting(mini):
    sched = schedule()
    sched.loc[sched.case_id == "C0062", "pacu_out"] = "2027-01-04T10:00"
    v = only(check_schedule(mini, sched), "H8")
    assert "pacu_minutes" in v[0].message


# --------------------------------------------------------------------------- H9

BLOCKS_HALF_DAY = """date,room_id,service_line,surgeon_id,start_time,end_time
2027-01-04,OR1,Urology,S4,07:30,17:00
2027-01-04,OR2,Orthopedics,,07:30,17:00
2027-01-04,OR3,General Surgery,,07:30,12:00
2027-01-05,OR1,General Surgery,,07:30,17:00
2027-01-05,OR2,Orthopedics,S1,07:30,17:00
"""


def test_h9_case_runs_past_a_block_that_does_not_reach_close(tmp_path):
    h = hospital(tmp_path, **{"blocks.csv": BLOCKS_HALF_DAY})
    assert check_schedule(h, schedule()) == []
    v = only(check_schedule(h, schedule({"C0064": {"start": "11:00"}})), "H9")  # 11:00-13:00, block ends 12:00
    assert len(v) == 1 and v[0].case_id == "C0064"


def test_h9_case_starts_before_its_block(tmp_path):
    blocks = BLOCKS_HALF_DAY.replace("OR3,General Surgery,,07:30,12:00", "OR3,General Surgery,,09:00,15:30")
    h = hospital(tmp_path, **{"blocks.csv": blocks})
    only(check_schedule(h, schedule()), "H9")  # C0064 at 07:30, the room is open but the block is not
    assert check_schedule(h, schedule({"C0064": {"start": "09:00"}})) == []


def test_h9_two_blocks_are_not_merged(tmp_path):
    blocks = BLOCKS_HALF_DAY + "2027-01-04,OR3,General Surgery,,12:00,15:30\n"
    h = hospital(tmp_path, **{"blocks.csv": blocks})
    only(check_schedule(h, schedule({"C0064": {"start": "11:00"}})), "H9")


def test_h9_overtime_allowed_when_block_runs_to_close(mini):
    # OR3's General Surgery block runs to the room's close (15:30): 14:00-16:00 P50, 16:30 P80 is fine
    assert check_schedule(mini, schedule({"C0064": {"start": "14:00"}})) == []


def test_h9_a_case_starting_after_its_block_is_not_in_it(mini):
    # The cap lets a case run past a block that reaches close, not start after it.
    v = check_schedule(mini, schedule({"C0064": {"start": "15:35", "p50": 20, "p80": 30}}))
    assert rules_broken(v) == {"H3", "H9"} and {x.case_id for x in v} == {"C0064"}


# --------------------------------------------------------------------------- H10


def locked_frame(*rows: tuple[str, str, str, str]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["case_id", "date", "room_id", "start"])


def test_h10_locked_case_keeps_its_place(mini):
    locked = locked_frame(("C0063", D1, "OR2", "2027-01-04T10:00"))
    assert check_schedule(mini, schedule(), locked=locked) == []
    v = only(check_schedule(mini, schedule({"C0063": {"start": "10:30"}}), locked=locked), "H10")
    assert len(v) == 1 and v[0].case_id == "C0063" and "start 2027-01-04 10:30" in v[0].message


def test_h10_locked_case_deferred_or_missing(mini):
    locked = locked_frame(("C0067", D2, "OR3", "2027-01-05T08:00"))
    sched = schedule(drop=("C0067",), extra=[row("C0067", D2, None, None, status="deferred", reason="x")])
    v = only(check_schedule(mini, sched, locked=locked), "H10")
    assert "not 'scheduled'" in v[0].message
    v = check_schedule(mini, schedule(drop=("C0067",)), locked=locked)
    assert rules_broken(v) == {"H1", "H10"}


def test_h10_date_outside_horizon(tmp_path):
    staffing = STAFFING + "2027-01-06,2,2,3\n2027-01-03,2,2,3\n"
    h = hospital(tmp_path, **{"staffing.csv": staffing})
    moved = schedule({"C0067": {"date": "2027-01-06"}})  # OR3 has no block on 01-06: open time
    v = only(check_schedule(h, moved), "H10")
    assert len(v) == 1 and "outside the planning horizon" in v[0].message
    assert check_schedule(h, moved, horizon_dates=[D1, D2, "2027-01-06"]) == []
    early = schedule({"C0067": {"date": "2027-01-03"}})
    v = only(check_schedule(h, early), "H10")
    assert "before the planning date 2027-01-04" in v[0].message


# --------------------------------------------------------------------------- read_schedule


def test_read_schedule_csv_round_trip(tmp_path):
    sched = schedule(drop=("C0067",), extra=[row("C0067", D2, None, None, status="deferred", reason="no room, sorry")])
    parsed = read_schedule(sched)
    assert list(parsed.columns) == list(SCHEDULE_COLUMNS)
    assert parsed.attrs["schedule_problems"] == []
    for col in ("date", "start", "end_p50", "end_p80", "pacu_in", "pacu_out"):
        assert str(parsed[col].dtype).startswith("datetime64"), col
    assert (parsed["date"] == parsed["date"].dt.normalize()).all()
    deferred = parsed[parsed.case_id == "C0067"].iloc[0]
    assert pd.isna(deferred["room_id"]) and pd.isna(deferred["start"]) and deferred["reason"] == "no room, sorry"
    assert parsed.loc[parsed.case_id == "C0062", "start"].iloc[0] == pd.Timestamp("2027-01-04T07:30")

    # write it in the contract's format and read it back
    out = parsed.copy()
    out["date"] = out["date"].dt.strftime("%Y-%m-%d")
    for col in ("start", "end_p50", "end_p80", "pacu_in", "pacu_out"):
        out[col] = out[col].dt.strftime("%Y-%m-%dT%H:%M")
    path = tmp_path / "schedule.csv"
    out.to_csv(path, index=False)
    back = read_schedule(path)
    pd.testing.assert_frame_equal(back, parsed)
    # reading a parsed frame again changes nothing
    pd.testing.assert_frame_equal(read_schedule(back), back)
    # extra columns are kept after the contract columns
    pd.DataFrame(sched.assign(score=1.5)).to_csv(path, index=False)
    assert list(read_schedule(path).columns) == [*SCHEDULE_COLUMNS, "score"]


def test_read_schedule_reports_cells_that_do_not_parse():
    sched = schedule()
    sched.loc[0, "start"] = "2027-01-04T07:30Z"
    sched.loc[1, "date"] = "04/01/2027"
    parsed = read_schedule(sched)
    problems = parsed.attrs["schedule_problems"]
    assert [(r, c) for r, c, _ in problems] == [(2, "date"), (1, "start")]
    assert pd.isna(parsed.loc[0, "start"]) and pd.isna(parsed.loc[1, "date"])
    # the problems survive a second read (values are already missing by then)
    assert read_schedule(parsed).attrs["schedule_problems"] == problems
