"""Write data/samples/or_utilization_export.csv: a small, deterministic "OR utilization" export.

It imitates what a hospital's reporting system hands over (one row per case, US dates, 24-hour
times with a few 12-hour ones, service names in capitals, surgeons as "Last, First (ID)") so
the importer and data/mappings/or_utilization_export.yaml have a realistic file to work on.
Deliberately messy but valid: a case running past midnight, 12-hour times, dates without
leading zeros, blank optional fields, padded cells, an unmapped extra column.

It also writes ``or_utilization_export_pacu.csv``, the onboarding variant: ten weeks of history with
rooms kept by one service per weekday, a booked week and PACU in/out times (for inferred blocks,
staffing and PACU beds).

Run: ``python data/samples/make_or_utilization_export.py`` (same output every time).
"""
from __future__ import annotations

import csv
import datetime as dt
import random
from pathlib import Path

OUT = Path(__file__).with_name("or_utilization_export.csv")
HEADER = [
    "Encounter ID", "Date", "OR Suite", "Service", "Surgeon", "CPT Code", "CPT Description",
    "Booked Time (min)", "OR Schedule", "Wheels In", "Start Time", "End Time", "Wheels Out",
    "Case Status", "Patient Class", "ASA", "Anesthesia Type", "Cancel Reason", "Add On",
    "Anesthesiologist",
]
ROOMS = ["OR 01", "OR 02", "OR 03", "OR 04", "OR 05", "HYBRID 1"]
# service -> (surgeons, [(cpt, description, typical room minutes)])
SERVICES = {
    "ORTHO": (["Smith, John (10234)", "Garcia, Maria (10871)"],
              [("27447", "Total knee arthroplasty", 150), ("27130", "Total hip arthroplasty", 160),
               ("29881", "Knee arthroscopy with meniscectomy", 70)]),
    "GEN SURG": (["Chen, Wei (11502)", "O'Brien, Kate (11733)"],
                 [("47562", "Laparoscopic cholecystectomy", 95), ("49505", "Inguinal hernia repair", 80),
                  ("44970", "Laparoscopic appendectomy", 75)]),
    "UROLOGY": (["Patel, Anil (12044)"],
                [("52356", "Cystourethroscopy with lithotripsy", 70),
                 ("55866", "Robotic prostatectomy", 240)]),
    "GYN": (["Nguyen, Thu (12390)"],
            [("58571", "Laparoscopic hysterectomy", 150), ("58558", "Hysteroscopy with biopsy", 45)]),
    "ENT": (["Kowalski, Adam (13011)"],
            [("42820", "Tonsillectomy and adenoidectomy", 55), ("31256", "Nasal/sinus endoscopy", 90)]),
    "VASCULAR": (["Okafor, Chidi (13377)"],
                 [("34802", "Endovascular aortic repair", 210), ("35301", "Carotid endarterectomy", 150)]),
}
CLASSES = ["Outpatient", "Outpatient", "Inpatient", "Same Day Admit"]
ANESTHESIA = ["General", "General", "General", "MAC", "Regional", "Spinal"]
STATUS_TEXT = {"completed": "Completed", "cancelled": "Canceled", "booked": "Scheduled"}
CANCEL_REASONS = ["Patient no-show", "Medical condition changed", "Surgeon unavailable",
                  "Insurance authorization", "Ran out of OR time"]
ANESTHESIOLOGISTS = ["Dr. Ito", "Dr. Rahman", "Dr. Silva", "Dr. Berg"]


def _date(d: dt.date, rng: random.Random) -> str:
    # Most rows zero-padded (01/04/2027); some exports drop the zeros (1/4/2027).
    return d.strftime("%m/%d/%Y") if rng.random() < 0.9 else f"{d.month}/{d.day}/{d.year}"


def _time(t: dt.datetime, twelve_hour: bool) -> str:
    if twelve_hour:
        return t.strftime("%I:%M %p").lstrip("0")
    return t.strftime("%H:%M")


def _rows() -> list[list[str]]:
    rng = random.Random(20270104)
    history = [dt.date(2027, 1, 4) + dt.timedelta(days=i) for i in range(12)]
    history = [d for d in history if d.weekday() < 5]  # Jan 4 .. Jan 15, weekdays
    future = [dt.date(2027, 1, 18), dt.date(2027, 1, 19)]
    rows: list[list[str]] = []
    encounter = 880100
    for day in history + future:
        is_future = day in future
        for room in ROOMS:
            service = "VASCULAR" if room == "HYBRID 1" else rng.choice(list(SERVICES))
            surgeon = rng.choice(SERVICES[service][0])
            clock = dt.datetime.combine(day, dt.time(7, 30))
            while clock.hour < 15:
                cpt, desc, typical = rng.choice(SERVICES[service][1])
                booked = int(round(typical * rng.uniform(0.8, 1.1) / 5) * 5)
                scheduled = clock
                status = "booked" if is_future else ("cancelled" if rng.random() < 0.08 else "completed")
                twelve = rng.random() < 0.1  # some rows come from a system with 12-hour times
                add_on = rng.choices(["N", "Y", ""], weights=[85, 8, 7])[0]
                asa = rng.choice(["1", "2", "2", "3", "3", "4", "3E", ""])
                row = {
                    "Encounter ID": str(encounter), "Date": _date(day, rng), "OR Suite": room,
                    "Service": service, "Surgeon": surgeon, "CPT Code": cpt,
                    "CPT Description": desc if rng.random() < 0.95 else "",
                    "Booked Time (min)": str(booked), "OR Schedule": _time(scheduled, twelve),
                    "Wheels In": "", "Start Time": "", "End Time": "", "Wheels Out": "",
                    "Case Status": STATUS_TEXT[status], "Patient Class": rng.choice(CLASSES),
                    "ASA": asa, "Anesthesia Type": rng.choice(ANESTHESIA) if rng.random() < 0.93 else "",
                    "Cancel Reason": rng.choice(CANCEL_REASONS) if status == "cancelled" else "",
                    "Add On": add_on, "Anesthesiologist": rng.choice(ANESTHESIOLOGISTS),
                }
                encounter += 1
                if status == "completed":
                    wheels_in = scheduled + dt.timedelta(minutes=rng.randint(-5, 25))
                    induction, emergence = rng.randint(12, 30), rng.randint(8, 15)
                    room_minutes = max(induction + emergence + 10,
                                       int(booked * rng.lognormvariate(0.1, 0.25)))
                    start = wheels_in + dt.timedelta(minutes=induction)
                    wheels_out = wheels_in + dt.timedelta(minutes=room_minutes)
                    end = wheels_out - dt.timedelta(minutes=emergence)
                    row.update({"Wheels In": _time(wheels_in, twelve), "Start Time": _time(start, twelve),
                                "End Time": _time(end, twelve), "Wheels Out": _time(wheels_out, twelve)})
                    clock = wheels_out + dt.timedelta(minutes=30)
                else:
                    clock = scheduled + dt.timedelta(minutes=booked + 30)
                rows.append([row[h] for h in HEADER])
    # An emergent add-on that runs past midnight: times after 00:00 belong to the next day.
    rows.append([str(encounter), "01/07/2027", "OR 03", "GEN SURG", "Chen, Wei (11502)", "44970",
                 "Laparoscopic appendectomy", "75", "22:30", "22:48", "23:10", "00:21", "00:37",
                 "Completed", "Inpatient", "2E", "General", "", "Emergent", "Dr. Berg"])
    # Padded cells and lower-case codes as some exports write them.
    rows.append([f" {encounter + 1} ", "01/08/2027", "OR 02 ", "ortho", "Smith, John (10234)", "29881",
                 "Knee arthroscopy with meniscectomy", "65", "4:00 PM", "4:05 PM", "4:20 PM",
                 "5:02 PM", "5:15 PM", "completed", "Outpatient", " 2 ", "Regional", "", "Y", ""])
    return rows


OUT_PACU = Path(__file__).with_name("or_utilization_export_pacu.csv")
PACU_HEADER = [*HEADER, "PACU In", "PACU Out"]


def _rows_pacu() -> list[list[str]]:
    """The variant: ten weeks of history (Nov 9 2026 .. Jan 15 2027), a booked week (Jan 18-22) and
    PACU times; each room keeps one service per weekday (as block schedules do), HYBRID 1 is shared."""
    rng = random.Random(20270118)
    days = [dt.date(2026, 11, 9) + dt.timedelta(days=i) for i in range(75)]
    days = [d for d in days if d.weekday() < 5]
    services = list(SERVICES)
    rows: list[list[str]] = []
    encounter = 990100
    for day in days:
        is_future = day >= dt.date(2027, 1, 18)
        for r, room in enumerate(ROOMS):
            service = rng.choice(services) if room == "HYBRID 1" else services[(r + day.weekday()) % len(services)]
            surgeon = SERVICES[service][0][day.toordinal() % len(SERVICES[service][0])]
            clock = dt.datetime.combine(day, dt.time(7, 30))
            while clock.hour < 15:
                cpt, desc, typical = rng.choice(SERVICES[service][1])
                booked = int(round(typical * rng.uniform(0.8, 1.1) / 5) * 5)
                status = "booked" if is_future else ("cancelled" if rng.random() < 0.06 else "completed")
                row = {h: "" for h in PACU_HEADER}
                row.update({"Encounter ID": str(encounter), "Date": _date(day, rng), "OR Suite": room,
                            "Service": service, "Surgeon": surgeon, "CPT Code": cpt, "CPT Description": desc,
                            "Booked Time (min)": str(booked), "OR Schedule": _time(clock, False),
                            "Case Status": STATUS_TEXT[status], "Patient Class": rng.choice(CLASSES),
                            "ASA": rng.choice(["1", "2", "3", "3E"]), "Anesthesia Type": rng.choice(ANESTHESIA),
                            "Cancel Reason": rng.choice(CANCEL_REASONS) if status == "cancelled" else "",
                            "Add On": rng.choices(["N", "Y"], weights=[92, 8])[0],
                            "Anesthesiologist": rng.choice(ANESTHESIOLOGISTS)})
                encounter += 1
                if status == "completed":
                    wheels_in = clock + dt.timedelta(minutes=rng.randint(-5, 20))
                    room_minutes = max(40, int(booked * rng.lognormvariate(0.05, 0.2)))
                    wheels_out = wheels_in + dt.timedelta(minutes=room_minutes)
                    pacu_in = wheels_out + dt.timedelta(minutes=rng.randint(3, 10))
                    pacu_out = pacu_in + dt.timedelta(minutes=rng.randint(45, 120))
                    row.update({"Wheels In": _time(wheels_in, False),
                                "Start Time": _time(wheels_in + dt.timedelta(minutes=15), False),
                                "End Time": _time(wheels_out - dt.timedelta(minutes=10), False),
                                "Wheels Out": _time(wheels_out, False), "PACU In": _time(pacu_in, False),
                                "PACU Out": _time(pacu_out, False)})
                    clock = wheels_out + dt.timedelta(minutes=30)
                else:
                    clock = clock + dt.timedelta(minutes=booked + 30)
                rows.append([row[h] for h in PACU_HEADER])
    return rows


def _write(path: Path, header: list[str], rows: list[list[str]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(header)
        w.writerows(rows)
    print(f"wrote {path} ({len(rows)} rows)")


def main() -> None:
    _write(OUT, HEADER, _rows())
    _write(OUT_PACU, PACU_HEADER, _rows_pacu())


if __name__ == "__main__":
    main()
