"""FHIR R4 out: the Bundles parse back with fhir.resources and hold the published schedule."""
from __future__ import annotations

from fhir.resources.R4B.bundle import Bundle

from tests.engine.api.conftest import DAY, auth, plan_and_publish


def test_appointment_bundle_of_the_published_day(client, service) -> None:
    r = client.get("/fhir/Appointment", params={"date": DAY}, headers=auth("viewer"))
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/fhir+json")
    assert r.json()["total"] == 0  # nothing published yet
    vid = plan_and_publish(client)
    sched = service.gov.version(vid).schedule
    r = client.get("/fhir/Appointment", params={"date": f"eq{DAY}"}, headers=auth("viewer"))
    b = Bundle.model_validate(r.json())
    assert b.type == "searchset" and b.total == len(sched)
    by_id = {e.resource.id: e.resource for e in b.entry}
    for row in sched.itertuples(index=False):
        a = by_id[row.case_id]
        refs = {p.actor.reference for p in a.participant if p.actor}
        if row.status == "scheduled":
            assert a.status == "booked" and f"Location/{row.room_id}" in refs and f"Practitioner/{row.surgeon_id}" in refs
            assert a.start.strftime("%Y-%m-%dT%H:%M") == str(row.start)[:16].replace(" ", "T")
            assert a.end > a.start
        else:
            assert a.status == "waitlist" and a.start is None
        assert a.serviceType[0].text == row.service_line
        assert a.reasonCode[0].coding[0].code
        assert a.reasonCode[0].coding[0].display is None  # the viewer gets no procedure names
    clinical = client.get("/fhir/Appointment", params={"date": DAY}, headers=auth("coordinator")).json()
    assert any(c["coding"][0].get("display") for e in clinical["entry"] for c in e["resource"]["reasonCode"])


def test_slot_and_schedule_bundles(client, service) -> None:
    plan_and_publish(client)
    slots = Bundle.model_validate(client.get("/fhir/Slot", params={"date": DAY}, headers=auth("viewer")).json())
    blocks = service.hospital.blocks
    assert slots.total == int((blocks["date"].astype(str).str[:10] == DAY).sum())
    assert {e.resource.status for e in slots.entry} <= {"busy", "free"} and any(e.resource.status == "busy" for e in slots.entry)
    sch = Bundle.model_validate(client.get("/fhir/Schedule", headers=auth("viewer")).json())
    assert sorted(e.resource.id for e in sch.entry) == sorted(service.hospital.rooms["room_id"])
    assert all(e.resource.schedule.reference.split("/")[1] in set(service.hospital.rooms["room_id"]) for e in slots.entry)


def test_fhir_errors_are_operation_outcomes(client) -> None:
    for params in ({}, {"date": "2027-02-30"}, {"date": "ge2027-01-04"}):
        r = client.get("/fhir/Appointment", params=params, headers=auth("viewer"))
        assert r.status_code == 422, params
        body = r.json()
        assert body["resourceType"] == "OperationOutcome" and body["issue"][0]["expression"] == ["date"]
    assert client.get("/fhir/Appointment", params={"date": DAY}).status_code == 401
