"""The service's /api/v1: auth, schedule, plan jobs, events (idempotent, validated), governance."""
from __future__ import annotations

import time

import pandas as pd

from engine.contract import SCHEDULE_COLUMNS
from engine.governance import read_log
from tests.engine.api.conftest import DAY, auth, plan_and_publish, wait_job


def test_no_token_is_401_unknown_token_is_401_wrong_role_is_403(client) -> None:
    r = client.get("/api/v1/health")
    assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
    assert client.get("/api/v1/health", headers={"Authorization": "Bearer nope"}).status_code == 401
    assert client.get("/api/v1/health", headers={"Authorization": "Basic dG9rLWNhcm9s"}).status_code == 401
    r = client.get("/api/v1/health", headers=auth("viewer"))
    assert r.status_code == 200 and r.json()["role"] == "viewer" and r.json()["database"] == "ok"
    r = client.post("/api/v1/plan", json={"date": DAY}, headers=auth("viewer"))
    assert r.status_code == 403 and "vic (viewer) may not" in r.json()["detail"]
    r = client.post("/api/v1/events", json={"type": "case_cancelled", "case_id": "C0001", "idempotency_key": "k"},
                    headers=auth("leadership"))
    assert r.status_code == 403 and "re-plan" in r.json()["detail"]


def test_openapi_docs_are_served(client) -> None:
    assert client.get("/docs").status_code == 200
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/api/v1/health", "/api/v1/schedule", "/api/v1/plan", "/api/v1/jobs/{job_id}", "/api/v1/events"} <= set(paths)


def test_plan_job_proposes_an_audited_version_and_schedule_reads_it(client, service) -> None:
    empty = client.get("/api/v1/schedule", params={"date": DAY}, headers=auth("viewer")).json()
    assert empty["schedule"] == [] and empty["versions"][0]["version_id"] is None
    r = client.post("/api/v1/plan", json={"date": DAY, "days": 2, "solver": "rules"}, headers=auth("coordinator"))
    assert r.status_code == 202 and set(r.json()) == {"id", "status"}
    j = wait_job(client, r.json()["id"])
    assert j["status"] == "done" and j["progress"] == 1.0, j
    vid = j["result"]["version_id"]
    assert j["result"]["forecasts"] == "booked minutes"
    log = read_log(service.gov.engine, service.hospital_id)
    assert (log["kind"] == "recommendation").sum() == 1 and log.iloc[-1]["actor"] == "carol"
    s = client.get("/api/v1/schedule", params={"date": DAY, "days": 2}, headers=auth("viewer")).json()
    assert [v["version_id"] for v in s["versions"]] == [vid, vid] and {v["status"] for v in s["versions"]} == {"proposed"}
    rows = s["schedule"]
    booked = service.hospital.cases[service.hospital.cases["status"] == "booked"]
    assert sorted(r["case_id"] for r in rows) == sorted(booked["case_id"])
    assert list(rows[0])[: len(SCHEDULE_COLUMNS)] == SCHEDULE_COLUMNS


def test_schedule_prefers_the_published_version(client) -> None:
    vid = plan_and_publish(client)
    r = client.post("/api/v1/plan", json={"date": DAY, "solver": "rules"}, headers=auth("coordinator"))
    newer = wait_job(client, r.json()["id"])["result"]["version_id"]
    assert newer != vid
    s = client.get("/api/v1/schedule", params={"date": DAY}, headers=auth("viewer")).json()
    assert s["versions"][0] == {"date": DAY, "version_id": vid, "status": "published"}


def test_bad_requests_name_the_field(client) -> None:
    h = auth("coordinator")
    cases = [
        (client.get("/api/v1/schedule", params={"date": "04/01/2027"}, headers=h), 422, "date"),
        (client.get("/api/v1/schedule", headers=h), 422, "date"),
        (client.get("/api/v1/schedule", params={"date": DAY, "days": 0}, headers=h), 422, "days"),
        (client.post("/api/v1/plan", json={"days": 1}, headers=h), 422, "date"),
        (client.post("/api/v1/plan", json={"date": "2027-13-01"}, headers=h), 422, "date"),
        (client.post("/api/v1/plan", json={"date": DAY, "days": 9}, headers=h), 422, "days"),
        (client.post("/api/v1/plan", json={"date": DAY, "solver": "cplex"}, headers=h), 422, "solver"),
        (client.post("/api/v1/plan", json={"date": DAY, "colour": "red"}, headers=h), 422, "colour"),
        (client.post("/api/v1/events", json={"type": "case_cancelled", "case_id": "C1"}, headers=h), 422, "idempotency_key"),
        (client.post("/api/v1/events", json={"type": "meteor", "idempotency_key": "k"}, headers=h), 422, "type"),
        (client.post("/api/v1/events", json={"type": "case_cancelled", "idempotency_key": "k"}, headers=h), 422, "case_id"),
        (client.post("/api/v1/events", json={"type": "room_down", "idempotency_key": "k"}, headers=h), 422, "room_id"),
        (client.post("/api/v1/events", json={"type": "room_down", "room_id": "OR9", "idempotency_key": "k"}, headers=h),
         422, "room_id"),
        (client.post("/api/v1/events", json={"type": "case_running_long", "case_id": "C1", "idempotency_key": "k"},
                     headers=h), 422, "extra_minutes"),
        (client.post("/api/v1/events", json={"type": "case_running_long", "case_id": "C1", "extra_minutes": "lots",
                                              "idempotency_key": "k"}, headers=h), 422, "extra_minutes"),
        (client.post("/api/v1/events", json={"type": "case_booked", "case_id": "A1", "idempotency_key": "k"}, headers=h),
         422, "service_line"),
        (client.post("/api/v1/events", json={"type": "case_booked", "case_id": "A1", "service_line": "Urology",
                                              "idempotency_key": "k"}, headers=h), 422, "p50"),
        (client.post("/api/v1/events", json={"type": "case_booked", "case_id": "A1", "service_line": "Urology", "p50": 60,
                                              "surgeon_id": "S99", "idempotency_key": "k"}, headers=h), 422, "surgeon_id"),
        (client.post("/api/v1/events", json={"type": "case_started", "case_id": "C1", "started_at": "noon",
                                              "idempotency_key": "k"}, headers=h), 422, "started_at"),
        (client.post("/api/v1/events", json={"type": "case_started", "idempotency_key": "k"}, headers=h), 422, "case_id"),
        (client.post("/api/v1/events", json={"type": "staffing_changed", "idempotency_key": "k"}, headers=h),
         422, "staffed_rooms"),
        (client.post("/api/v1/events", json={"type": "staffing_changed", "pacu_beds": -2, "idempotency_key": "k"},
                     headers=h), 422, "pacu_beds"),
        (client.post("/api/v1/events", json={"type": "case_rescheduled", "case_id": "C1", "idempotency_key": "k"},
                     headers=h), 422, "new_start"),
        (client.post("/api/v1/events", json={"type": "case_modified", "case_id": "C1", "idempotency_key": "k"},
                     headers=h), 422, "booked_minutes"),
        (client.post("/api/v1/events", json={"type": "case_cancelled", "case_id": "C1", "at": "yesterday",
                                              "idempotency_key": "k"}, headers=h), 422, "at"),
        (client.get("/api/v1/jobs/nope", headers=h), 404, None),
        (client.post("/api/v1/versions/999/approve", json={}, headers=auth("leadership")), 404, None),
    ]
    for r, code, field in cases:
        assert r.status_code == code, (field, r.status_code, r.text)
        if field:
            assert field in r.text, (field, r.text)
    big = client.post("/api/v1/events", content=b"{" + b" " * 2_000_000 + b"}", headers={**h, "Content-Type": "application/json"})
    assert big.status_code == 413


def test_event_before_any_plan_is_refused_naming_the_day(client) -> None:
    r = client.post("/api/v1/events", json={"type": "case_cancelled", "case_id": "C0041", "at": f"{DAY}T09:00",
                                            "idempotency_key": "k0"}, headers=auth("coordinator"))
    assert r.status_code == 422 and "at" in r.text and "plan the day first" in r.text


def test_cancellation_replans_the_day_once_per_idempotency_key(client, service) -> None:
    vid = plan_and_publish(client)
    rows = client.get("/api/v1/schedule", params={"date": DAY}, headers=auth("coordinator")).json()["schedule"]
    sched = sorted((r for r in rows if r["status"] == "scheduled"), key=lambda r: r["start"])
    gone = sched[-1]["case_id"]
    body = {"type": "case_cancelled", "case_id": gone, "at": f"{DAY}T07:00", "idempotency_key": "evt-1"}
    r = client.post("/api/v1/events", json=body, headers=auth("coordinator"))
    assert r.status_code == 200, r.text
    a = r.json()
    assert r.headers["idempotent-replay"] == "false"
    assert a["base_version_id"] == vid and a["version_id"] > vid and a["status"] == "proposed"
    assert a["event"] == f"case {gone} was cancelled"
    assert any(c["case_id"] == gone and c["change"] == "removed" for c in a["changes"])
    n_log = len(read_log(service.gov.engine, service.hospital_id))
    again = client.post("/api/v1/events", json=body, headers=auth("coordinator"))
    assert again.status_code == 200 and again.json() == a and again.headers["idempotent-replay"] == "true"
    assert len(read_log(service.gov.engine, service.hospital_id)) == n_log  # nothing redone, nothing audited twice
    assert len(service.gov.history(service.hospital_id)) == 2
    other = client.post("/api/v1/events", json={**body, "case_id": sched[0]["case_id"]}, headers=auth("coordinator"))
    assert other.status_code == 409 and "idempotency_key" in other.text
    unknown = client.post("/api/v1/events", json={**body, "case_id": "C9999", "idempotency_key": "evt-2"},
                          headers=auth("coordinator"))
    assert unknown.status_code == 422 and "case_id" in unknown.text and "C9999" in unknown.text
    log = read_log(service.gov.engine, service.hospital_id)
    assert (log["kind"] == "replan").sum() == 1
    # the next event chains on the first one's proposal (the cancelled case stays out)
    second = sched[0]["case_id"]
    r = client.post("/api/v1/events", json={"type": "case_running_long", "case_id": second, "extra_minutes": 45,
                                            "at": f"{DAY}T08:00", "idempotency_key": "evt-3"}, headers=auth("coordinator"))
    assert r.status_code == 200, r.text
    assert r.json()["base_version_id"] == a["version_id"]
    latest = service.gov.version(r.json()["version_id"]).schedule
    assert gone not in set(latest["case_id"])


def test_room_down_and_add_on_events(client, service) -> None:
    plan_and_publish(client)
    r = client.post("/api/v1/events", json={"type": "room_down", "room_id": "OR1", "at": f"{DAY}T07:00",
                                            "idempotency_key": "rd-1"}, headers=auth("coordinator"))
    assert r.status_code == 200, r.text
    after = service.gov.version(r.json()["version_id"]).schedule
    assert not ((after["room_id"] == "OR1") & (after["status"] == "scheduled")).any()
    r = client.post("/api/v1/events", json={"type": "case_booked", "case_id": "ADD1", "service_line": "General Surgery",
                                            "p50": 45, "at": f"{DAY}T10:00", "idempotency_key": "add-1"},
                    headers=auth("coordinator"))
    assert r.status_code == 200, r.text
    assert "ADD1" in set(service.gov.version(r.json()["version_id"]).schedule["case_id"])


def test_governance_routes_keep_the_engine_checks(client) -> None:
    r = client.post("/api/v1/plan", json={"date": DAY, "solver": "rules"}, headers=auth("coordinator"))
    vid = wait_job(client, r.json()["id"])["result"]["version_id"]
    r = client.post(f"/api/v1/versions/{vid}/publish", headers=auth("coordinator"))
    assert r.status_code == 409 and "approved" in r.text  # not approved yet
    r = client.post(f"/api/v1/versions/{vid}/approve", json={}, headers=auth("coordinator"))
    assert r.status_code == 403
    r = client.post(f"/api/v1/versions/{vid}/override", json={"case_id": "C0041", "code": "no-such-code", "room_id": "OR3",
                                                             "start": "08:00"}, headers=auth("coordinator"))
    assert r.status_code in (409, 422) and "code" in r.text.lower()
    assert client.post(f"/api/v1/versions/{vid}/approve", json={}, headers=auth("leadership")).status_code == 200
    assert client.get(f"/api/v1/versions/{vid}", headers=auth("viewer")).json()["status"] == "approved"


def test_a_failed_job_reports_why(client, monkeypatch, service) -> None:
    def boom(*a, **k):
        raise ValueError("days must be within 1..7")

    monkeypatch.setattr(service, "propose_plan", boom)
    r = client.post("/api/v1/plan", json={"date": DAY, "solver": "rules"}, headers=auth("coordinator"))
    j = wait_job(client, r.json()["id"])
    assert j["status"] == "failed" and j["error"]["status_code"] == 422 and "days" in str(j["error"]["detail"])


def test_read_latency_in_process(client) -> None:
    """Not a speed test: records the in-process latency of a schedule read (printed with -s)."""
    plan_and_publish(client)
    times = []
    for _ in range(20):
        t0 = time.perf_counter()
        assert client.get("/api/v1/schedule", params={"date": DAY}, headers=auth("viewer")).status_code == 200
        times.append((time.perf_counter() - t0) * 1000)
    s = pd.Series(times)
    print(f"schedule read in-process: p50 {s.median():.1f} ms, p95 {s.quantile(0.95):.1f} ms")


def test_event_as_a_job_is_accepted_at_once_and_idempotent(client, service) -> None:
    plan_and_publish(client)
    rows = client.get("/api/v1/schedule", params={"date": DAY}, headers=auth("coordinator")).json()["schedule"]
    gone = sorted((r for r in rows if r["status"] == "scheduled"), key=lambda r: r["start"])[-1]["case_id"]
    body = {"type": "case_cancelled", "case_id": gone, "at": f"{DAY}T07:00", "idempotency_key": "async-1"}
    r = client.post("/api/v1/events", params={"wait": "false"}, json=body, headers=auth("coordinator"))
    assert r.status_code == 202, r.text
    job_id = r.json()["id"]
    again = client.post("/api/v1/events", params={"wait": "false"}, json=body, headers=auth("coordinator"))
    assert again.status_code in (200, 202)
    if again.status_code == 202:
        assert again.json()["id"] == job_id  # still queued or running: the same job
    j = wait_job(client, job_id)
    assert j["status"] == "done" and j["result"]["event"] == f"case {gone} was cancelled", j
    later = client.post("/api/v1/events", params={"wait": "false"}, json=body, headers=auth("coordinator"))
    assert later.status_code == 200 and later.json() == j["result"]
    assert (read_log(service.gov.engine, service.hospital_id)["kind"] == "replan").sum() == 1
    bad = client.post("/api/v1/events", params={"wait": "false"}, json={**body, "case_id": "C9999", "idempotency_key": "async-2"},
                      headers=auth("coordinator"))
    jb = wait_job(client, bad.json()["id"])
    assert jb["status"] == "failed" and jb["error"]["status_code"] == 422 and "case_id" in str(jb["error"]["detail"])


def test_a_plan_after_a_cancellation_event_leaves_the_case_out(client, service) -> None:
    plan_and_publish(client)
    rows = client.get("/api/v1/schedule", params={"date": DAY}, headers=auth("coordinator")).json()["schedule"]
    gone = sorted((r for r in rows if r["status"] == "scheduled"), key=lambda r: r["start"])[-1]["case_id"]
    r = client.post("/api/v1/events", json={"type": "case_cancelled", "case_id": gone, "at": f"{DAY}T07:00",
                                            "idempotency_key": "gone-1"}, headers=auth("coordinator"))
    assert r.status_code == 200, r.text
    r = client.post("/api/v1/plan", json={"date": DAY, "solver": "rules"}, headers=auth("coordinator"))
    j = wait_job(client, r.json()["id"])
    assert j["status"] == "done" and j["result"]["cancelled_by_events"] == [gone]
    assert gone not in set(service.gov.version(j["result"]["version_id"]).schedule["case_id"])
    assert (service.hospital.cases.set_index("case_id").loc[gone, "status"]) == "booked"  # the engine's data untouched


def test_override_and_rollback_over_the_api(client, service) -> None:
    first = plan_and_publish(client)
    sched = service.gov.version(first).schedule
    row = sched[sched["status"] == "scheduled"].iloc[0]
    r = client.post(f"/api/v1/versions/{first}/override", json={"case_id": row["case_id"], "action": "lock",
                                                               "code": "surgeon_request", "note": "keep it"},
                    headers=auth("coordinator"))
    assert r.status_code == 200, r.text
    ov = r.json()
    assert ov["status"] == "proposed" and ov["parent_id"] == first and ov["plan"]["edited"] is True
    again = client.post(f"/api/v1/versions/{first}/override", json={"case_id": row["case_id"], "action": "lock",
                                                                   "code": "surgeon_request"}, headers=auth("coordinator"))
    assert again.status_code == 409 and "changed while you were working" in again.text  # optimistic concurrency
    r = client.post("/api/v1/rollback", json={"date": DAY, "to": "last_approved", "reason": "test"}, headers=auth("viewer"))
    assert r.status_code == 403
    r = client.post("/api/v1/rollback", json={"date": DAY, "reason": ""}, headers=auth("coordinator"))
    assert r.status_code == 422 and "reason" in r.text
    r = client.post("/api/v1/rollback", json={"date": DAY, "to": "rules", "reason": "feed looks wrong"},
                    headers=auth("coordinator"))
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "proposed" and r.json()["rollback_of"] == first  # the rules schedule goes through approval


def test_a_key_reserved_by_another_service_is_not_applied_twice(client, service) -> None:
    """Two services on one store: the one that reserved the key applies it; the other answers 409 meanwhile."""
    import datetime as dt

    import sqlalchemy as sa

    plan_and_publish(client)
    rows = client.get("/api/v1/schedule", params={"date": DAY}, headers=auth("coordinator")).json()["schedule"]
    gone = [r for r in rows if r["status"] == "scheduled"][0]["case_id"]
    body = {"type": "case_cancelled", "case_id": gone, "at": f"{DAY}T07:00", "idempotency_key": "shared-1"}
    from engine.api.models import EventRequest

    req_hash = service._request_hash(EventRequest.model_validate(body).model_dump(mode="json"))
    with service.gov.engine.begin() as conn:  # as another service would, mid-way through the same event
        conn.execute(service._events.insert().values(idempotency_key="shared-1", hospital_id=service.hospital_id,
                                                     request_sha256=req_hash, actor="carol", response_json="",
                                                     at=dt.datetime(2027, 1, 4, 7, 0, 1)))
    r = client.post("/api/v1/events", json=body, headers=auth("coordinator"))
    assert r.status_code == 409 and "being applied by another request" in r.text, r.text
    assert (read_log(service.gov.engine, service.hospital_id)["kind"] == "replan").sum() == 0
    with service.gov.engine.begin() as conn:
        conn.execute(sa.delete(service._events))
    assert client.post("/api/v1/events", json=body, headers=auth("coordinator")).status_code == 200
    with service.gov.engine.connect() as conn:
        assert conn.execute(sa.select(service._events.c.response_json)).scalar_one() != ""
