"""import --fhir: a FHIR R4 Bundle -> a hospital folder (engine/importer/fhir.py), bad resources named."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from engine.errors import InputError
from engine.importer.fhir import import_fhir

ROOT = Path(__file__).resolve().parents[2]


def make_bundle(n_done: int = 40, n_booked: int = 6, start: str = "2026-11-02") -> dict:
    """A small Bundle: 2 rooms, 3 surgeons, completed cases with Encounter + Procedure, booked ones."""
    entries = [{"resource": {"resourceType": "Location", "id": f"OR{i}", "name": f"OR{i}"}} for i in (1, 2)]
    lines = {"P1": "Orthopedics", "P2": "General Surgery", "P3": "Urology"}
    entries += [{"resource": {"resourceType": "Practitioner", "id": p, "name": [{"family": f"Doc{p}"}]}} for p in lines]
    day0 = pd.Timestamp(start)
    k = 0
    for j in range(n_done + n_booked):
        done = j < n_done
        day = day0 + pd.Timedelta(days=j // 4) if done else day0 + pd.Timedelta(days=n_done // 4 + 3 + j % 2)
        while day.weekday() >= 5:
            day += pd.Timedelta(days=2)
        room, surgeon = f"OR{1 + j % 2}", list(lines)[j % 3]
        t0 = day + pd.Timedelta(hours=8 + 2 * ((j // 2) % 2))
        minutes = 60 + 15 * (j % 5)
        aid = f"A{j:03d}"
        appt = {"resourceType": "Appointment", "id": aid, "status": "fulfilled" if done else "booked",
                "identifier": [{"system": "urn:test", "value": f"C{j:04d}"}],
                "serviceType": [{"text": lines[surgeon]}],
                "start": f"{t0:%Y-%m-%dT%H:%M}:00+01:00", "end": f"{t0 + pd.Timedelta(minutes=minutes):%Y-%m-%dT%H:%M}:00+01:00",
                "minutesDuration": minutes, "created": f"{day - pd.Timedelta(days=10):%Y-%m-%d}T09:00:00+01:00",
                "reasonCode": [{"coding": [{"code": f"PX{j % 4}"}]}],
                "participant": [{"actor": {"reference": f"Location/{room}"}, "status": "accepted"},
                                {"actor": {"reference": f"Practitioner/{surgeon}"}, "status": "accepted"}]}
        entries.append({"resource": appt})
        if done:
            k += 1
            w_in, w_out = t0 + pd.Timedelta(minutes=5), t0 + pd.Timedelta(minutes=minutes + 10 + j % 7)
            entries.append({"resource": {"resourceType": "Encounter", "id": f"E{j:03d}", "status": "finished",
                                         "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "IMP"},
                                         "appointment": [{"reference": f"Appointment/{aid}"}],
                                         "priority": {"coding": [{"code": "EM" if j % 10 == 0 else "EL"}]},
                                         "location": [{"location": {"reference": f"Location/{room}"},
                                                       "period": {"start": f"{w_in:%Y-%m-%dT%H:%M}:00+01:00",
                                                                  "end": f"{w_out:%Y-%m-%dT%H:%M}:00+01:00"}}]}})
            entries.append({"resource": {"resourceType": "Procedure", "id": f"P{j:03d}", "status": "completed",
                                         "subject": {"reference": "Patient/x"}, "encounter": {"reference": f"Encounter/E{j:03d}"},
                                         "code": {"coding": [{"code": f"PX{j % 4}", "display": f"procedure {j % 4}"}]}}})
    return {"resourceType": "Bundle", "type": "collection", "entry": entries}


def write(tmp_path: Path, doc, name: str = "bundle.json") -> Path:
    p = tmp_path / name
    p.write_text(json.dumps(doc) if not isinstance(doc, str) else doc, encoding="utf-8")
    return p


def test_bundle_becomes_a_valid_hospital_folder(tmp_path):
    from engine.hospital import load_hospital

    res = import_fhir(write(tmp_path, make_bundle()), tmp_path / "h")
    assert res.rows_read == 46 and res.rows_written == 46 and res.rows_quarantined == 0
    h = load_hospital(tmp_path / "h").hospital
    c = h.cases.set_index("case_id")
    assert set(c["status"]) == {"completed", "booked"}
    assert (c["status"] == "booked").sum() == 6
    # the wheels times come from the Encounter's location period, the wall clock as written
    assert pd.Timestamp(c.loc["C0001", "wheels_in"]) == pd.Timestamp("2026-11-02T08:05")
    assert c.loc["C0001", "procedure_name"] == "procedure 1"
    assert c.loc["C0000", "urgency"] == "emergent" and c.loc["C0001", "urgency"] == "elective"
    assert set(h.rooms["room_id"]) == {"OR1", "OR2"}
    assert set(h.surgeons["surgeon_id"]) >= {"P1", "P2", "P3"}


def test_bad_appointment_is_set_aside_and_counted(tmp_path):
    doc = make_bundle(n_done=60)
    appts = [i for i, e in enumerate(doc["entry"]) if e["resource"]["resourceType"] == "Appointment"]
    doc["entry"][appts[3]]["resource"]["start"] = "yesterday"
    res = import_fhir(write(tmp_path, doc), tmp_path / "h")
    assert res.rows_read == 66 and res.rows_written == 65 and res.rows_quarantined == 1
    row = res.quarantine[res.quarantine["stage"] == "fhir"].iloc[0]
    assert row["source_row"] == appts[3] and row["column"].startswith("Appointment.start")


@pytest.mark.parametrize("mutate,where", [
    (lambda d: d["entry"][11]["resource"].update(status="nonsense"), "Appointment.status"),
    (lambda d: d["entry"][11]["resource"].pop("serviceType"), "Appointment.serviceType"),
    (lambda d: d["entry"][11]["resource"].update(minutesDuration="long"), "Appointment.minutesDuration"),
    (lambda d: d["entry"][0]["resource"].update(name=["not", "a", "string"]), "Location.name"),
])
def test_too_many_bad_resources_exit_naming_entry_type_and_field(tmp_path, mutate, where):
    doc = make_bundle(n_done=8, n_booked=2)
    doc["entry"][11]["resource"] = dict(doc["entry"][11]["resource"])
    assert doc["entry"][11]["resource"]["resourceType"] == "Appointment" or where.startswith("Location")
    mutate(doc)
    with pytest.raises(InputError) as ei:
        import_fhir(write(tmp_path, doc), tmp_path / "h")
    text = str(ei.value)
    assert where in text and " entry " in text and "nothing was written" in text
    assert not (tmp_path / "h").exists()


@pytest.mark.parametrize("doc,message", [
    ("{not json", "cannot read the Bundle as JSON"),
    ({"resourceType": "Patient", "id": "x"}, "a FHIR Bundle is expected"),
    ({"resourceType": "Bundle", "type": "collection", "entry": []}, "no entries"),
    ({"resourceType": "Bundle", "type": "collection", "entry": [{"resource": {"resourceType": "Location", "id": "OR1"}}]},
     "no Appointment"),
])
def test_unreadable_bundles(tmp_path, doc, message):
    with pytest.raises(InputError, match=message):
        import_fhir(write(tmp_path, doc), tmp_path / "h")
    assert not (tmp_path / "h").exists()


def test_cli_import_fhir_exit_codes(tmp_path):
    good = write(tmp_path, make_bundle(), "good.json")
    r = subprocess.run([sys.executable, "-m", "engine", "import", "--fhir", str(good), "--out", str(tmp_path / "h"),
                        "--json", str(tmp_path / "r.json")], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert json.loads((tmp_path / "r.json").read_text())["rows_written"] == 46
    doc = make_bundle(n_done=8, n_booked=2)
    doc["entry"][11]["resource"]["participant"] = "OR1"
    bad = write(tmp_path, doc, "bad.json")
    r = subprocess.run([sys.executable, "-m", "engine", "import", "--fhir", str(bad), "--out", str(tmp_path / "h2")],
                       cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 2
    assert "entry 11 (Appointment/" in r.stderr and "Appointment.participant" in r.stderr
    assert not (tmp_path / "h2").exists()
