"""``python -m engine drill|canary|incident`` (issue 19), registered by engine/pilotcli.py's add_pilot_parsers.

- ``drill --fault F``: a rollback drill on a copy of the hospital (engine/pilot/drill.py); the report goes to
  ``--out DIR`` (default ``var/drills/<hospital>/<fault>-<UTC time>``) and one ``drill`` audit entry to the store.
  A drill that does not pass still exits 0: its report and entry say which step failed.
- ``incident add|list|export``: post-incident records (engine/pilot/incident.py) classified as a data, model or
  process defect and linked to audit entry ids; ``export`` writes the governance board (incidents and drills)
  as JSON. The user comes from ``OR_TOKEN`` (reading the audit log to add and list, exporting it to export).
- ``canary start|status|stop|report``: the canary rollout with its control group (engine/pilot/canary.py).
  ``start`` and ``stop`` are governance actions: the signed-in user comes from ``OR_TOKEN`` (start needs
  the publish right, stop the rollback right); both are audited.

Exit codes as every pilot command: 0 done, 2 bad input or a refusal (naming the option or the reason),
1 an internal failure.
"""
from __future__ import annotations

import argparse
from typing import Any, Callable

from engine.errors import InputError, Problem


def _bad(option: str, message: str) -> InputError:
    return InputError([Problem("command line", None, option, message)])


def _user():
    from engine.governance import user_from_token

    try:
        return user_from_token()
    except PermissionError as exc:
        raise _bad("OR_TOKEN", str(exc)) from exc


def _refusals(action: str, fn: Callable[[], Any]) -> Any:
    """The engine's refusals (role, workflow, a field's value) as exit 2 naming what was refused."""
    from engine.governance.errors import WorkflowError

    try:
        return fn()
    except InputError:
        raise
    except PermissionError as exc:
        raise _bad("OR_TOKEN", f"{action} not allowed: {exc}") from exc
    except WorkflowError as exc:
        raise _bad(action, str(exc)) from exc
    except ValueError as exc:
        field = str(exc).split(":")[0].split()[0]
        raise _bad({"reason": "--reason", "go_live": "--go-live", "pre_weeks": "--pre-weeks", "level": "--level",
                    "values": "--rooms/--service-lines/--sites",
                    "audit_entry_ids": "--entries"}.get(field, action), str(exc)) from exc


# ------------------------------------------------------------------ canary


def _scope(args: argparse.Namespace):
    from engine.pilot.canary import CanaryScope

    given = [(k, getattr(args, k)) for k in ("rooms", "service_lines", "sites") if getattr(args, k)]
    if len(given) != 1:
        raise _bad("--rooms/--service-lines/--sites", "give exactly one of --rooms, --service-lines or --sites "
                                                      "(a comma-separated list)")
    kind, text = given[0]
    try:
        return CanaryScope(kind, tuple(v for v in text.split(",")))
    except ValueError as exc:
        raise _bad(f"--{kind.replace('_', '-')}", str(exc)) from exc


def _cmd_canary(args: argparse.Namespace) -> dict[str, Any]:
    from engine.governance.audit import audit_key
    from engine.pilot import canary as cn
    from engine.pilotcli import _date, _hid, _loaded

    hid = _hid(args)
    if args.action == "status":
        rows = cn.canaries(args.db, hid)
        act = next((c for c in rows if c.active), None)
        print(f"{hid}: " + (f"canary {act.canary_id} active since {act.go_live:%Y-%m-%d} on {act.scope.label()}; "
                            "every other case keeps the rules schedule" if act else "no canary active: the rules schedule for all"))
        for c in rows:
            print(f"  canary {c.canary_id}: {c.state}, {c.scope.label()}, go-live {c.go_live:%Y-%m-%d}, started by "
                  f"{c.started_by}" + (f", stopped by {c.stopped_by} ({c.stop_reason})" if c.stopped_by else ""))
        return {"hospital_id": hid, "active": act.to_dict() if act else None, "canaries": [c.to_dict() for c in rows]}
    if args.action == "start":
        if not args.go_live:
            raise _bad("--go-live", "canary start needs --go-live DATE")
        scope, go = _scope(args), _date(args.go_live, "--go-live")
        audit_key()
        user = _user()
        h = _loaded(args).hospital
        c = _refusals("canary start", lambda: cn.start_canary(args.db, hid, h, scope, go, user, note=args.note or ""))
        print(f"canary {c.canary_id} active from {c.go_live:%Y-%m-%d} on {c.scope.label()} (audit entry {c.start_entry_id})")
        return c.to_dict()
    if args.action == "stop":
        audit_key()
        user = _user()
        c = _refusals("canary stop", lambda: cn.stop_canary(args.db, hid, user, args.reason or ""))
        print(f"canary {c.canary_id} stopped by {c.stopped_by}: {c.scope.label()} returns to the rules schedule "
              f"(audit entry {c.stop_entry_id})")
        return c.to_dict()
    # report
    try:
        params = cn.DidParams(pre_weeks=args.pre_weeks, level=args.level)
    except ValueError as exc:
        raise _bad("--pre-weeks" if "pre_weeks" in str(exc) else "--level", str(exc)) from exc
    rows = cn.canaries(args.db, hid)
    if args.canary is not None:
        c = next((x for x in rows if x.canary_id == args.canary), None)
        if c is None:
            raise _bad("--canary", f"no canary {args.canary} for {hid} (known: {', '.join(str(x.canary_id) for x in rows) or 'none'})")
    elif rows:
        c = rows[0]
    else:
        raise _bad("canary report", f"no canary recorded for {hid}: start one with `canary start`")
    h = _loaded(args).hospital
    rep = _refusals("canary report", lambda: cn.canary_report(h, c, params))
    print(f"canary {c.canary_id} ({c.scope.label()}, {c.state}): {rep['n_pre_days']} weekdays before go-live "
          f"{rep['go_live']}, {rep['n_post_days']} from it; difference-in-differences, canary minus control, a day "
          f"[{params.level:.0%} interval]:")
    for line in rep["summary"]:
        print("  " + line)
    return rep


# ------------------------------------------------------------------ drill


def _cmd_drill(args: argparse.Namespace) -> dict[str, Any]:
    from datetime import datetime, timezone
    from pathlib import Path

    from engine.governance.audit import audit_key
    from engine.pilot.drill import DrillParams, audited_drill
    from engine.pilot.record import cli_actor
    from engine.pilotcli import _date, _hid

    try:
        params = DrillParams(fault=args.fault, time_limit_s=args.time_limit,
                             day=f"{_date(args.day, '--day'):%Y-%m-%d}" if args.day else None)
    except ValueError as exc:
        raise _bad("--time-limit", str(exc)) from exc
    if not Path(args.data).is_dir():
        raise InputError(f"hospital folder {str(args.data)!r} does not exist", file=str(args.data))
    audit_key()
    hid = _hid(args)
    model = None
    if args.models:
        from engine.forecast import Registry

        model = Registry(args.models).load(hid)
    out = args.out or Path("var") / "drills" / hid / f"{args.fault}-{datetime.now(timezone.utc):%Y%m%dT%H%M%SZ}"
    if Path(out).resolve() == Path(args.data).resolve() or Path(args.data).resolve() in Path(out).resolve().parents:
        raise _bad("--out", "the drill folder must not be inside the hospital folder (the original is never written)")
    try:
        rep = audited_drill(args.db, args.data, params, out, hospital_id=hid, actor=cli_actor(), model=model)
    except ValueError as exc:
        raise _bad("--day", str(exc)) from exc
    print(f"drill {args.fault} on a copy of {args.data}: {'PASSED' if rep['passed'] else 'FAILED'} in {rep['seconds']:.1f}s "
          f"(report {Path(out) / 'drill-report.json'}, audit entry {rep['audit_entry_id']})")
    for s in rep["steps"]:
        print(f"  {s['step']:9s} {'ok ' if s['ok'] else 'BAD'} {s['seconds']:6.2f}s  {s['detail']}")
    return rep


# ------------------------------------------------------------------ incident


def _cmd_incident(args: argparse.Namespace) -> dict[str, Any]:
    from engine.pilot import incident as inc
    from engine.pilotcli import _hid

    hid = _hid(args)
    if args.action == "add":
        from engine.governance.audit import audit_key

        try:
            ids = tuple(int(x) for x in (args.entries or "").split(",") if x.strip())
        except ValueError as exc:
            raise _bad("--entries", f"{args.entries!r}: give audit entry ids as whole numbers, comma-separated") from exc
        try:
            rec = inc.IncidentInput(args.title or "", args.defect_class or "", args.description or "", ids,
                                    args.remedy or "", args.occurred)
        except ValueError as exc:
            field = str(exc).split(":")[0].split()[0]
            raise _bad({"title": "--title", "defect_class": "--class", "description": "--description",
                        "audit_entry_ids": "--entries", "occurred_on": "--occurred"}.get(field, "incident add"), str(exc)) from exc
        audit_key()
        user = _user()
        out = _refusals("incident add", lambda: inc.add_incident(args.db, hid, rec, user))
        print(f"incident {out['incident_id']} ({out['defect_class']} defect) recorded, linked to audit entries "
              f"{', '.join(map(str, out['audit_entry_ids'])) or 'none'} (its own entry {out['entry_id']})")
        return out
    user = _user()
    if args.action == "list":
        from engine.pilot.record import require_pilot

        _refusals("incident list", lambda: require_pilot(user, "incident"))
        b = inc.board(args.db, hid)
        print(f"{hid}: {b['n_incidents']} incident(s) (" + ", ".join(f"{k} {v}" for k, v in b["by_class"].items())
              + f"), {b['n_drills']} drill(s), {b['n_drills_passed']} passed")
        for i in b["incidents"]:
            print(f"  incident {i['incident_id']} [{i['defect_class']}] {i['title']} (entries "
                  f"{', '.join(map(str, i['audit_entry_ids'])) or 'none'}; by {i['recorded_by']} {i['recorded_at']})")
        for d in b["drills"]:
            print(f"  drill {d['fault']}: {'passed' if d['passed'] else 'FAILED'} ({d['seconds']}s, entry {d['entry_id']}, {d['at']})")
        return b
    if not args.out:
        raise _bad("--out", "incident export needs --out PATH (a JSON file)")
    b = _refusals("incident export", lambda: inc.export_board(args.db, args.out, hid, user))
    print(f"wrote {b['n_incidents']} incident(s) and {b['n_drills']} drill(s) of {hid} to {args.out}")
    return b


# ------------------------------------------------------------------ parser


def add_rollout_parsers(sub: Any, add: Callable[..., Any]) -> None:
    """Register drill, canary and incident; ``add(name, fn, text)`` gives each the pilot commands' common options."""
    from pathlib import Path

    from engine.pilot.canary import DidParams
    from engine.pilot.drill import FAULTS, DrillParams

    dp = DrillParams(FAULTS[0])
    r = add("drill", _cmd_drill, "Rollback drill: inject a fault into a copy of the hospital, show that the product "
                                 "detects it and withholds or falls back, restore, time each step, write a report.")
    r.add_argument("--fault", required=True, choices=FAULTS)
    r.add_argument("--out", type=Path, default=None, metavar="DIR",
                   help="drill folder (default var/drills/<hospital>/<fault>-<UTC time>)")
    r.add_argument("--models", type=Path, default=None, metavar="DIR",
                   help="stale-model: the registry whose model in force is copied (default: a stand-in model record)")
    r.add_argument("--day", default=None, metavar="DATE", help="day to plan (default: the first day with booked cases)")
    r.add_argument("--time-limit", dest="time_limit", type=float, default=dp.time_limit_s, metavar="S",
                   help=f"solver-down: the optimizer's time limit (default {dp.time_limit_s:g})")

    from engine.pilot.incident import DEFECT_CLASSES

    i = add("incident", _cmd_incident, "Post-incident review: record a failure as a data, model or process defect linked "
                                       "to audit entries; list or export the governance board (incidents and drills).")
    i.add_argument("action", choices=("add", "list", "export"))
    i.add_argument("--title", default=None, help="add: a short title")
    i.add_argument("--class", dest="defect_class", default=None, choices=DEFECT_CLASSES, help="add: the defect class")
    i.add_argument("--description", default=None, help="add: what failed and how it was found")
    i.add_argument("--entries", default=None, metavar="ID,ID", help="add: the audit entry ids that show it")
    i.add_argument("--remedy", default=None, help="add: what was done about it")
    i.add_argument("--occurred", default=None, metavar="DATE", help="add: when it happened")
    i.add_argument("--out", type=Path, default=None, metavar="PATH", help="export: the JSON file to write")

    d = DidParams()
    c = add("canary", _cmd_canary, "Canary rollout: the product's schedule for chosen rooms, service lines or sites, the "
                                   "rules schedule for the rest; status, a one-click stop (audited), and a "
                                   "difference-in-differences report against the weeks before go-live.")
    c.add_argument("action", choices=("start", "status", "stop", "report"))
    c.add_argument("--rooms", default=None, metavar="A,B", help="start: the canary's rooms")
    c.add_argument("--service-lines", dest="service_lines", default=None, metavar="A,B", help="start: the canary's service lines")
    c.add_argument("--sites", default=None, metavar="A,B", help="start: the canary's sites")
    c.add_argument("--go-live", dest="go_live", default=None, metavar="DATE", help="start: the first day on the product")
    c.add_argument("--note", default=None, help="start: a note kept with the record")
    c.add_argument("--reason", default=None, help="stop: why (required; audited)")
    c.add_argument("--canary", type=int, default=None, metavar="ID", help="report: which canary (default: the newest)")
    c.add_argument("--pre-weeks", dest="pre_weeks", type=int, default=d.pre_weeks,
                   help=f"report: weeks before go-live to compare with (default {d.pre_weeks})")
    c.add_argument("--level", type=float, default=d.level, help=f"report: interval level (default {d.level})")
