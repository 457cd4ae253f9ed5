"""The FastAPI application: ``/api/v1`` (health, schedule, plan jobs, events, governance), plus the FHIR,
iCalendar and HL7 routers. Errors: 401 no/unknown token, 403 role, 404 unknown id, 409 conflict, 413
body too large, 422 bad field (``detail`` names it), 503 database unavailable."""
from __future__ import annotations

import contextlib
import logging
import threading
import time
from typing import Any

import pandas as pd
import sqlalchemy.exc
from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.responses import JSONResponse

from engine.api.auth import current_user, needs
from engine.api.jobs import JobRunner
from engine.api.events import BadEvent, Pending, to_event
from engine.api.models import EventRequest, PlanRequest
from engine.api.service import DuplicateKey, Service, ServiceParams, records
from engine.errors import InputError
from engine.governance import ConflictError, PublicationWithheld, User, WorkflowError, mask_reasons_for_role
from engine.plan.replan import Event

log = logging.getLogger(__name__)


#: the store's failures that mean "the database is away" (503, try again), not a bad request
DB_UNAVAILABLE = (sqlalchemy.exc.OperationalError, sqlalchemy.exc.InterfaceError, sqlalchemy.exc.TimeoutError,
                  sqlalchemy.exc.DisconnectionError)


def problem_detail(exc: BaseException) -> tuple[int, Any]:
    """(status, detail) for an engine exception; the detail names the field where the engine does."""
    if isinstance(exc, InputError):
        return 422, [{"loc": ["body", p.column] if p.column else ["body"], "msg": p.problem,
                      **({"row": p.row} if p.row is not None else {})} for p in exc.problems]
    if isinstance(exc, PermissionError):
        return 403, str(exc)
    if isinstance(exc, (DuplicateKey,)):
        return 409, [{"loc": ["body", "idempotency_key"], "msg": str(exc)}]
    if isinstance(exc, PublicationWithheld):
        return 409, {"message": str(exc), "failed": [{"gate": g.gate, "message": g.message} for g in exc.gates]}
    if isinstance(exc, (ConflictError, WorkflowError)):
        return 409, str(exc)
    if isinstance(exc, KeyError):
        return 404, str(exc.args[0]) if exc.args else str(exc)
    if isinstance(exc, ValueError):
        return 422, str(exc)
    if isinstance(exc, DB_UNAVAILABLE):
        return 503, "the database is unavailable; nothing was changed, try again shortly"
    return 500, f"internal failure: {type(exc).__name__}"


def _http(exc: BaseException) -> HTTPException:
    code, detail = problem_detail(exc)
    return HTTPException(code, detail=detail)


def _day(value: str, field: str) -> pd.Timestamp:
    import datetime as dt

    try:
        if len(value) == 10:
            return pd.Timestamp(dt.date.fromisoformat(value))
    except (ValueError, TypeError):
        pass
    raise HTTPException(422, detail=[{"loc": ["query", field], "msg": f"{value!r} is not a date (YYYY-MM-DD)"}])


def _event(req: EventRequest, svc: Service) -> Event | Pending:
    """The re-planner's Event for a request (engine/api/events.py); 422 naming the missing or unknown field."""
    try:
        return to_event(req, set(svc.hospital.rooms["room_id"]), set(svc.hospital.surgeons["surgeon_id"]))
    except BadEvent as exc:
        raise HTTPException(422, detail=[{"loc": ["body", exc.field], "msg": str(exc)}]) from exc


class _TooLarge(HTTPException):
    """Raised from the body's receive: FastAPI passes an HTTPException through its body parsing (413)."""


class BodyLimit:
    """ASGI middleware: a request body over ``max_bytes`` is answered 413 before the route runs, whether its
    ``Content-Length`` says so at once or a chunked body (no length) grows past the limit while read. Every
    answer carries ``X-Elapsed-Ms`` (the time the service took)."""

    def __init__(self, app: Any, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    def _refuse(self) -> JSONResponse:
        return JSONResponse({"detail": f"the request body is larger than {self.max_bytes} bytes"}, 413)

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        size = dict(scope.get("headers") or []).get(b"content-length")
        if size is not None and (not size.isdigit() or int(size) > self.max_bytes):
            return await self._refuse()(scope, receive, send)
        seen, started, t0 = 0, False, time.perf_counter()

        async def counted_receive():
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise _TooLarge(413, detail=f"the request body is larger than {self.max_bytes} bytes")
            return message

        async def watched_send(message):
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                ms = f"{(time.perf_counter() - t0) * 1000:.1f}".encode()
                message = {**message, "headers": [*message.get("headers", []), (b"x-elapsed-ms", ms)]}
            await send(message)

        try:
            await self.app(scope, counted_receive, watched_send)
        except _TooLarge:
            if started:
                raise
            await self._refuse()(scope, receive, send)


def create_app(params: ServiceParams | None = None, service: Service | None = None) -> FastAPI:
    """The service app for one hospital (``service`` given: reuse it, e.g. in tests)."""
    svc = service or Service(params)  # type: ignore[arg-type]
    jobs = JobRunner(lambda exc: {"status_code": problem_detail(exc)[0], "detail": problem_detail(exc)[1]})
    event_jobs = JobRunner(lambda exc: {"status_code": problem_detail(exc)[0], "detail": problem_detail(exc)[1]})
    drop = None
    if svc.params.hl7_drop_dir is not None:
        import os

        from engine.api.hl7 import DropFolder
        from engine.governance import user_from_token

        token = os.environ.get("OR_DROP_TOKEN")
        if not token:
            raise PermissionError("OR_DROP_TOKEN must hold the API token the HL7 drop folder acts as")
        drop = DropFolder(svc.params.hl7_drop_dir, svc, _event_applier(svc), user_from_token(token),
                          svc.params.hl7_drop_interval_s)

    import os

    from engine.api.amqp import consumer_from_env

    bus = consumer_from_env(svc, _event_applier(svc), dict(os.environ))  # None unless OR_AMQP_URL is set

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI):
        if drop is not None:
            drop.start()
        if bus is not None:
            bus.start()
        yield
        if bus is not None:
            bus.stop()
        if drop is not None:
            drop.stop()
        jobs.stop()
        event_jobs.stop()

    app = FastAPI(lifespan=lifespan, title="Predictive OR allocation", version="1",
                  description="Schedules, plans, events and standards (FHIR R4, HL7 v2, iCalendar) for one hospital. "
                              "Every route needs `Authorization: Bearer <token>` (OR_API_TOKENS / OR_API_TOKENS_FILE).")
    app.state.service, app.state.jobs, app.state.hl7_drop, app.state.amqp = svc, jobs, drop, bus

    app.add_middleware(BodyLimit, max_bytes=svc.params.max_body_bytes)  # outermost: before anything reads the body

    async def db_down(request: Request, exc: Exception) -> JSONResponse:
        log.warning("database unavailable: %s", str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
        return JSONResponse({"detail": problem_detail(exc)[1]}, 503, headers={"Retry-After": "5"})

    for kind in DB_UNAVAILABLE:
        app.add_exception_handler(kind, db_down)

    @app.get("/api/v1/health", tags=["service"])
    def health(user: User = Depends(current_user)) -> dict[str, Any]:
        """Alive, which hospital, and whether the store answers."""
        db = "ok"
        try:
            with svc.gov.engine.connect() as conn:
                conn.exec_driver_sql("SELECT 1")
        except sqlalchemy.exc.SQLAlchemyError:
            db = "unavailable"
        return {"status": "ok" if db == "ok" else "degraded", "hospital_id": svc.hospital_id, "database": db,
                "user": user.name, "role": user.role}

    @app.get("/api/v1/schedule", tags=["schedules"])
    def schedule(date: str = Query(..., description="YYYY-MM-DD"), days: int = Query(1, ge=1, le=14),
                 user: User = Depends(needs("view_schedule"))) -> dict[str, Any]:
        """The schedule per day: the published version in force, else the newest proposed one (schedule.csv
        columns; patient details masked for non-clinical roles)."""
        start = _day(date, "date")

        def build() -> dict[str, Any]:
            df, used = svc.schedule(start, days)
            return {"hospital_id": svc.hospital_id, "versions": used, "schedule": records(mask_reasons_for_role(df, user))}

        return JSONResponse(svc.cached(("schedule-json", f"{start:%Y-%m-%d}", days, user.role), build))

    @app.post("/api/v1/plan", status_code=202, tags=["schedules"])
    def plan_job(req: PlanRequest, user: User = Depends(needs("propose"))) -> dict[str, Any]:
        """Plan and propose the horizon in the background: 202 with the job id (GET /api/v1/jobs/{id})."""
        start = pd.Timestamp(req.date)
        job = jobs.submit("plan", user.name, lambda progress: svc.propose_plan(user, start, req.days, req.solver,
                                                                              req.time_limit_s, progress))
        return {"id": job.id, "status": job.status}

    @app.get("/api/v1/jobs/{job_id}", tags=["schedules"])
    def job(job_id: str, user: User = Depends(current_user)) -> dict[str, Any]:
        j = jobs.get(job_id) or event_jobs.get(job_id)
        if j is None:
            raise HTTPException(404, detail=f"no job {job_id!r}")
        return j.view()

    pending: dict[str, tuple[str, dict[str, Any]]] = {}  # idempotency key -> (job id, body) of an event still queued
    pending_lock = threading.Lock()

    @app.post("/api/v1/events", tags=["events"], responses={202: {"description": "accepted as a job (wait=false)"}})
    def event(req: EventRequest, wait: bool = Query(True, description="false: answer 202 with a job id at once"),
              user: User = Depends(needs("replan"))) -> JSONResponse:
        """Apply an event and re-plan its day (proposed through governance, audited). The same
        idempotency_key again returns the first answer (header ``Idempotent-Replay: true``), or with
        ``wait=false`` the same job."""
        body = req.model_dump(mode="json")

        def same_job() -> JSONResponse | None:
            """The job this service already runs for the key (its reservation is not another service's)."""
            queued = pending.get(req.idempotency_key)
            if queued is None:
                return None
            if queued[1] != body:
                raise DuplicateKey(f"idempotency_key {req.idempotency_key!r} was already used for a different event")
            return JSONResponse({"id": queued[0], "status": event_jobs.get(queued[0]).status},  # type: ignore[union-attr]
                                202, headers={"Idempotent-Replay": "true"})

        try:
            if not wait:
                # Before the store's check: while this service's job runs, the key is reserved
                # there without an answer, which the store reads as another service's (409).
                with pending_lock:
                    running = same_job()
                if running is not None:
                    return running
            old = svc.replayed(req.idempotency_key, body)
            if old is not None:
                return JSONResponse(old, headers={"Idempotent-Replay": "true"})
            ev = _event(req, svc)
            at = pd.Timestamp(req.at) if req.at is not None else svc.now()
            if not wait:
                with pending_lock:
                    running = same_job()
                    if running is not None:
                        return running

                    def run(progress, key=req.idempotency_key):
                        try:
                            progress(0.1, "re-planning")
                            waited, pause = 0.0, 1.0
                            while True:  # accepted (202): a database outage is waited out, then retried
                                try:
                                    return svc.apply_event(user, key, body, ev, at)[0]
                                except DB_UNAVAILABLE:
                                    if waited >= svc.params.event_retry_s:
                                        raise
                                    progress(0.1, f"the database is unavailable; retrying in {pause:.0f} s")
                                    time.sleep(pause)
                                    waited, pause = waited + pause, min(pause * 2, 8.0)
                        finally:
                            with pending_lock:
                                pending.pop(key, None)

                    job = event_jobs.submit("event", user.name, run)
                    pending[req.idempotency_key] = (job.id, body)
                return JSONResponse({"id": job.id, "status": job.status}, 202, headers={"Idempotent-Replay": "false"})
            answer, replay = svc.apply_event(user, req.idempotency_key, body, ev, at)
        except HTTPException:
            raise
        except Exception as exc:  # noqa: BLE001 - mapped to a status naming the field
            if problem_detail(exc)[0] == 500:
                log.exception("event failed")
            raise _http(exc) from exc
        return JSONResponse(answer, headers={"Idempotent-Replay": "true" if replay else "false"})

    from engine.api.routes_gov import add_governance_routes

    add_governance_routes(app, svc, _http)
    for extra in ("engine.api.ical", "engine.api.fhir", "engine.api.hl7"):
        try:
            mod = __import__(extra, fromlist=["router"])
        except ModuleNotFoundError as exc:
            if exc.name != extra:
                raise
            continue
        app.include_router(mod.make_router(svc, _event_applier(svc)))

    return app


def _event_applier(svc: Service):
    """apply(user, EventRequest) -> (answer, replayed): the events path, for HL7 and the drop folder."""
    def apply(user: User, req: EventRequest) -> tuple[dict, bool]:
        body = req.model_dump(mode="json")
        old = svc.replayed(req.idempotency_key, body)
        if old is not None:
            return old, True
        ev = _event(req, svc)
        at = pd.Timestamp(req.at) if req.at is not None else svc.now()
        return svc.apply_event(user, req.idempotency_key, body, ev, at)

    return apply
