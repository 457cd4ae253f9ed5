"""Events from a RabbitMQ queue (``pika``), when the hospital has a bus: ``OR_AMQP_URL`` set.

Each message body is the JSON of ``POST /api/v1/events`` and goes down the same path
(``EventRequest`` -> ``engine.api.app._event_applier``: the replay check, the field checks of
``to_event``, ``Service.apply_event``), as the user of the ``OR_AMQP_TOKEN`` token:

- applied (or already applied: the idempotency key) -> ``basic_ack``, only after the re-plan, its
  proposal and the stored answer are committed; with ``reply_to`` set the answer is published there
  (same ``correlation_id``);
- refused (not JSON, a field the schema or the engine refuses, a key reused for another event) ->
  republished to the dead-letter queue ``<queue>.dead`` with the reason in the header ``x-or-reason``,
  audited (kind ``note``, ``source: amqp``), logged, then acked: nothing changed;
- the database unavailable (or another transient failure) -> ``basic_nack(requeue=True)`` after a pause:
  the message is tried again, nothing was half-applied (the events path writes nothing on failure).

One consumer thread with its own connection (pika's BlockingConnection is not thread-safe), prefetch 1,
reconnecting with a bounded back-off when the broker goes away. The embedded default (no ``OR_AMQP_URL``)
starts none of this and needs no broker.
"""
from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable

import sqlalchemy.exc

log = logging.getLogger(__name__)

URL_ENV, QUEUE_ENV, TOKEN_ENV = "OR_AMQP_URL", "OR_AMQP_QUEUE", "OR_AMQP_TOKEN"
DEFAULT_QUEUE = "or-events"


@dataclass(frozen=True)
class AmqpParams:
    """``url`` an AMQP URL (``amqp://guest:guest@localhost:5672/%2F``); ``queue`` the events queue (durable;
    its dead letters go to ``<queue>.dead``); ``retry_pause_s`` the pause before a transient failure is
    requeued; ``reconnect_max_s`` the longest back-off between reconnection attempts."""

    url: str
    queue: str = DEFAULT_QUEUE
    retry_pause_s: float = 2.0
    reconnect_max_s: float = 30.0

    def __post_init__(self) -> None:
        if not self.url.startswith(("amqp://", "amqps://")):
            raise ValueError(f"{URL_ENV} must be an amqp:// or amqps:// URL, got {self.url.split('@')[-1]!r}")
        if not self.queue or len(self.queue) > 200:
            raise ValueError(f"{QUEUE_ENV} must be a queue name of 1..200 characters, got {self.queue!r}")
        if not 0 <= self.retry_pause_s <= 60:
            raise ValueError(f"retry_pause_s must be within [0, 60], got {self.retry_pause_s!r}")
        if not 0 < self.reconnect_max_s <= 600:
            raise ValueError(f"reconnect_max_s must be within (0, 600], got {self.reconnect_max_s!r}")

    @property
    def dead_letter_queue(self) -> str:
        return f"{self.queue}.dead"


class Refused(Exception):
    """A message that will never apply (dead-lettered): ``field`` the field named, ``status`` the HTTP status
    ``POST /api/v1/events`` would have answered."""

    def __init__(self, status: int, field: str | None, message: str) -> None:
        super().__init__(message)
        self.status, self.field = status, field

    def reason(self) -> str:
        return f"{self.status} {self.field + ': ' if self.field else ''}{self}"


def decide(svc: Any, apply: Callable[[Any, Any], tuple[dict, bool]], user: Any, body: bytes) -> tuple[dict, bool]:
    """(answer, replayed) for one message body; Refused when it can never apply; any other exception is
    transient (the caller requeues it)."""
    from fastapi import HTTPException
    from pydantic import ValidationError

    from engine.api.app import problem_detail
    from engine.api.models import EventRequest

    try:
        data = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise Refused(400, None, f"the message body is not JSON: {exc}") from None
    try:
        req = EventRequest.model_validate(data)
    except ValidationError as exc:
        e = exc.errors()[0]
        field = ".".join(str(x) for x in e["loc"]) if e["loc"] else None
        raise Refused(422, field, e["msg"]) from None
    try:
        return apply(user, req)
    except HTTPException as exc:  # the events path's 422 naming a field
        if exc.status_code >= 500:
            raise
        d = exc.detail[0] if isinstance(exc.detail, list) and exc.detail else {"loc": [], "msg": exc.detail}
        raise Refused(exc.status_code, str(d["loc"][-1]) if d.get("loc") else None, str(d.get("msg"))) from None
    except sqlalchemy.exc.OperationalError:
        raise
    except Exception as exc:  # noqa: BLE001 - the engine's refusals (422/404/409) are final; 5xx are transient
        status, detail = problem_detail(exc)
        if status >= 500:
            raise
        if isinstance(detail, list) and detail:
            raise Refused(status, str(detail[0]["loc"][-1]) if detail[0].get("loc") else None, str(detail[0]["msg"])) from None
        raise Refused(status, None, str(detail)) from None


class AmqpConsumer:
    """Consumes ``params.queue`` on a daemon thread as ``user`` (who must be allowed to ``replan``)."""

    def __init__(self, params: AmqpParams, svc: Any, apply: Callable[[Any, Any], tuple[dict, bool]], user: Any) -> None:
        from engine.governance import require

        require(user, "replan")  # the bus's identity must be allowed to re-plan, checked once at start
        self.params, self.svc, self.apply, self.user = params, svc, apply, user
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="engine-api-amqp", daemon=True)
        self.counts = {"applied": 0, "replayed": 0, "dead_lettered": 0, "requeued": 0}
        self.connected = threading.Event()

    def start(self) -> "AmqpConsumer":
        self._thread.start()
        return self

    def stop(self, timeout_s: float = 10.0) -> None:
        self._stop.set()  # the thread looks every 0.5 s (and after the message at hand)
        self._thread.join(timeout_s)

    # ------------------------------------------------------------------ the consumer thread

    def _run(self) -> None:
        import pika
        import pika.exceptions

        pause = 1.0
        while not self._stop.is_set():
            try:
                conn = pika.BlockingConnection(pika.URLParameters(self.params.url))
            except pika.exceptions.AMQPError as exc:
                log.warning("AMQP: cannot connect to %s (%s); again in %.0f s", self.params.url.split("@")[-1], exc, pause)
                self._stop.wait(pause)
                pause = min(pause * 2, self.params.reconnect_max_s)
                continue
            pause = 1.0
            try:
                ch = conn.channel()
                ch.queue_declare(self.params.queue, durable=True)
                ch.queue_declare(self.params.dead_letter_queue, durable=True)
                ch.basic_qos(prefetch_count=1)
                self.connected.set()
                log.warning("AMQP: consuming events from queue %r as %s", self.params.queue, self.user.name)
                while not self._stop.is_set():
                    method, props, body = ch.basic_get(self.params.queue, auto_ack=False)
                    if method is None:
                        conn.process_data_events(time_limit=0.5)
                        continue
                    self._handle(ch, method, props, body)
            except pika.exceptions.AMQPError as exc:
                log.warning("AMQP: connection lost (%s); reconnecting", exc)
            finally:
                self.connected.clear()
                try:
                    if conn.is_open:
                        conn.close()
                except Exception:  # noqa: BLE001 - closing a broken connection
                    pass

    def _handle(self, ch: Any, method: Any, props: Any, body: bytes) -> None:
        import pika

        try:
            answer, replayed = decide(self.svc, self.apply, self.user, body)
        except Refused as exc:
            reason = exc.reason()
            log.warning("AMQP: message %s refused (dead-lettered): %s", method.delivery_tag, reason)
            headers = dict(getattr(props, "headers", None) or {})
            headers.update({"x-or-reason": reason, "x-or-status": exc.status, "x-or-field": exc.field or ""})
            ch.basic_publish("", self.params.dead_letter_queue, body,
                             pika.BasicProperties(headers=headers, content_type="application/json", delivery_mode=2,
                                                  correlation_id=getattr(props, "correlation_id", None)))
            self._audit_refusal(reason, body)
            ch.basic_ack(method.delivery_tag)
            self.counts["dead_lettered"] += 1
            self._reply(ch, props, {"status": exc.status, "field": exc.field, "detail": str(exc)})
            return
        except Exception as exc:  # noqa: BLE001 - transient (the database is down, ...): nothing applied, retry
            log.warning("AMQP: message %s not applied yet (%s: %s); requeued", method.delivery_tag, type(exc).__name__, exc)
            self._stop.wait(self.params.retry_pause_s)
            ch.basic_nack(method.delivery_tag, requeue=True)
            self.counts["requeued"] += 1
            return
        ch.basic_ack(method.delivery_tag)  # after apply_event committed the answer
        self.counts["replayed" if replayed else "applied"] += 1
        self._reply(ch, props, {"status": 200, "replayed": replayed, "result": answer})

    def _reply(self, ch: Any, props: Any, answer: dict[str, Any]) -> None:
        import pika

        to = getattr(props, "reply_to", None)
        if to:
            ch.basic_publish("", to, json.dumps(answer, default=str).encode(),
                             pika.BasicProperties(correlation_id=getattr(props, "correlation_id", None),
                                                  content_type="application/json"))

    def _audit_refusal(self, reason: str, body: bytes) -> None:
        from engine.governance.audit import append

        try:
            append(self.svc.gov.engine, self.svc.hospital_id, "note", self.user.name, self.user.role,
                   {"source": "amqp", "queue": self.params.queue, "refused": reason,
                    "body": body[:2000].decode("utf-8", errors="replace")})
        except Exception as exc:  # noqa: BLE001 - the log line above still says why
            log.warning("AMQP: the refusal could not be audited: %s", exc)


def consumer_from_env(svc: Any, apply: Callable[[Any, Any], tuple[dict, bool]], env: dict[str, str]) -> AmqpConsumer | None:
    """The consumer ``OR_AMQP_URL`` asks for (None when unset); PermissionError/ValueError naming the variable."""
    url = env.get(URL_ENV)
    if not url:
        return None
    from engine.governance import user_from_token

    token = env.get(TOKEN_ENV)
    if not token:
        raise PermissionError(f"{TOKEN_ENV} must hold the API token the RabbitMQ consumer acts as ({URL_ENV} is set)")
    params = AmqpParams(url=url, queue=env.get(QUEUE_ENV) or DEFAULT_QUEUE)
    return AmqpConsumer(params, svc, apply, user_from_token(token))
