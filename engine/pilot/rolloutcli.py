"""``python -m engine drill|canary|incident`` (issue 19), registered by engine/pilotcli.py's add_pilot_parsers.

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
                    "values": "--rooms/--service-lines/--sites"}.get(field, action), str(exc)) from exc


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


# ------------------------------------------------------------------ parser


def add_rollout_parsers(sub: Any, add: Callable[..., Any]) -> None:
    """Register drill, canary and incident; ``add(name, fn, text)`` gives each the pilot commands' common options."""
    from engine.pilot.canary import DidParams

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
