"""The public file formats of CONTRACTS.md, as data: one place that names every column.

Other modules (validation, generator, importer, store) read these lists instead of
repeating column names.
"""
from __future__ import annotations

CASE_STATUSES = ("completed", "cancelled", "booked")
URGENCIES = ("elective", "urgent", "emergent")

# cases.csv: column -> kind. Kinds: str, date, datetime, float, list (';'-separated), int.
CASES_COLUMNS: dict[str, str] = {
    "case_id": "str",
    "surgery_date": "date",
    "status": "str",
    "service_line": "str",
    "procedure_code": "str",
    "procedure_name": "str",
    "surgeon_id": "str",
    "room_id": "str",
    "booked_minutes": "float",
    "booked_at": "datetime",
    "scheduled_start": "datetime",
    "wheels_in": "datetime",
    "wheels_out": "datetime",
    "procedure_start": "datetime",
    "procedure_end": "datetime",
    "urgency": "str",
    "cancellation_reason": "str",
    "required_equipment": "list",
    "patient_age": "float",
    "patient_sex": "str",
    "asa_class": "float",
    "bmi": "float",
    "anesthesia_type": "str",
    "admission_type": "str",
    "site": "str",
}
CASES_REQUIRED = ("case_id", "surgery_date", "status", "service_line", "procedure_code", "surgeon_id")

ROOMS_COLUMNS: dict[str, str] = {
    "room_id": "str",
    "site": "str",
    "capabilities": "list",
    "open_time": "time",
    "close_time": "time",
}
ROOMS_REQUIRED = tuple(ROOMS_COLUMNS)

SURGEONS_COLUMNS: dict[str, str] = {"surgeon_id": "str", "service_line": "str"}
SURGEONS_REQUIRED = tuple(SURGEONS_COLUMNS)

BLOCKS_COLUMNS: dict[str, str] = {
    "date": "date",
    "room_id": "str",
    "service_line": "str",
    "surgeon_id": "str",
    "start_time": "time",
    "end_time": "time",
}
BLOCKS_REQUIRED = ("date", "room_id", "service_line", "start_time", "end_time")

STAFFING_COLUMNS: dict[str, str] = {
    "date": "date",
    "staffed_rooms": "int",
    "anesthesia_teams": "int",
    "pacu_beds": "int",
}
STAFFING_REQUIRED = tuple(STAFFING_COLUMNS)

SETTINGS_REQUIRED = ("turnover_minutes", "pacu_minutes", "prime_time")

# schedule.csv (CONTRACTS.md section 2): columns in order, and the kinds of the non-text ones.
SCHEDULE_COLUMNS = ["case_id", "surgeon_id", "service_line", "date", "room_id", "status", "start", "end_p50",
                    "end_p80", "pacu_in", "pacu_out", "reason"]
SCHEDULE_KINDS = {"date": "date", "start": "datetime", "end_p50": "datetime", "end_p80": "datetime",
                  "pacu_in": "datetime", "pacu_out": "datetime"}
SCHEDULE_TIME_COLUMNS = tuple(c for c, k in SCHEDULE_KINDS.items() if k == "datetime")
# The columns a schedule must carry to be simulated or checked.
SCHEDULE_REQUIRED = ("case_id", "date", "room_id", "status", "start", "end_p50", "end_p80")

# "unknown" is allowed as a surgeon_id; such cases are not one person.
UNKNOWN_SURGEON = "unknown"


def surgeon_key(surgeon_id: object, case_id: object) -> str:
    """The person whose time a case takes: an unknown (or missing) surgeon is their own person."""
    if isinstance(surgeon_id, str) and surgeon_id and surgeon_id != UNKNOWN_SURGEON:
        return surgeon_id
    return f"{UNKNOWN_SURGEON}:{case_id}"

# file name -> (columns, required columns, required file?)
FILES: dict[str, tuple[dict[str, str], tuple[str, ...], bool]] = {
    "cases.csv": (CASES_COLUMNS, CASES_REQUIRED, True),
    "rooms.csv": (ROOMS_COLUMNS, ROOMS_REQUIRED, True),
    "surgeons.csv": (SURGEONS_COLUMNS, SURGEONS_REQUIRED, True),
    "blocks.csv": (BLOCKS_COLUMNS, BLOCKS_REQUIRED, False),
    "staffing.csv": (STAFFING_COLUMNS, STAFFING_REQUIRED, False),
}
SETTINGS_FILE = "settings.toml"

# Case durations outside this range (minutes) are not plausible room times.
MIN_DURATION_MINUTES = 1.0
MAX_DURATION_MINUTES = 1440.0
