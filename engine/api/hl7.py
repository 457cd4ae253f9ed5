"""HL7 v2 scheduling messages in (``hl7apy``): SIU^S12 (new booking), S13 (reschedule), S14 (modify),
S15 (cancel), S26 (no-show) become events (``case_booked``, ``case_rescheduled``, ``case_modified``,
``case_cancelled``) on the same path as ``POST /api/v1/events``; the answer is an HL7 ACK: ``AA``
applied (or already applied: the message control id MSH-10 is the idempotency key), ``AE`` a field the
engine refuses (ERR names the segment and field, nothing changed), ``AR`` a message that cannot be
read or a type not handled.

Fields read: MSH-7 (when: the event time), MSH-9 (type), MSH-10 (control id), SCH-2 filler / SCH-1
placer appointment id (the case_id), SCH-9/SCH-10 duration and units (S12, S14), SCH-11.4 the
appointment's start (S13; else AIS-4), AIP-3 the surgeon (S12: the service line is the surgeon's),
AIS-3 the procedure code (S12, optional).
"""
from __future__ import annotations

import datetime as dt
import logging
from typing import Any, Callable

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import Response
from pydantic import ValidationError

from engine.api.auth import needs
from engine.api.models import EventRequest
from engine.api.service import DuplicateKey, Service
from engine.errors import InputError
from engine.governance import User

log = logging.getLogger(__name__)

HL7_TYPE = "x-application/hl7-v2+er7"
#: event field -> the HL7 field it came from (named in the ACK's ERR segment)
FIELD_SOURCE = {"case_id": "SCH^1^2", "at": "MSH^1^7", "p50": "SCH^1^9", "booked_minutes": "SCH^1^9",
                "service_line": "AIP^1^3", "surgeon_id": "AIP^1^3", "procedure_code": "AIS^1^3",
                "idempotency_key": "MSH^1^10", "type": "MSH^1^9", "new_start": "SCH^1^11"}
TRIGGERS = {"S12": "case_booked", "S13": "case_rescheduled", "S14": "case_modified", "S15": "case_cancelled",
            "S26": "case_cancelled"}


class Reject(Exception):
    """The message is refused: ``code`` AE (application error) or AR (rejected), ``where`` SEG^seq^field."""

    def __init__(self, code: str, where: str, message: str, error_code: str = "207^Application internal error^HL70357") -> None:
        super().__init__(message)
        self.code, self.where, self.error_code = code, where, error_code


def _esc(text: str) -> str:
    return (str(text).replace("\\", "\\E\\").replace("|", "\\F\\").replace("^", "\\S\\").replace("&", "\\T\\")
            .replace("~", "\\R\\").replace("\r", " ").replace("\n", " "))


def ack(msh: dict[str, str], code: str, text: str, err: tuple[str, str] | None = None) -> str:
    """An ACK in ER7 (segments separated by CR)."""
    now = dt.datetime.now().strftime("%Y%m%d%H%M%S")
    trigger = msh.get("trigger") or ""
    control = msh.get("control") or ""
    seg = [f"MSH|^~\\&|ORALLOC|{_esc(msh.get('recv_fac', ''))}|{_esc(msh.get('send_app', ''))}|"
           f"{_esc(msh.get('send_fac', ''))}|{now}||ACK^{_esc(trigger)}^ACK|ACK{now}{_esc(control)[:10]}|P|2.5",
           f"MSA|{code}|{_esc(control)}|{_esc(text)[:200]}"]
    if err is not None:
        where, ecode = err
        seg.append(f"ERR||{where}|{ecode}|E||||{_esc(text)}")
    return "\r".join(seg) + "\r"


def _ts(value: str, where: str) -> dt.datetime:
    v = (value or "").split("+")[0].split("-")[0].split(".")[0]
    for fmt in ("%Y%m%d%H%M%S", "%Y%m%d%H%M", "%Y%m%d"):
        try:
            return dt.datetime.strptime(v, fmt)
        except ValueError:
            continue
    raise Reject("AE", where, f"{where.replace('^1^', '-')} {value!r} is not an HL7 date/time (YYYYMMDDHHMM[SS])",
                 "102^Data type error^HL70357")


def read_message(text: str) -> tuple[dict[str, str], Any]:
    """(MSH fields, parsed message); Reject AR when the message cannot be read."""
    from hl7apy.parser import parse_message

    er7 = text.replace("\r\n", "\r").replace("\n", "\r").strip()
    msh: dict[str, str] = {}
    first = er7.split("\r", 1)[0]
    if first.startswith("MSH") and len(first) > 8:
        f = first.split(first[3])
        get = lambda i: f[i - 1] if len(f) >= i else ""  # noqa: E731 - MSH-n is f[n-1] (MSH-1 is the separator)
        msh = {"send_app": get(3), "send_fac": get(4), "recv_fac": get(6), "control": get(10),
               "trigger": (get(9).split("^") + [""])[1] if get(9) else ""}
    if not first.startswith("MSH"):
        raise Reject("AR", "MSH^1", "the message must start with an MSH segment", "100^Segment sequence error^HL70357")
    try:
        m = parse_message(er7, find_groups=False)
    except Exception as exc:  # noqa: BLE001 - hl7apy raises many kinds; all mean "cannot read it"
        raise Reject("AR", "MSH^1", f"cannot parse the message: {exc}", "102^Data type error^HL70357") from exc
    return msh, m


def _field(m: Any, seg: str, n: int, comp: int | None = None) -> str:
    try:
        s = getattr(m, seg.lower())
        f = getattr(s, f"{seg.lower()}_{n}")
        v = f.to_er7()
    except Exception:  # noqa: BLE001 - an absent segment or field reads as empty
        return ""
    if comp is not None:
        parts = v.split("^")
        return parts[comp - 1] if len(parts) >= comp else ""
    return v


def _minutes(m: Any) -> float:
    """SCH-9 (duration) in minutes (SCH-10 units: minutes unless hours); Reject AE naming SCH-9."""
    raw = _field(m, "SCH", 9, 1)
    try:
        minutes = float(raw)
    except ValueError:
        raise Reject("AE", "SCH^1^9", f"SCH-9 (appointment duration) must be a number, got {raw!r}",
                     "101^Required field missing^HL70357" if not raw else "102^Data type error^HL70357") from None
    unit = _field(m, "SCH", 10, 1).lower()
    return minutes * (60 if unit in ("h", "hr", "hour", "hours") else 1)


def to_event(svc: Service, msh: dict[str, str], m: Any) -> EventRequest:
    """The EventRequest a SIU message stands for; Reject naming the segment and field otherwise."""
    mtype = _field(m, "MSH", 9, 1)
    trigger = _field(m, "MSH", 9, 2)
    if mtype != "SIU":
        raise Reject("AR", "MSH^1^9", f"MSH-9 {mtype}^{trigger}: only SIU scheduling messages are accepted",
                     "200^Unsupported message type^HL70357")
    if trigger not in TRIGGERS:
        raise Reject("AR", "MSH^1^9", f"MSH-9 SIU^{trigger}: handled are S12 (booking), S13 (reschedule), S14 (modify), "
                                      "S15 (cancel), S26 (no-show)",
                     "201^Unsupported event code^HL70357")
    control = msh.get("control") or ""
    if not control:
        raise Reject("AR", "MSH^1^10", "MSH-10 (message control id) is required: it is the idempotency key",
                     "101^Required field missing^HL70357")
    case_id = _field(m, "SCH", 2, 1) or _field(m, "SCH", 1, 1)
    if not case_id:
        raise Reject("AE", "SCH^1^2", "SCH-2 (filler appointment id) or SCH-1 (placer appointment id) must give the case id",
                     "101^Required field missing^HL70357")
    at = _ts(_field(m, "MSH", 7, 1), "MSH^1^7")
    body: dict[str, Any] = {"type": TRIGGERS[trigger], "case_id": case_id, "at": at, "idempotency_key": f"hl7:{control}"}
    if trigger == "S13":
        raw, where = _field(m, "SCH", 11, 4), "SCH^1^11"
        if not raw:
            raw, where = _field(m, "AIS", 4, 1), "AIS^1^4"
        if not raw:
            raise Reject("AE", "SCH^1^11", "SCH-11.4 (or AIS-4) must give the new start of a rescheduled appointment",
                         "101^Required field missing^HL70357")
        body["new_start"] = _ts(raw, where)
    if trigger == "S14":
        body["booked_minutes"] = _minutes(m)
    if trigger == "S12":
        minutes = _minutes(m)
        surgeon = _field(m, "AIP", 3, 1)
        s = svc.hospital.surgeons
        line = s.loc[s["surgeon_id"] == surgeon, "service_line"]
        if not surgeon or not len(line):
            raise Reject("AE", "AIP^1^3", f"AIP-3 (the surgeon) {surgeon!r} is not a known surgeon",
                         "204^Unknown key identifier^HL70357")
        body.update(surgeon_id=surgeon, service_line=str(line.iloc[0]), p50=minutes)
        code = _field(m, "AIS", 3, 1)
        if code:
            body["procedure_code"] = code
    try:
        return EventRequest.model_validate(body)
    except ValidationError as exc:
        e = exc.errors()[0]
        field = str(e["loc"][0]) if e["loc"] else "type"
        raise Reject("AE", FIELD_SOURCE.get(field, "SCH^1"), f"{field}: {e['msg']}", "102^Data type error^HL70357") from exc


def handle_message(svc: Service, apply: Callable[[User, EventRequest], tuple[dict, bool]], user: User, raw: str) -> tuple[str, str]:
    """(ACK text, acknowledgement code AA/AE/AR) for one ER7 message: the API route and the drop folder."""
    msh: dict[str, str] = {}
    try:
        msh, m = read_message(raw)
        req = to_event(svc, msh, m)
        answer, replay = apply(user, req)
        text = (("already applied: " if replay else "applied: ") +
                f"{answer['event']}; re-planned as version {answer['version_id']} ({answer['n_changes']} change(s))")
        return ack(msh, "AA", text), "AA"
    except Reject as exc:
        return ack(msh, exc.code, str(exc), (exc.where, exc.error_code)), exc.code
    except HTTPException as exc:  # the events path's 422 naming an event field (403 is raised on)
        if exc.status_code != 422:
            raise
        d = exc.detail[0] if isinstance(exc.detail, list) and exc.detail else {"loc": [], "msg": str(exc.detail)}
        field = d["loc"][-1] if d.get("loc") else "type"
        return ack(msh, "AE", str(d.get("msg")), (FIELD_SOURCE.get(str(field), "SCH^1"),
                                                   "207^Application internal error^HL70357")), "AE"
    except InputError as exc:
        p = exc.problems[0]
        return ack(msh, "AE", p.problem, (FIELD_SOURCE.get(str(p.column), "SCH^1"), "204^Unknown key identifier^HL70357")), "AE"
    except DuplicateKey as exc:
        return ack(msh, "AE", str(exc), ("MSH^1^10", "205^Duplicate key identifier^HL70357")), "AE"


def make_router(svc: Service, apply: Callable[[User, EventRequest], tuple[dict, bool]]) -> APIRouter:
    router = APIRouter(tags=["HL7 v2"])

    @router.post("/api/v1/hl7", response_class=Response)
    async def hl7_in(request: Request, user: User = Depends(needs("replan"))) -> Response:
        """An HL7 v2 SIU message (ER7 text body) -> the matching event; answered with an ACK (AA/AE/AR)."""
        import anyio

        raw = (await request.body()).decode("utf-8", errors="replace")
        text, _ = await anyio.to_thread.run_sync(handle_message, svc, apply, user, raw)
        return Response(text, media_type=HL7_TYPE)

    return router


class DropFolder:
    """HL7 messages from a folder: each ``*.hl7`` file is handled as ``POST /api/v1/hl7`` by ``user`` (the
    folder's identity), its ACK written to ``ack/<name>.ack`` and the file moved to ``done/`` (AA) or
    ``error/`` (AE/AR, or a failure). Polled every ``interval_s`` on a daemon thread."""

    def __init__(self, folder: Any, svc: Service, apply: Callable[[User, EventRequest], tuple[dict, bool]], user: User,
                 interval_s: float = 2.0) -> None:
        import threading
        from pathlib import Path

        from engine.governance import require

        require(user, "replan")  # the folder's identity must be allowed to re-plan, checked once at start
        self.folder, self.svc, self.apply, self.user, self.interval_s = Path(folder), svc, apply, user, interval_s
        for sub in ("ack", "done", "error"):
            (self.folder / sub).mkdir(parents=True, exist_ok=True)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="engine-api-hl7-drop", daemon=True)

    def start(self) -> "DropFolder":
        self._thread.start()
        return self

    def stop(self, timeout_s: float = 5.0) -> None:
        self._stop.set()
        self._thread.join(timeout_s)

    def poll_once(self) -> list[tuple[str, str]]:
        """Handle every waiting message (oldest first); [(file name, code)]."""
        import os

        from engine.io import atomic_write_file

        done = []
        for f in sorted(self.folder.glob("*.hl7"), key=lambda p: (p.stat().st_mtime, p.name)):
            try:
                text, code = handle_message(self.svc, self.apply, self.user, f.read_text(encoding="utf-8", errors="replace"))
            except Exception as exc:  # noqa: BLE001 - e.g. the database is down: leave the file for the next poll
                log.warning("HL7 drop folder: %s not handled yet: %s", f.name, exc)
                continue
            atomic_write_file(self.folder / "ack" / f"{f.stem}.ack", lambda p: p.write_text(text, encoding="utf-8"))
            os.replace(f, self.folder / ("done" if code == "AA" else "error") / f.name)
            done.append((f.name, code))
        return done

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.poll_once()
