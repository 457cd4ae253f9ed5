"""Foreign-shaped case exports for tests: exports this repository's mappings were not written for.

Each style has its own headers, date and time forms and value spellings, the way different
hospitals' reporting systems differ. ``make_export`` returns the export as a frame of strings (one
row per case, deterministic for a seed); ``write_export`` writes it as CSV or Excel. ``TRUTH``
says, per style, which contract column each header really is: the answer key for
``--suggest-mapping``.

The cases follow a stable weekly block pattern (each room-weekday belongs to one service), so
inferred blocks and staffing have something to find; the last ``booked_days`` days are booked.
"""
from __future__ import annotations

import datetime as dt
import random
from pathlib import Path

import pandas as pd

SERVICES = {
    # service -> (spellings by style, surgeons, procedures (code, name, minutes))
    "Orthopedics": ({"epic": "ORTHO", "euro": "Orthopädie", "iso": "orthopaedics"},
                    [("Smith", "John", "10234"), ("Garcia", "Maria", "10871")],
                    [("27447", "Total knee arthroplasty", 150), ("29881", "Knee arthroscopy", 70)]),
    "General Surgery": ({"epic": "GEN SURG", "euro": "Allgemeinchirurgie", "iso": "general surgery"},
                        [("Chen", "Wei", "11502"), ("OBrien", "Kate", "11733")],
                        [("47562", "Laparoscopic cholecystectomy", 95), ("49505", "Inguinal hernia repair", 80)]),
    "Urology": ({"epic": "UROLOGY", "euro": "Urologie", "iso": "urology"},
                [("Patel", "Anil", "12044")],
                [("52356", "Cystoscopy with lithotripsy", 70), ("55866", "Robotic prostatectomy", 240)]),
    "Gynecology": ({"epic": "GYN", "euro": "Gynäkologie", "iso": "gynaecology"},
                   [("Nguyen", "Thu", "12390")],
                   [("58571", "Laparoscopic hysterectomy", 150), ("58558", "Hysteroscopy", 45)]),
}
ROOMS = {"epic": ["OR 1", "OR 2", "OR 3", "OR 4"], "euro": ["Saal 1", "Saal 2", "Saal 3", "Saal 4"],
         "iso": ["TH01", "TH02", "TH03", "TH04"]}
# room index -> weekday (0=Mon..4=Fri) -> service; room 3 is shared on Fridays (no stable owner).
PATTERN = {
    0: ["Orthopedics"] * 5,
    1: ["General Surgery", "General Surgery", "Urology", "General Surgery", "Urology"],
    2: ["Gynecology", "Urology", "Gynecology", "Urology", "Gynecology"],
    3: ["Orthopedics", "Gynecology", "General Surgery", None, None],
}
STATUS = {"epic": {"completed": "Completed", "cancelled": "Canceled", "booked": "Scheduled"},
          "euro": {"completed": "durchgeführt", "cancelled": "abgesetzt", "booked": "geplant"},
          "iso": {"completed": "done", "cancelled": "cancelled", "booked": "booked"}}
URGENCY = {"epic": {"elective": "N", "urgent": "Y"}, "euro": {"elective": "elektiv", "urgent": "dringend"},
           "iso": {"elective": "routine", "urgent": "urgent"}}

HEADERS = {
    "epic": ["Log ID", "Surgery Date", "OR Suite", "Service", "Primary Surgeon", "CPT", "Primary Procedure",
             "Booked Time (min)", "Sched Start", "Pt In Room", "Procedure Start", "Procedure End", "Pt Out Room",
             "Case Status", "Add-On", "ASA", "PACU In", "PACU Out"],
    "euro": ["Fallnummer", "OP-Datum", "Saal", "Fachabteilung", "Operateur", "OPS Code", "Eingriff",
             "Geplante Dauer", "Einschleusung", "Ausschleusung", "Status", "Dringlichkeit", "Storno Grund"],
    "iso": ["case_no", "date_of_surgery", "theatre", "specialty", "consultant", "procedure_code", "procedure_description",
            "estimated_duration", "in_room_time", "out_room_time", "outcome", "priority", "site"],
}
# header -> contract column (None: not a contract column) per style: the suggest-mapping answer key.
TRUTH = {
    "epic": {"Log ID": "case_id", "Surgery Date": "surgery_date", "OR Suite": "room_id", "Service": "service_line",
             "Primary Surgeon": "surgeon_id", "CPT": "procedure_code", "Primary Procedure": "procedure_name",
             "Booked Time (min)": "booked_minutes", "Sched Start": "scheduled_start", "Pt In Room": "wheels_in",
             "Procedure Start": "procedure_start", "Procedure End": "procedure_end", "Pt Out Room": "wheels_out",
             "Case Status": "status", "Add-On": "urgency", "ASA": "asa_class", "PACU In": "pacu_in",
             "PACU Out": "pacu_out"},
    "euro": {"Fallnummer": "case_id", "OP-Datum": "surgery_date", "Saal": "room_id", "Fachabteilung": "service_line",
             "Operateur": "surgeon_id", "OPS Code": "procedure_code", "Eingriff": "procedure_name",
             "Geplante Dauer": "booked_minutes", "Einschleusung": "wheels_in", "Ausschleusung": "wheels_out",
             "Status": "status", "Dringlichkeit": "urgency", "Storno Grund": "cancellation_reason"},
    "iso": {"case_no": "case_id", "date_of_surgery": "surgery_date", "theatre": "room_id", "specialty": "service_line",
            "consultant": "surgeon_id", "procedure_code": "procedure_code", "procedure_description": "procedure_name",
            "estimated_duration": "booked_minutes", "in_room_time": "wheels_in", "out_room_time": "wheels_out",
            "outcome": "status", "priority": "urgency", "site": "site"},
}


def _surgeon_text(style: str, last: str, first: str, sid: str) -> str:
    if style == "epic":
        return f"{last}, {first} ({sid})"
    if style == "euro":
        return f"Dr. {first} {last}"
    return f"{last.upper()} {first.upper()}"


def _fmt_date(style: str, d: dt.date) -> str:
    return {"epic": d.strftime("%m/%d/%Y"), "euro": d.strftime("%d.%m.%Y"), "iso": d.isoformat()}[style]


def _fmt_time(style: str, t: dt.datetime) -> str:
    if style == "epic":
        return t.strftime("%H:%M")
    if style == "euro":
        return t.strftime("%d.%m.%Y %H:%M")
    return t.strftime("%Y-%m-%dT%H:%M")


def make_export(style: str = "epic", weeks: int = 10, seed: int = 0, booked_days: int = 7,
                start: dt.date = dt.date(2026, 10, 5), pacu: bool = True) -> pd.DataFrame:
    """A foreign export of ``weeks`` weeks of weekday cases (Mondays from ``start``); the last
    ``booked_days`` days are booked (no times). Strings only, as a reporting system writes them."""
    rng = random.Random(seed)
    rows = []
    n = 0
    days = [start + dt.timedelta(days=i) for i in range(weeks * 7)]
    booked_from = days[-1] - dt.timedelta(days=booked_days - 1)
    for d in days:
        if d.weekday() > 4:
            continue
        for r, room in enumerate(ROOMS[style]):
            svc = PATTERN[r][d.weekday()] or rng.choice(list(SERVICES))
            spell, surgeons, procs = SERVICES[svc]
            last, first, sid = surgeons[(d.toordinal() + r) % len(surgeons)]
            clock = dt.datetime.combine(d, dt.time(7, 30)) + dt.timedelta(minutes=rng.randint(0, 15))
            while clock.hour < 15:
                code, pname, minutes = rng.choice(procs)
                n += 1
                status = "booked" if d >= booked_from else ("cancelled" if rng.random() < 0.06 else "completed")
                urgent = rng.random() < 0.08
                booked = int(round(minutes * rng.uniform(0.85, 1.2) / 5) * 5)
                dur = max(20, int(rng.gauss(minutes, minutes * 0.18)))
                w_in, w_out = clock, clock + dt.timedelta(minutes=dur)
                rec = {"id": f"{'EU' if style == 'euro' else ''}{700000 + n}", "date": _fmt_date(style, d),
                       "room": room, "service": spell[style], "surgeon": _surgeon_text(style, last, first, sid),
                       "code": code, "name": pname, "booked": str(booked), "status": STATUS[style][status],
                       "urgency": URGENCY[style]["urgent" if urgent else "elective"],
                       "sched": w_in.strftime("%H:%M")}
                if status == "completed":
                    rec["in"], rec["out"] = _fmt_time(style, w_in), _fmt_time(style, w_out)
                    rec["pstart"] = _fmt_time(style, w_in + dt.timedelta(minutes=15))
                    rec["pend"] = _fmt_time(style, w_out - dt.timedelta(minutes=10))
                    if pacu:
                        p_out = w_out + dt.timedelta(minutes=5 + rng.randint(50, 110))
                        rec["pacu_in"] = _fmt_time(style, w_out + dt.timedelta(minutes=5))
                        rec["pacu_out"] = _fmt_time(style, p_out)
                rows.append(rec)
                clock = w_out + dt.timedelta(minutes=25 + rng.randint(0, 15))
    keys = {
        "epic": ["id", "date", "room", "service", "surgeon", "code", "name", "booked", "sched", "in", "pstart", "pend",
                 "out", "status", "urgency", "asa", "pacu_in", "pacu_out"],
        "euro": ["id", "date", "room", "service", "surgeon", "code", "name", "booked", "in", "out", "status", "urgency",
                 "cancel"],
        "iso": ["id", "date", "room", "service", "surgeon", "code", "name", "booked", "in", "out", "status", "urgency",
                "site"],
    }[style]
    out = []
    for i, rec in enumerate(rows):
        rec.setdefault("asa", str(1 + i % 4))
        rec.setdefault("site", "Main")
        rec.setdefault("cancel", "Patient krank" if rec["status"] == STATUS["euro"]["cancelled"] else "")
        out.append([rec.get(k, "") for k in keys])
    df = pd.DataFrame(out, columns=HEADERS[style])
    if style == "epic" and not pacu:
        df = df.drop(columns=["PACU In", "PACU Out"])
    return df


def write_export(df: pd.DataFrame, path: Path) -> Path:
    """CSV (``.csv``, ``;``-separated for ``.txt``) or Excel (``.xlsx``) as a reporting system would."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".xlsx":
        df.to_excel(path, index=False)
    elif path.suffix == ".txt":
        df.to_csv(path, index=False, sep=";")
    else:
        df.to_csv(path, index=False)
    return path


# A hand-written mapping for the "iso" style (what a person would write from the README).
ISO_MAPPING = """
name: ISO-style theatre export
columns:
  case_id: case_no
  surgery_date: date_of_surgery
  status: {column: outcome, map: {done: completed, cancelled: cancelled, booked: booked}, unmapped: error}
  service_line: specialty
  procedure_code: procedure_code
  procedure_name: procedure_description
  surgeon_id: consultant
  room_id: theatre
  booked_minutes: estimated_duration
  wheels_in: in_room_time
  wheels_out: out_room_time
  urgency: {column: priority, map: {routine: elective, urgent: urgent}, if_missing: elective}
  site: site
settings:
  turnover_minutes: 30
  pacu_minutes: 75
  prime_time: "07:30-15:30"
rooms:
  open_time: "07:30"
  close_time: "17:30"
"""
