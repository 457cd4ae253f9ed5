"""Bad input, one kind a row: each gets its status code and a message naming what is wrong, and nothing
changes (the day's schedule and the version history are the same after all of them). HTTP requests,
FHIR searches and HL7 messages; FHIR Bundles in are in tests/engine/test_import_fhir.py."""
from __future__ import annotations

import pytest

from tests.engine.api.conftest import DAY, auth, plan_and_publish
from tests.engine.api.test_hl7 import msa, post, siu

J = {"Content-Type": "application/json"}


def _chunks(n: int):
    yield b'{"type": "room_down", "room_id": "'
    for _ in range(n):
        yield b"x" * 10_000
    yield b'", "idempotency_key": "big"}'


def _requests(client, gone: str):
    """(kind, response, status, words the message must hold)."""
    h, v = auth("coordinator"), auth("viewer")
    ev = lambda **kw: client.post("/api/v1/events", json={"at": f"{DAY}T07:00", "idempotency_key": "bad", **kw}, headers=h)  # noqa: E731
    return [
        ("no token", client.get("/api/v1/schedule", params={"date": DAY}), 401, "Authorization: Bearer <token> is required"),
        ("unknown token", client.get("/api/v1/schedule", params={"date": DAY}, headers={"Authorization": "Bearer nope"}),
         401, "not a known API token"),
        ("not a bearer token", client.get("/api/v1/health", headers={"Authorization": "Basic Y2Fyb2w6eA=="}),
         401, "Authorization: Bearer <token> is required"),
        ("wrong role", client.post("/api/v1/events", json={"type": "room_down", "room_id": "OR1", "idempotency_key": "v"},
                                   headers=v), 403, "may not"),
        ("wrong role for a plan", client.post("/api/v1/plan", json={"date": DAY}, headers=v), 403, "may not"),
        ("body not JSON", client.post("/api/v1/events", content=b"{type: room_down", headers={**h, **J}), 422, "JSON decode error"),
        ("body not an object", client.post("/api/v1/events", json=["room_down"], headers=h), 422, "valid dictionary"),
        ("missing field", client.post("/api/v1/events", json={"type": "room_down", "room_id": "OR1"}, headers=h),
         422, "idempotency_key"),
        ("wrong type", ev(type="case_running_long", case_id=gone, extra_minutes="lots"), 422, "extra_minutes"),
        ("out of range", ev(type="case_running_long", case_id=gone, extra_minutes=-5), 422, "greater than or equal to 0"),
        ("unknown field", ev(type="room_down", room_id="OR1", colour="red"), 422, "Extra inputs are not permitted"),
        ("unknown event type", ev(type="meteor_strike"), 422, "case_booked"),
        ("field the type needs", ev(type="case_cancelled"), 422, "case_id is required"),
        ("unknown case", ev(type="case_cancelled", case_id="C-NOT-THERE"), 422, "'C-NOT-THERE' is not in the schedule"),
        ("unknown room", ev(type="room_down", room_id="OR99"), 422, "unknown room 'OR99'"),
        ("unknown surgeon", ev(type="case_booked", case_id="N1", service_line="Urology", p50=60, surgeon_id="S99"),
         422, "unknown surgeon 'S99'"),
        ("inconsistent values", ev(type="case_booked", case_id="N1", service_line="Urology", p50=90, p80=60),
         422, "must be >= p50"),
        ("a date-time in the wrong format", ev(type="room_down", room_id="OR1", at="04/01/2027 07:00"), 422, "at"),
        ("a date in the wrong format", client.get("/api/v1/schedule", params={"date": "04/01/2027"}, headers=h),
         422, "'04/01/2027' is not a date (YYYY-MM-DD)"),
        ("an impossible date", client.post("/api/v1/plan", json={"date": "2027-02-30"}, headers=h), 422, "date"),
        ("a day with nothing planned", ev(type="room_down", room_id="OR1", at="2027-03-01T07:00"), 422, "plan the day first"),
        ("oversized body (Content-Length)", client.post("/api/v1/events", content=b"{" + b" " * 1_100_000 + b"}",
                                                        headers={**h, **J}), 413, "larger than 1000000 bytes"),
        ("oversized body (chunked, no length)", client.post("/api/v1/events", content=_chunks(120), headers={**h, **J}),
         413, "larger than 1000000 bytes"),
        ("unknown job", client.get("/api/v1/jobs/0000", headers=h), 404, "no job '0000'"),
        ("unknown version", client.post("/api/v1/versions/999/approve", json={}, headers=auth("leadership")),
         404, "no schedule version 999"),
        ("unknown surgeon feed", client.get("/ical/surgeon/S99.ics", params={"date": DAY}, headers=v), 404, "unknown surgeon 'S99'"),
        ("FHIR search without its date", client.get("/fhir/Appointment", headers=v), 422, "OperationOutcome"),
        ("FHIR search prefix not handled", client.get("/fhir/Appointment", params={"date": "ge2027-01-04"}, headers=v),
         422, "OperationOutcome"),
        ("HL7 without a token", client.post("/api/v1/hl7", content=siu("S15", "B0", gone).encode(),
                                            headers={"Content-Type": "x-application/hl7-v2+er7"}), 401, "Bearer"),
        ("HL7 oversized", client.post("/api/v1/hl7", content=("MSH|" + "x" * 1_100_000).encode(),
                                      headers={**h, "Content-Type": "x-application/hl7-v2+er7"}), 413, "larger than"),
    ]


HL7_BAD = [  # (kind, message, ACK code, ERR-2 segment^seq^field, words of the ACK text)
    ("HL7 empty body", "", "AR", "MSH^1", "must start with an MSH segment"),
    ("HL7 first segment not MSH", "PID|1||123\r", "AR", "MSH^1", "must start with an MSH segment"),
    ("HL7 unparseable MSH", "MSH|bad", "AR", "MSH^1", "cannot parse"),
    ("HL7 not a scheduling message", "MSH|^~\\&|EPIC|MAIN|ORALLOC|MAIN|202701040700||ADT^A01|B1|P|2.5\rPID|1||1\r",
     "AR", "MSH^1^9", "only SIU"),
    ("HL7 trigger not handled", siu("S17", "B2", "C0041"), "AR", "MSH^1^9", "S12 (booking)"),
    ("HL7 no control id", siu("S15", "", "C0041"), "AR", "MSH^1^10", "idempotency key"),
    ("HL7 no appointment id", siu("S15", "B3", ""), "AE", "SCH^1^2", "must give the case id"),
    ("HL7 bad MSH-7 time", siu("S15", "B4", "C0041", when="2027-01-04"), "AE", "MSH^1^7", "is not an HL7 date/time"),
    ("HL7 unknown surgeon", siu("S12", "B5", "NEW9", ["AIP|1||S99"]), "AE", "AIP^1^3", "'S99' is not a known surgeon"),
    ("HL7 duration not a number", siu("S12", "B6", "NEW9", ["AIP|1||S3"], duration="long"), "AE", "SCH^1^9",
     "must be a number"),
]


@pytest.fixture
def planned(client, service):
    vid = plan_and_publish(client)
    s = service.gov.version(vid).schedule
    return s[s["status"] == "scheduled"].sort_values("start").iloc[-1]["case_id"]


def test_bad_requests_get_their_status_and_a_message_and_change_nothing(client, service, planned) -> None:
    before = client.get("/api/v1/schedule", params={"date": DAY}, headers=auth("viewer")).json()
    n_versions = len(service.gov.history(service.hospital_id))
    rows = _requests(client, planned)
    kinds = [k for k, *_ in rows]
    assert len(set(kinds)) == len(kinds) == 30
    for kind, r, status, words in rows:
        assert r.status_code == status, (kind, r.status_code, r.text[:300])
        assert words in r.text, (kind, words, r.text[:300])
    assert client.get("/api/v1/schedule", params={"date": DAY}, headers=auth("viewer")).json() == before
    assert len(service.gov.history(service.hospital_id)) == n_versions
    # a refused event leaves no key behind: the same key works once the event is right
    assert client.post("/api/v1/events", json={"type": "room_down", "room_id": "OR1", "at": f"{DAY}T07:00",
                                               "idempotency_key": "bad"}, headers=auth("coordinator")).status_code == 200


def test_a_reused_idempotency_key_is_409_naming_it(client, planned) -> None:
    body = {"type": "case_cancelled", "case_id": planned, "at": f"{DAY}T07:00", "idempotency_key": "k-once"}
    assert client.post("/api/v1/events", json=body, headers=auth("coordinator")).status_code == 200
    r = client.post("/api/v1/events", json={**body, "at": f"{DAY}T08:00"}, headers=auth("coordinator"))
    assert r.status_code == 409 and "idempotency_key" in r.text and "already used for a different event" in r.text


def test_bad_hl7_messages_get_an_ack_naming_segment_and_field(client, planned) -> None:
    before = client.get("/api/v1/schedule", params={"date": DAY}, headers=auth("viewer")).json()
    for kind, text, code, where, words in HL7_BAD:
        r = post(client, text)
        assert r.status_code == 200, kind
        got, ack_text, err = msa(r)
        assert (got, err) == (code, where), (kind, got, err, ack_text)
        assert words in r.text, (kind, words, r.text)
    assert client.get("/api/v1/schedule", params={"date": DAY}, headers=auth("viewer")).json() == before
