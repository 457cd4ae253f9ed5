"""FHIR R4 Bundle -> hospital folder: ``python -m engine import --fhir BUNDLE.json --out DIR``.

Each resource is validated with ``fhir.resources`` (its R4B models; the fields read are R4's), the
Bundle is flattened to one row per ``Appointment`` (a case), and the rows go through the CSV
importer's own pipeline (:func:`engine.importer.import_hospital` with an identity mapping), so the
values, the entity clean-up, the folder validation, the quarantine and the all-or-nothing swap are
the same as for a CSV export.

Where each cases.csv column comes from (``FIELD_SOURCE`` names it in every message):

- ``case_id``: Appointment.identifier[0].value, else Appointment.id;
- ``status``: Appointment.status (``fulfilled`` -> completed; ``cancelled``/``noshow`` -> cancelled;
  ``booked``/``pending``/``proposed``/``arrived``/``checked-in``/``waitlist`` -> booked;
  ``entered-in-error``: left out, counted);
- ``surgery_date``/``scheduled_start``: Appointment.start (the wall-clock time as written; the offset
  is dropped, so the sender's offset should be the hospital's); ``booked_minutes``:
  Appointment.minutesDuration, else end - start; ``booked_at``: Appointment.created;
- ``room_id``: the ``Location`` participant; ``surgeon_id``: the ``Practitioner`` participant
  (else the Procedure's performer); ``service_line``: Appointment.serviceType (text, else the first
  coding's display or code);
- ``procedure_code``/``procedure_name``: the Procedure of the case (Procedure.encounter -> an
  Encounter whose ``appointment`` is this one) .code, else Appointment.reasonCode;
- ``wheels_in``/``wheels_out``: the Encounter's ``location`` period in the room, else the
  Procedure's performedPeriod; ``procedure_start``/``procedure_end``: Procedure.performedPeriod;
- ``urgency``: Encounter.priority (v3 ActPriority EM -> emergent, UR/S/A -> urgent, else elective);
- ``cancellation_reason``: Appointment.cancelationReason.

Bad resources: a resource that does not validate, or an Appointment lacking what the contract needs,
is set aside with its entry index, resource type and field, together with the Appointments that
reference it; more than ``max_bad_fraction`` of the Appointments set aside (or none left) is an
``InputError`` (exit 2) listing every problem, and nothing is written.
"""
from __future__ import annotations

import json
import logging
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from engine.errors import InputError, Problem

log = logging.getLogger(__name__)

RESOURCE_TYPES = ("Appointment", "Procedure", "Encounter", "Location", "Practitioner")
STATUS = {"fulfilled": "completed", "cancelled": "cancelled", "noshow": "cancelled", "booked": "booked",
          "pending": "booked", "proposed": "booked", "arrived": "booked", "checked-in": "booked", "waitlist": "booked"}
PRIORITY = {"EM": "emergent", "UR": "urgent", "S": "urgent", "A": "urgent", "EL": "elective", "R": "elective"}
#: cases.csv column -> the FHIR element it is read from (named in problems and the quarantine)
FIELD_SOURCE = {
    "case_id": "Appointment.identifier", "status": "Appointment.status", "surgery_date": "Appointment.start",
    "scheduled_start": "Appointment.start", "booked_minutes": "Appointment.minutesDuration",
    "booked_at": "Appointment.created", "room_id": "Appointment.participant(Location)",
    "surgeon_id": "Appointment.participant(Practitioner)", "service_line": "Appointment.serviceType",
    "procedure_code": "Procedure.code", "procedure_name": "Procedure.code.display",
    "wheels_in": "Encounter.location.period.start", "wheels_out": "Encounter.location.period.end",
    "procedure_start": "Procedure.performedPeriod.start", "procedure_end": "Procedure.performedPeriod.end",
    "urgency": "Encounter.priority", "cancellation_reason": "Appointment.cancelationReason",
}
COLUMNS = tuple(FIELD_SOURCE)


@dataclass(frozen=True)
class FhirImportParams:
    """How a Bundle becomes a folder. ``settings``: settings.toml of the new folder (a Bundle carries no
    hospital rules; edit them after the import); ``open_time``/``close_time``: the rooms' hours."""

    max_bad_fraction: float = 0.05
    settings: dict[str, Any] = field(default_factory=lambda: {"turnover_minutes": 30, "pacu_minutes": 75,
                                                              "prime_time": "07:30-15:30"})
    open_time: str = "07:30"
    close_time: str = "17:30"

    def __post_init__(self) -> None:
        if not 0 <= self.max_bad_fraction <= 1:
            raise ValueError(f"max_bad_fraction must be within [0, 1], got {self.max_bad_fraction!r}")


@dataclass
class _Entry:
    index: int
    rtype: str
    id: str
    resource: Any  # the validated fhir.resources model

    @property
    def ref(self) -> str:
        return f"{self.rtype}/{self.id}"


def _where(bundle: str, index: int, rtype: str, rid: str | None) -> str:
    return f"{bundle} entry {index} ({rtype}{'/' + rid if rid else ''})"


def _validate(bundle: str, entries: list[Any]) -> tuple[list[_Entry], list[Problem], dict[int, str], int]:
    """(valid entries, problems of the invalid ones, entry index -> the bad reference, ignored count)."""
    from fhir.resources.R4B import get_fhir_model_class
    from pydantic import ValidationError

    good, problems, bad_refs, ignored = [], [], {}, 0
    for i, e in enumerate(entries):
        res = e.get("resource") if isinstance(e, dict) else None
        if not isinstance(res, dict):
            problems.append(Problem(_where(bundle, i, "?", None), None, "entry.resource", "the entry has no resource"))
            continue
        rtype, rid = str(res.get("resourceType") or ""), res.get("id")
        if rtype not in RESOURCE_TYPES:
            ignored += 1
            log.warning("import --fhir: entry %d (%s) ignored: read are %s", i, rtype or "no resourceType",
                        ", ".join(RESOURCE_TYPES))
            continue
        try:
            model = get_fhir_model_class(rtype).model_validate(res)
        except ValidationError as exc:
            for err in exc.errors()[:5]:
                loc = ".".join(str(x) for x in err["loc"] if not str(x).startswith("function-"))
                problems.append(Problem(_where(bundle, i, rtype, rid), None, f"{rtype}.{loc}" if loc else rtype,
                                        err["msg"]))
            if rid:
                bad_refs[i] = f"{rtype}/{rid}"
            continue
        good.append(_Entry(i, rtype, str(model.id or ""), model))
    return good, problems, bad_refs, ignored


def _text(concept: Any) -> str | None:
    """A CodeableConcept's words: text, else the first coding's display or code."""
    if concept is None:
        return None
    if getattr(concept, "text", None):
        return str(concept.text)
    for c in getattr(concept, "coding", None) or []:
        if c.display or c.code:
            return str(c.display or c.code)
    return None


def _code(concept: Any) -> tuple[str | None, str | None]:
    for c in getattr(concept, "coding", None) or []:
        if c.code:
            return str(c.code), (str(c.display) if c.display else None)
    return (_text(concept), None) if concept is not None else (None, None)


def _ref_id(ref: Any, rtype: str) -> str | None:
    r = getattr(ref, "reference", None) or ""
    return r.split("/", 1)[1] if r.startswith(rtype + "/") else None


def _local(ts: Any) -> str | None:
    """The wall-clock time as written (ISO, no offset): contract times are local."""
    if ts is None:
        return None
    t = pd.Timestamp(str(ts))
    return (t.tz_localize(None) if t.tzinfo is not None else t).isoformat(timespec="minutes")


def flatten(bundle: str, good: list[_Entry], bad_refs: dict[int, str]) -> tuple[pd.DataFrame, list[int], list[Problem], int]:
    """(cases rows as text, entry index of each row, problems of the Appointments set aside, left out)."""
    by = {t: {e.id: e for e in good if e.rtype == t} for t in RESOURCE_TYPES}
    bad = set(bad_refs.values())
    enc_of_appt: dict[str, _Entry] = {}
    for e in by["Encounter"].values():
        for a in e.resource.appointment or []:
            if (aid := _ref_id(a, "Appointment")) is not None:
                enc_of_appt[aid] = e
    proc_of_enc: dict[str, _Entry] = {}
    for e in by["Procedure"].values():
        if (eid := _ref_id(e.resource.encounter, "Encounter")) is not None:
            proc_of_enc.setdefault(eid, e)
    rows, index, problems, left_out, seen = [], [], [], 0, set()
    for a in sorted(by["Appointment"].values(), key=lambda e: e.index):
        ap = a.resource
        where = _where(bundle, a.index, "Appointment", a.id)

        def refuse(column: str, message: str) -> None:
            problems.append(Problem(where, None, FIELD_SOURCE.get(column, column), message))

        if ap.status == "entered-in-error":
            left_out += 1
            continue
        refs = [p.actor.reference for p in ap.participant or [] if p.actor is not None and p.actor.reference]
        enc = enc_of_appt.get(a.id)
        proc = proc_of_enc.get(enc.id) if enc is not None else None
        broken = [r for r in refs if r in bad]
        if broken:
            refuse("case_id", f"references {', '.join(broken)}, which does not validate (see its entry)")
            continue
        case_id = next((str(i.value) for i in ap.identifier or [] if i.value), a.id)
        if case_id in seen:
            refuse("case_id", f"case id {case_id!r} is given by an earlier Appointment too")
            continue
        room = next((x for r in refs if (x := r.split("/", 1)[1] if r.startswith("Location/") else None)), None)
        surgeon = next((x for r in refs if (x := r.split("/", 1)[1] if r.startswith("Practitioner/") else None)), None)
        if room is not None and room in by["Location"] and by["Location"][room].resource.name:
            room = str(by["Location"][room].resource.name)
        if surgeon is None and proc is not None:
            surgeon = next((_ref_id(p.actor, "Practitioner") for p in proc.resource.performer or []
                            if _ref_id(p.actor, "Practitioner")), None)
        line = next((t for s in ap.serviceType or [] if (t := _text(s))), None)
        status = STATUS.get(str(ap.status))
        if status is None:
            refuse("status", f"status {ap.status!r} is not one of {', '.join(STATUS)} (or entered-in-error)")
            continue
        if line is None:
            refuse("service_line", "serviceType is required: it gives the case's service line")
            continue
        if ap.start is None and status != "cancelled":
            refuse("surgery_date", f"start is required for a {ap.status} Appointment")
            continue
        code, name = _code(proc.resource.code) if proc is not None else (None, None)
        if code is None:
            code, name = next((_code(r) for r in ap.reasonCode or []), (None, None))
        if code is None:
            refuse("procedure_code", "no procedure code: give a Procedure (via its Encounter) or Appointment.reasonCode")
            continue
        start = _local(ap.start)
        minutes = ap.minutesDuration
        if minutes is None and ap.start is not None and ap.end is not None:
            minutes = (pd.Timestamp(str(ap.end)) - pd.Timestamp(str(ap.start))).total_seconds() / 60
        wheels = (None, None)
        if enc is not None:
            for loc in enc.resource.location or []:
                lid = _ref_id(loc.location, "Location")
                if loc.period is not None and (room is None or lid in (room, next(
                        (k for k, v in by["Location"].items() if v.resource.name == room), None))):
                    wheels = (_local(loc.period.start), _local(loc.period.end))
                    break
        performed = (proc.resource.performedPeriod if proc is not None else None)
        pstart, pend = (_local(performed.start), _local(performed.end)) if performed is not None else (None, None)
        if wheels == (None, None):
            wheels = (pstart, pend)
        prio = None
        if enc is not None and enc.resource.priority is not None:
            prio = PRIORITY.get(str(_code(enc.resource.priority)[0] or "").upper())
        seen.add(case_id)
        rows.append({"case_id": case_id, "status": status, "surgery_date": (start or "")[:10] or None,
                     "scheduled_start": start, "booked_minutes": None if minutes is None else f"{float(minutes):g}",
                     "booked_at": _local(ap.created), "room_id": room, "surgeon_id": surgeon or "unknown",
                     "service_line": line, "procedure_code": code, "procedure_name": name,
                     "wheels_in": wheels[0], "wheels_out": wheels[1], "procedure_start": pstart, "procedure_end": pend,
                     "urgency": prio or "elective", "cancellation_reason": _text(ap.cancelationReason)})
        index.append(a.index)
    return pd.DataFrame(rows, columns=list(COLUMNS)), index, problems, left_out


def _mapping(params: FhirImportParams, rooms: list[str]) -> dict[str, Any]:
    return {"version": 1, "name": "FHIR R4 Bundle", "columns": {c: c for c in COLUMNS},
            "bad_values": "quarantine", "max_bad_row_fraction": params.max_bad_fraction,
            "settings": dict(params.settings),
            "rooms": {"open_time": params.open_time, "close_time": params.close_time, "capabilities": ["general"],
                      **({"ids": rooms} if rooms else {})}}


def import_fhir(bundle_path: str | Path, out_dir: str | Path, params: FhirImportParams | None = None):
    """A FHIR R4 Bundle -> a validated hospital folder at ``out_dir`` (all or nothing); the
    :class:`~engine.importer.ImportResult` counts and lists what was set aside (``source_row`` is the
    Bundle entry index, ``column`` the FHIR element)."""
    import yaml

    from engine.importer.pipeline import import_hospital

    params = params or FhirImportParams()
    path = Path(bundle_path)
    name = str(path)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(Problem(name, None, None, f"cannot read the Bundle as JSON: {exc}")) from exc
    if not isinstance(doc, dict) or doc.get("resourceType") != "Bundle":
        got = doc.get("resourceType") if isinstance(doc, dict) else type(doc).__name__
        raise InputError(Problem(name, None, "resourceType", f"a FHIR Bundle is expected, got {got!r}"))
    entries = doc.get("entry")
    if not isinstance(entries, list) or not entries:
        raise InputError(Problem(name, None, "Bundle.entry", "the Bundle has no entries"))
    good, problems, bad_refs, ignored = _validate(name, entries)
    cases, index, refused, left_out = flatten(name, good, bad_refs)
    problems += refused
    n_appt = len(index) + len([p for p in problems if "(Appointment" in p.file]) + left_out
    if n_appt == 0:
        raise InputError([Problem(name, None, "Bundle.entry", "the Bundle holds no Appointment (one per case)")] + problems)
    n_bad = n_appt - len(index) - left_out
    if not len(cases) or n_bad > params.max_bad_fraction * n_appt:
        head = Problem(name, None, None, f"{n_bad} of {n_appt} Appointments cannot be imported, more than "
                                         f"max_bad_fraction {params.max_bad_fraction:g} allows; nothing was written")
        raise InputError([head] + problems)
    rooms = sorted({str(e.resource.name or e.id) for e in good if e.rtype == "Location"})
    with tempfile.TemporaryDirectory(prefix="fhir-import-") as tmp:
        src, mp = Path(tmp) / "appointments.csv", Path(tmp) / "mapping.yaml"
        cases.to_csv(src, index=False)
        mp.write_text(yaml.safe_dump(_mapping(params, rooms)), encoding="utf-8")
        try:
            result = import_hospital(src, mp, out_dir)
        except InputError as exc:
            raise InputError([_relabel(p, src, name, index) for p in exc.problems] + problems) from exc
    q = result.quarantine.copy()
    if len(q):
        q["file"] = name
        q["source_row"] = [index[int(r) - 1] if 0 < int(r) <= len(index) else r for r in q["source_row"]]
        q["column"] = [FIELD_SOURCE.get(str(c).split(" -> ")[-1], c) for c in q["column"]]
    aside = pd.DataFrame([{"file": name, "source_row": _entry_of(p.file), "case_id": None, "column": p.column,
                           "reason": p.problem, "stage": "fhir"} for p in problems])
    result.quarantine = pd.concat([q, aside], ignore_index=True) if len(aside) else q
    result.source = path
    result.rows_read = n_appt
    result.rows_quarantined += n_bad
    result.rows_set_aside += n_bad
    result.problems = [_relabel(p, src, name, index) for p in result.problems] + problems
    if ignored or left_out:
        result.warnings.append(Problem(name, None, None, f"{ignored} entries of other resource types ignored, "
                                                         f"{left_out} entered-in-error Appointments left out"))
    log.info("import --fhir: %d Appointments, %d imported, %d set aside", n_appt, len(index), n_bad)
    return result


def _entry_of(where: str) -> int | None:
    try:
        return int(where.split(" entry ", 1)[1].split(" ", 1)[0])
    except (IndexError, ValueError):
        return None


def _relabel(p: Problem, src: Path, name: str, index: list[int]) -> Problem:
    """A problem of the flattened rows, pointed at the Bundle entry and the FHIR element."""
    if Path(str(p.file).split(" ")[0]).name != src.name and "cases.csv" not in str(p.file):
        return p
    column = FIELD_SOURCE.get(str(p.column).split(" -> ")[-1], p.column) if p.column else None
    if p.row is not None and 0 < p.row <= len(index):
        return Problem(_where(name, index[p.row - 1], "Appointment", None), None, column, p.problem)
    return Problem(name, None, column, p.problem)


def import_fhir_command(bundle: Path, out: Path | None) -> dict[str, Any]:
    """``python -m engine import --fhir BUNDLE.json --out DIR``: prints the account, returns the --json payload."""
    if out is None:
        raise InputError("import --fhir needs --out DIR", file="command line")
    result = import_fhir(bundle, out)
    print(f"imported {bundle} -> {out}: {result.rows_written} cases written, {result.rows_quarantined} quarantined")
    for line in result.describe().splitlines()[1:]:
        print(f"  {line}")
    return result.summary()
