"""The issue's journey in-process: plan, approve, publish; a cancellation re-plans the day; the re-plan is
approved and published; the day reads back as a validated FHIR Bundle and as an iCal feed without the case.
Plus: the database going away answers 503 and changes nothing."""
from __future__ import annotations

import json

import sqlalchemy as sa
import sqlalchemy.exc
from fhir.resources.R4B.bundle import Bundle
from icalendar import Calendar

from tests.engine.api.conftest import DAY, auth, plan_and_publish


def test_cancellation_flows_to_fhir_and_ical(client, service) -> None:
    vid = plan_and_publish(client)
    sched = service.gov.version(vid).schedule
    row = sched[sched["status"] == "scheduled"].sort_values("start").iloc[-1]
    gone, room = row["case_id"], row["room_id"]
    r = client.post("/api/v1/events", json={"type": "case_cancelled", "case_id": gone, "at": f"{DAY}T07:00",
                                            "idempotency_key": "e2e-1"}, headers=auth("coordinator"))
    assert r.status_code == 200, r.text
    new = r.json()["version_id"]
    assert client.post(f"/api/v1/versions/{new}/approve", json={"note": "re-plan"}, headers=auth("leadership")).status_code == 200
    r = client.post(f"/api/v1/versions/{new}/publish", headers=auth("coordinator"))
    assert r.status_code == 200, r.text
    s = client.get("/api/v1/schedule", params={"date": DAY}, headers=auth("viewer")).json()
    assert s["versions"][0] == {"date": DAY, "version_id": new, "status": "published"}
    assert gone not in {x["case_id"] for x in s["schedule"]}
    b = Bundle.model_validate(client.get("/fhir/Appointment", params={"date": DAY}, headers=auth("viewer")).json())
    status = {e.resource.id: e.resource.status for e in b.entry}
    assert status.pop(gone) == "cancelled" and len(status) == len(s["schedule"])  # cancelled by the event, still listed
    assert set(status.values()) <= {"booked", "waitlist"}
    cal = Calendar.from_ical(client.get(f"/ical/room/{room}.ics", params={"date": DAY}, headers=auth("viewer")).content)
    assert gone not in {str(e["uid"]).split("@")[0] for e in cal.walk("VEVENT")}


def test_database_unavailable_is_503_and_nothing_changes(client, service, monkeypatch) -> None:
    plan_and_publish(client)
    n_versions = len(service.gov.history(service.hospital_id))

    def down(*a, **k):
        raise sqlalchemy.exc.OperationalError("SELECT 1", {}, Exception("could not connect to server"))

    with monkeypatch.context() as m:
        m.setattr(service.gov, "published_version", down)
        r = client.get("/api/v1/schedule", params={"date": DAY}, headers=auth("viewer"))
        assert r.status_code == 503 and "database is unavailable" in r.text and r.headers["retry-after"] == "5"
        r = client.post("/api/v1/events", json={"type": "room_down", "room_id": "OR1", "at": f"{DAY}T08:00",
                                                "idempotency_key": "db-1"}, headers=auth("coordinator"))
        assert r.status_code == 503
    assert len(service.gov.history(service.hospital_id)) == n_versions
    r = client.post("/api/v1/events", json={"type": "room_down", "room_id": "OR1", "at": f"{DAY}T08:00",
                                            "idempotency_key": "db-1"}, headers=auth("coordinator"))
    assert r.status_code == 200 and r.headers["idempotent-replay"] == "false"  # the failed attempt left no key behind


def _down(*a, **k):
    raise sqlalchemy.exc.OperationalError("COMMIT", {}, Exception("server closed the connection unexpectedly"))


def test_an_outage_mid_event_is_503_then_the_same_key_applies_once(client, service, monkeypatch) -> None:
    """The database goes away after the key is reserved (the proposal fails, and so does releasing the key):
    503, nothing proposed; the same key again, the database back, applies the event once."""
    vid = plan_and_publish(client)
    n_versions = len(service.gov.history(service.hospital_id))
    case = service.gov.version(vid).schedule.sort_values("start")["case_id"].iloc[0]
    body = {"type": "case_running_long", "case_id": case, "extra_minutes": 30, "at": f"{DAY}T08:00", "idempotency_key": "mid-1"}
    with monkeypatch.context() as m:
        def propose_then_down(*a, **k):
            m.setattr(service.gov.engine, "begin", _down)  # releasing the key fails too
            _down()

        m.setattr(service.gov, "propose", propose_then_down)
        r = client.post("/api/v1/events", json=body, headers=auth("coordinator"))
        assert r.status_code == 503 and "nothing was changed" in r.text
    assert len(service.gov.history(service.hospital_id)) == n_versions
    assert "mid-1" in service._orphans  # the key is still reserved in the store, by this process
    r = client.post("/api/v1/events", json=body, headers=auth("coordinator"))
    assert r.status_code == 200 and r.headers["idempotent-replay"] == "false", r.text
    r2 = client.post("/api/v1/events", json=body, headers=auth("coordinator"))
    assert r2.headers["idempotent-replay"] == "true" and r2.json()["version_id"] == r.json()["version_id"]
    assert len(service.gov.history(service.hospital_id)) == n_versions + 1


def test_an_outage_after_the_proposal_answers_the_applied_event(client, service, monkeypatch) -> None:
    """The proposal committed, storing the answer fails: the event was applied, so 200; a retry replays it and
    the next event stores the answer."""
    vid = plan_and_publish(client)
    case = service.gov.version(vid).schedule.sort_values("start")["case_id"].iloc[0]
    body = {"type": "case_running_long", "case_id": case, "extra_minutes": 20, "at": f"{DAY}T08:00", "idempotency_key": "late-1"}
    with monkeypatch.context() as m:
        m.setattr(service, "_store_answer", _down)
        r = client.post("/api/v1/events", json=body, headers=auth("coordinator"))
        assert r.status_code == 200 and r.headers["idempotent-replay"] == "false", r.text
        r2 = client.post("/api/v1/events", json=body, headers=auth("coordinator"))
        assert r2.status_code == 200 and r2.headers["idempotent-replay"] == "true"
        assert r2.json()["version_id"] == r.json()["version_id"]
    assert "late-1" in service._unstored
    r3 = client.post("/api/v1/events", json={**body, "extra_minutes": 10, "idempotency_key": "late-2"}, headers=auth("coordinator"))
    assert r3.status_code == 200, r3.text
    assert not service._unstored
    t = service._events
    with service.gov.engine.connect() as conn:
        stored = conn.execute(sa.select(t.c.response_json).where(t.c.idempotency_key == "late-1")).scalar_one()
    assert json.loads(stored)["version_id"] == r.json()["version_id"]


def test_cached_reads_see_a_publication_made_by_another_process(client, service, api_hospital, tmp_path) -> None:
    """Reads are reused while the ledger is unchanged (Service.cached); a change through another service on
    the same store (the dashboard, a second process) is seen at the next read."""
    from engine.api import Service, ServiceParams
    from engine.governance import User

    r = client.post("/api/v1/plan", json={"date": DAY, "days": 1, "solver": "rules"}, headers=auth("coordinator"))
    from tests.engine.api.conftest import wait_job

    vid = wait_job(client, r.json()["id"])["result"]["version_id"]
    read = lambda: client.get("/api/v1/schedule", params={"date": DAY}, headers=auth("viewer")).json()["versions"][0]  # noqa: E731
    assert read() == read() == {"date": DAY, "version_id": vid, "status": "proposed"}
    other = Service(ServiceParams(data_dir=api_hospital, db_url=str(service.gov.engine.url), models_dir=tmp_path / "models"))
    try:
        other.gov.approve(vid, User("lena", "leadership"), "elsewhere")
        assert read()["status"] == "approved"
    finally:
        other.close()
