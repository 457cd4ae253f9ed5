"""A tiny hand-written hospital folder for fast tests (independent of the generator)."""
from __future__ import annotations

from pathlib import Path

ROOMS = """room_id,site,capabilities,open_time,close_time
OR1,Main,robot;laparoscopy,07:30,17:00
OR2,Main,fluoro,07:30,17:00
OR3,North,,07:30,15:30
"""
SURGEONS = """surgeon_id,service_line
S1,Orthopedics
S2,Orthopedics
S3,General Surgery
S4,Urology
"""
BLOCKS = """date,room_id,service_line,surgeon_id,start_time,end_time
2027-01-04,OR1,Urology,S4,07:30,17:00
2027-01-04,OR2,Orthopedics,,07:30,17:00
2027-01-04,OR3,General Surgery,,07:30,15:30
2027-01-05,OR1,General Surgery,,07:30,17:00
2027-01-05,OR2,Orthopedics,S1,07:30,17:00
"""
STAFFING = """date,staffed_rooms,anesthesia_teams,pacu_beds
2027-01-04,3,3,4
2027-01-05,2,2,3
"""
SETTINGS = """hospital_name = "Mini Test Hospital"
turnover_minutes = 30
pacu_minutes = 75
prime_time = "07:30-15:30"
as_of = "2027-01-04"
"""

CASES_HEADER = (
    "case_id,surgery_date,status,service_line,procedure_code,procedure_name,surgeon_id,room_id,"
    "booked_minutes,booked_at,scheduled_start,wheels_in,wheels_out,procedure_start,procedure_end,"
    "urgency,cancellation_reason,required_equipment,patient_age,patient_sex,asa_class,bmi,"
    "anesthesia_type,admission_type,site"
)


def case_rows() -> list[str]:
    """40 history cases (completed/cancelled) and 6 booked ones."""
    rows = []
    procs = [("27130", "Total hip arthroplasty", "Orthopedics", "S1", "OR2", "fluoro"),
             ("27447", "Total knee arthroplasty", "Orthopedics", "S2", "OR2", ""),
             ("47562", "Lap cholecystectomy", "General Surgery", "S3", "OR3", ""),
             ("55866", "Robotic prostatectomy", "Urology", "S4", "OR1", "robot")]
    n = 0
    for day in range(1, 21):
        date = f"2026-12-{day:02d}"
        for k, (code, name, sl, sg, room, eq) in enumerate(procs[: 2 + day % 3]):
            n += 1
            start_h = 7 + 2 * k
            if n % 10 == 0:
                rows.append(f"C{n:04d},{date},cancelled,{sl},{code},{name},{sg},{room},120,2026-11-20T10:00,"
                            f"{date}T{start_h:02d}:30,,,,,elective,patient not fit,{eq},61,F,3,31.5,general,inpatient,Main")
                continue
            dur = 90 + 7 * ((n * 13) % 11)
            end_min = 30 + dur
            eh, em = start_h + end_min // 60, end_min % 60
            rows.append(
                f"C{n:04d},{date},completed,{sl},{code},{name},{sg},{room},120,2026-11-20T10:00,"
                f"{date}T{start_h:02d}:30,{date}T{start_h:02d}:30,{date}T{eh:02d}:{em:02d},"
                f"{date}T{start_h:02d}:45,{date}T{eh:02d}:{max(em - 10, 0):02d},elective,,{eq},{50 + n % 30},M,2,27.0,general,outpatient,Main"
            )
    for j, (code, name, sl, sg, room, eq) in enumerate(procs + procs[:2]):
        n += 1
        date = "2027-01-04" if j < 4 else "2027-01-05"
        rows.append(f"C{n:04d},{date},booked,{sl},{code},{name},{sg},,120,2026-12-20T10:00,,,,,,elective,,{eq},55,F,2,29.0,general,outpatient,Main")
    return rows


def write_mini_hospital(folder: Path, cases_rows: list[str] | None = None, **overrides: str) -> Path:
    """Write the mini hospital; ``overrides`` replace whole files by name (e.g. rooms='...')."""
    folder.mkdir(parents=True, exist_ok=True)
    files = {
        "rooms.csv": ROOMS,
        "surgeons.csv": SURGEONS,
        "blocks.csv": BLOCKS,
        "staffing.csv": STAFFING,
        "settings.toml": SETTINGS,
        "cases.csv": "\n".join([CASES_HEADER, *(cases_rows if cases_rows is not None else case_rows())]) + "\n",
    }
    for key, text in overrides.items():
        files[key.replace("_", ".", 1) if "." not in key else key] = text
    for name, text in files.items():
        (folder / name).write_text(text)
    return folder
