"""Events from RabbitMQ (engine/api/amqp.py) against the local broker (guest/guest@localhost:5672, or
TEST_AMQP_URL): a published cancellation is consumed and the day re-planned, sent twice it is applied once,
a malformed or refused message goes to the dead-letter queue with its reason (audited) and changes nothing.
Skips with a message only when no broker answers. Each run uses its own queue names (deleted after)."""
from __future__ import annotations

import json
import os
import socket
import time
import uuid

import pytest

from engine.api.amqp import AmqpParams, Refused, consumer_from_env, decide
from tests.engine.api.conftest import DAY, auth, plan_and_publish

AMQP_URL = os.environ.get("TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/%2F")


def _broker_reason() -> str | None:
    from urllib.parse import urlparse

    u = urlparse(AMQP_URL)
    try:
        socket.create_connection((u.hostname or "127.0.0.1", u.port or 5672), timeout=3).close()
        return None
    except OSError as exc:
        return f"no RabbitMQ broker answers at {u.hostname}:{u.port or 5672} ({exc.strerror or exc})"


@pytest.fixture
def queue_name():
    reason = _broker_reason()
    if reason:
        pytest.skip(reason)
    import pika

    name = f"or-events-test-{uuid.uuid4().hex[:10]}"
    yield name
    conn = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
    ch = conn.channel()
    for q in (name, f"{name}.dead"):
        ch.queue_delete(q)
    conn.close()


def _publish(queue: str, *bodies: bytes) -> None:
    import pika

    conn = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
    ch = conn.channel()
    ch.queue_declare(queue, durable=True)
    for b in bodies:
        ch.basic_publish("", queue, b, pika.BasicProperties(content_type="application/json", delivery_mode=2))
    conn.close()


def _dead_letters(queue: str) -> list[tuple[dict, bytes]]:
    import pika

    conn = pika.BlockingConnection(pika.URLParameters(AMQP_URL))
    ch = conn.channel()
    out = []
    while True:
        method, props, body = ch.basic_get(f"{queue}.dead", auto_ack=True)
        if method is None:
            break
        out.append((dict(props.headers or {}), body))
    conn.close()
    return out


def _until(pred, timeout_s: float = 90.0, what: str = "") -> None:
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout_s:
        if pred():
            return
        time.sleep(0.2)
    raise AssertionError(f"not seen within {timeout_s} s: {what}")


def test_a_published_cancellation_is_consumed_and_the_day_replanned(service, queue_name, monkeypatch) -> None:
    from fastapi.testclient import TestClient

    from engine.api import create_app

    monkeypatch.setenv("OR_AMQP_URL", AMQP_URL)
    monkeypatch.setenv("OR_AMQP_QUEUE", queue_name)
    monkeypatch.setenv("OR_AMQP_TOKEN", "tok-carol")
    app = create_app(service=service)
    bus = app.state.amqp
    assert bus is not None and bus.params.queue == queue_name
    with TestClient(app) as client:
        vid = plan_and_publish(client)
        sched = service.gov.version(vid).schedule
        gone = sched[sched["status"] == "scheduled"].sort_values("start").iloc[-1]["case_id"]
        n_versions = len(service.gov.history(service.hospital_id))
        ev = json.dumps({"type": "case_cancelled", "case_id": gone, "at": f"{DAY}T07:00", "idempotency_key": "amqp-1"}).encode()
        bad = [b"not json {", json.dumps({"type": "case_cancelled", "at": f"{DAY}T07:00", "idempotency_key": "amqp-2"}).encode(),
               json.dumps({"type": "case_cancelled", "case_id": "NOPE", "at": f"{DAY}T07:00", "idempotency_key": "amqp-3"}).encode()]
        _publish(queue_name, ev, ev, *bad)
        _until(lambda: bus.counts["applied"] + bus.counts["replayed"] + bus.counts["dead_lettered"] >= 5,
               what=f"5 messages handled, counts {bus.counts}")
        assert bus.counts == {"applied": 1, "replayed": 1, "dead_lettered": 3, "requeued": 0}
        s = client.get("/api/v1/schedule", params={"date": DAY}, headers=auth("viewer")).json()
        # the day re-planned once: one new proposed version, without the cancelled case
        assert len(service.gov.history(service.hospital_id)) == n_versions + 1
        newest = int(service.gov.history(service.hospital_id)["version_id"].max())
        new_sched = service.gov.version(newest).schedule
        assert gone not in set(new_sched.loc[new_sched["status"] == "scheduled", "case_id"])
        assert s["versions"][0]["version_id"] == vid  # the published one stays in force until the re-plan is published
    dead = _dead_letters(queue_name)
    reasons = sorted(h["x-or-reason"] for h, _ in dead)
    assert len(dead) == 3, reasons
    assert any(r.startswith("400") and "not JSON" in r for r in reasons)
    assert any("case_id" in r and "required" in r for r in reasons)
    assert any(r.startswith("422 case_id") and "'NOPE'" in r for r in reasons)
    log = service.gov.audit_log(service.hospital_id, service_user())
    assert (log["kind"] == "replan").sum() == 1  # sent twice, applied once
    notes = [p for k, p in zip(log["kind"], log["payload"]) if k == "note" and p.get("source") == "amqp"]
    assert len(notes) == 3 and all(p["queue"] == queue_name for p in notes)


def service_user():
    from engine.governance import User

    return User("gina", "governance")


def test_decide_refuses_without_a_broker(service) -> None:
    """The refusal path is the events path: each refusal names its field and status (no broker needed)."""
    from engine.api.app import _event_applier
    from engine.governance import User

    apply = _event_applier(service)
    user = User("carol", "coordinator")
    cases = [(b"\xff\xfe", 400, None), (b"[1, 2]", 422, None),
             (json.dumps({"type": "case_exploded", "idempotency_key": "k"}).encode(), 422, "type"),
             (json.dumps({"type": "room_down", "idempotency_key": "k", "room_id": "OR99", "at": f"{DAY}T08:00"}).encode(), 422, "room_id"),
             (json.dumps({"type": "room_down", "idempotency_key": "k", "room_id": "OR1", "at": "tomorrow"}).encode(), 422, "at"),
             (json.dumps({"type": "room_down", "room_id": "OR1"}).encode(), 422, "idempotency_key")]
    for body, status, field in cases:
        with pytest.raises(Refused) as exc:
            decide(service, apply, user, body)
        assert exc.value.status == status and exc.value.field == field, (body, exc.value.reason())
    viewer = User("vic", "viewer")
    with pytest.raises(Refused) as exc:  # nothing planned for the day yet: 422 naming at
        decide(service, apply, user, json.dumps({"type": "room_down", "room_id": "OR1", "at": f"{DAY}T08:00",
                                                 "idempotency_key": "k2"}).encode())
    assert exc.value.status == 422 and exc.value.field == "at"
    with pytest.raises(PermissionError):  # the bus's identity must be allowed to re-plan
        from engine.api.amqp import AmqpConsumer

        AmqpConsumer(AmqpParams(url="amqp://x"), service, apply, viewer)


def test_consumer_configuration_errors_name_the_variable(service) -> None:
    from engine.api.app import _event_applier

    apply = _event_applier(service)
    assert consumer_from_env(service, apply, {}) is None  # the embedded default: no broker needed
    with pytest.raises(PermissionError, match="OR_AMQP_TOKEN"):
        consumer_from_env(service, apply, {"OR_AMQP_URL": "amqp://guest:guest@localhost/"})
    with pytest.raises(ValueError, match="OR_AMQP_URL"):
        consumer_from_env(service, apply, {"OR_AMQP_URL": "http://x", "OR_AMQP_TOKEN": "tok-carol"})
    with pytest.raises(ValueError, match="OR_AMQP_QUEUE"):
        AmqpParams(url="amqp://x", queue="q" * 201)
